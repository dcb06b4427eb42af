"""BlobStore on Cloud Storage; the client honours STORAGE_EMULATOR_HOST by itself."""

from __future__ import annotations

import io
from typing import IO

from google.api_core import exceptions as gexc
from google.cloud.storage import Client as StorageClient

from shared.errors import TransientError
from shared.ports import BlobStore, ObjectMissing

# Large reads: the blob reader fetches this much per request, the buffer splits it into lines.
CHUNK_BYTES = 16 * 1024 * 1024
BUFFER_BYTES = 1024 * 1024


class GcsBlobStore(BlobStore):
    def __init__(self, client: StorageClient) -> None:
        self._client = client

    def open(self, bucket: str, name: str, generation: str | None = None) -> IO[bytes]:
        blob = self._client.bucket(bucket).blob(name, generation=int(generation) if generation else None)
        try:
            blob.reload()
        except gexc.NotFound as exc:
            at = f" at generation {generation}" if generation else ""
            raise ObjectMissing(f"gs://{bucket}/{name}{at} does not exist.") from exc
        except (gexc.ServiceUnavailable, gexc.InternalServerError, gexc.TooManyRequests) as exc:
            raise TransientError(f"reading gs://{bucket}/{name} failed: {exc}") from exc
        # Plain line iteration over blob.open() is slow; a BufferedReader on top reads fast.
        raw = blob.open("rb", chunk_size=CHUNK_BYTES)
        return io.BufferedReader(raw, buffer_size=BUFFER_BYTES)

    def write(self, bucket: str, name: str, data: bytes, content_type: str) -> str:
        try:
            self._client.bucket(bucket).blob(name).upload_from_string(data, content_type=content_type)
        except (gexc.ServiceUnavailable, gexc.InternalServerError, gexc.TooManyRequests) as exc:
            raise TransientError(f"writing gs://{bucket}/{name} failed: {exc}") from exc
        return f"gs://{bucket}/{name}"
