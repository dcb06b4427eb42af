"""A tuned model's training examples, read from Cloud Storage (the storage emulator) once per file.

The emulator reads a SUCCEEDED job's ``supervised_tuning_spec.training_dataset_uri`` from the server that
``STORAGE_EMULATOR_HOST`` names (fake-gcs-server in the local stack), with anonymous credentials, and keeps
the parsed examples: a job's training file is a pinned copy that does not change. A file that cannot be
read is not remembered, so a later call tries again. Without ``STORAGE_EMULATOR_HOST``, or when the file
cannot be read, GenerateContent on a tuned endpoint is refused FAILED_PRECONDITION saying why: a tuned
model that cannot answer like its training data would make every evaluation meaningless.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from .answers import TrainingExample, parse_training
from .errors import EmulatorError

STORAGE_HOST_VARIABLE = "STORAGE_EMULATOR_HOST"


def _unreadable(uri: str, why: str) -> EmulatorError:
    return EmulatorError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"The Vertex AI emulator cannot read the tuned model's training data {uri}: {why}.",
    )


class TrainingFiles:
    """Training examples by gs:// URI. ``read`` (URI -> the file's text) replaces Cloud Storage in tests."""

    def __init__(self, env: Mapping[str, str], read: Callable[[str], str] | None = None) -> None:
        self._host = env.get(STORAGE_HOST_VARIABLE, "").strip()
        self._read = read or self._read_from_storage
        self._client: Any = None
        self._cache: dict[str, list[TrainingExample]] = {}
        self._lock = threading.Lock()

    def examples(self, uri: str) -> list[TrainingExample]:
        with self._lock:
            cached = self._cache.get(uri)
        if cached is not None:
            return cached
        examples = parse_training(self._read(uri).splitlines())
        with self._lock:
            return self._cache.setdefault(uri, examples)

    def _storage(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud.storage import Client

        with self._lock:
            if self._client is None:
                self._client = Client(
                    project="vertex-emulator",
                    credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                    client_options={"api_endpoint": self._host},
                )
            return self._client

    def _read_from_storage(self, uri: str) -> str:
        from google.api_core import exceptions as gexc
        from requests import exceptions as http_errors

        if not self._host:
            raise _unreadable(uri, f"{STORAGE_HOST_VARIABLE} is not set, so there is no storage emulator to read from")
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        if not uri.startswith("gs://") or not bucket or not name:
            raise _unreadable(uri, "not a gs://bucket/object URI")
        try:
            text: str = self._storage().bucket(bucket).blob(name).download_as_text()
        except gexc.NotFound as err:
            raise _unreadable(uri, f"no such object on {self._host}") from err
        except (gexc.GoogleAPICallError, http_errors.RequestException, UnicodeDecodeError) as err:
            raise _unreadable(uri, f"{type(err).__name__}: {err}") from err
        return text
