from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from google.cloud import firestore

from shared.adapters.firestore_store import FirestoreJobStore
from tests.stackfixture import running_stack


@pytest.fixture(scope="session")
def emulator_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A local stack for the session; integration tests use its Firestore and Pub/Sub emulators."""
    with running_stack(tmp_path_factory.mktemp("integration-stack"), {"TUNEDROP_POLL_SECONDS": "60"}) as env:
        yield env


@pytest.fixture
def firestore_store(emulator_env: dict[str, str]) -> FirestoreJobStore:
    """A store on collections of this test's own, so tests never see each other's jobs."""
    client = firestore.Client(project=emulator_env["GOOGLE_CLOUD_PROJECT"])
    return FirestoreJobStore(client, f"itest{uuid.uuid4().hex[:8]}")
