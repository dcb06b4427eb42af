"""GcsBlobStore on fake-gcs-server: pinned generations and the copies Vertex AI is given."""

from __future__ import annotations

import uuid

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from shared.adapters.gcs_blobs import GcsBlobStore
from shared.ports import CopyConflict, ObjectExists, ObjectMissing
from tests.fakes import InMemoryBlobStore, crc32c_of

pytestmark = pytest.mark.integration


@pytest.fixture
def bucket(emulator_env: dict[str, str]) -> storage.Bucket:
    client = storage.Client(project=emulator_env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials())
    return client.create_bucket(f"pinned-{uuid.uuid4().hex[:8]}")


@pytest.fixture(params=["in-memory", "fake-gcs-server"])
def stores(request: pytest.FixtureRequest) -> tuple[object, str]:
    if request.param == "in-memory":
        return InMemoryBlobStore(), "b"
    bucket: storage.Bucket = request.getfixturevalue("bucket")
    return GcsBlobStore(bucket.client), bucket.name


def _put(store: object, bucket: str, name: str, data: bytes) -> None:
    if isinstance(store, InMemoryBlobStore):
        store.put(bucket, name, data)
    else:
        assert isinstance(store, GcsBlobStore)
        store._client.bucket(bucket).blob(name).upload_from_string(data)


def test_a_pinned_copy_holds_the_validated_bytes_whatever_happens_to_the_original(stores: tuple[object, str]) -> None:
    store, bucket = stores
    assert isinstance(store, InMemoryBlobStore | GcsBlobStore)
    _put(store, bucket, "incoming/a.jsonl", b"validated\n")
    first = store.describe(bucket, "incoming/a.jsonl")
    assert (first.size, first.crc32c) == (10, crc32c_of(b"validated\n"))
    copy = store.copy_pinned(bucket, "incoming/a.jsonl", first.generation, "tunedrop-staging/j/training.jsonl")
    assert copy.crc32c == first.crc32c
    # A repeated copy (a redelivery) is fine; the same destination with other bytes is not.
    again = store.copy_pinned(bucket, "incoming/a.jsonl", first.generation, "tunedrop-staging/j/training.jsonl")
    assert again.crc32c == first.crc32c
    _put(store, bucket, "incoming/a.jsonl", b"overwritten\n")
    second = store.describe(bucket, "incoming/a.jsonl")
    assert second.generation != first.generation
    with pytest.raises(CopyConflict):
        store.copy_pinned(bucket, "incoming/a.jsonl", second.generation, "tunedrop-staging/j/training.jsonl")
    with pytest.raises(ObjectMissing):  # the bucket keeps no old generations: that one is gone
        store.copy_pinned(bucket, "incoming/a.jsonl", first.generation, "tunedrop-staging/k/training.jsonl")
    with store.open(bucket, "tunedrop-staging/j/training.jsonl") as reader:
        assert reader.read() == b"validated\n"
    with pytest.raises(ObjectMissing):
        store.describe(bucket, "incoming/a.jsonl", first.generation)


def test_a_create_only_write_never_replaces_an_object(stores: tuple[object, str]) -> None:
    store, bucket = stores
    assert isinstance(store, InMemoryBlobStore | GcsBlobStore)
    uri = store.write(bucket, "converted/out.jsonl", b"first\n", "application/jsonl", if_absent=True)
    assert uri == f"gs://{bucket}/converted/out.jsonl"
    first = store.describe(bucket, "converted/out.jsonl")
    with pytest.raises(ObjectExists):
        store.write(bucket, "converted/out.jsonl", b"second\n", "application/jsonl", if_absent=True)
    assert store.describe(bucket, "converted/out.jsonl").generation == first.generation
    with store.open(bucket, "converted/out.jsonl") as reader:
        assert reader.read() == b"first\n"
    store.write(bucket, "converted/out.jsonl", b"third\n", "application/jsonl")  # a plain write replaces it
    with store.open(bucket, "converted/out.jsonl") as reader:
        assert reader.read() == b"third\n"
