"""BlobStore on Cloud Storage; the client honours STORAGE_EMULATOR_HOST by itself."""

from __future__ import annotations

import io
from typing import IO, Any

import requests
from google.api_core import exceptions as gexc
from google.auth.exceptions import GoogleAuthError
from google.cloud.storage import Client as StorageClient

from shared.errors import TransientError
from shared.ports import BlobStore, CopyConflict, ListedObject, ObjectExists, ObjectInfo, ObjectMissing

# Every failure that is not "no such object" (caught first) is the platform's, never the upload's: a 5xx, a
# 429, a 403 after an IAM slip, an expired token, a dropped connection. Raised as TransientError, the
# notification is delivered again (and, if it keeps failing, dead-lettered and alerted on).
_TRANSIENT = (gexc.GoogleAPICallError, GoogleAuthError, requests.RequestException, OSError)
# Large reads: the blob reader fetches this much per request, the buffer splits it into lines.
CHUNK_BYTES = 16 * 1024 * 1024
BUFFER_BYTES = 1024 * 1024


class _ReadFailuresAreTransient(io.RawIOBase):
    """The blob reader, with every failure to read turned into a TransientError.

    A read that fails mid-file (a dropped connection, a 5xx, an expired token) is the platform's fault,
    not the upload's: the notification must be delivered again, never the dataset rejected."""

    def __init__(self, inner: IO[bytes], uri: str) -> None:
        self._inner = inner
        self._uri = uri

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._inner.read(len(buffer))
        except Exception as exc:
            raise TransientError(f"reading {self._uri} failed: {type(exc).__name__}: {exc}") from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


class GcsBlobStore(BlobStore):
    def __init__(self, client: StorageClient) -> None:
        self._client = client

    def _loaded(self, bucket: str, name: str, generation: str | None) -> Any:
        """The blob (at ``generation``) with its metadata read; ObjectMissing or TransientError otherwise."""
        blob = self._client.bucket(bucket).blob(name, generation=int(generation) if generation else None)
        try:
            blob.reload()
        except gexc.NotFound as exc:
            at = f" at generation {generation}" if generation else ""
            raise ObjectMissing(f"gs://{bucket}/{name}{at} does not exist.") from exc
        except _TRANSIENT as exc:
            raise TransientError(f"reading gs://{bucket}/{name} failed: {exc}") from exc
        return blob

    def open(self, bucket: str, name: str, generation: str | None = None) -> IO[bytes]:
        blob = self._loaded(bucket, name, generation)
        # Plain line iteration over blob.open() is slow; a BufferedReader on top reads fast.
        raw = _ReadFailuresAreTransient(blob.open("rb", chunk_size=CHUNK_BYTES), f"gs://{bucket}/{name}")
        return io.BufferedReader(raw, buffer_size=BUFFER_BYTES)

    def describe(self, bucket: str, name: str, generation: str | None = None) -> ObjectInfo:
        blob = self._loaded(bucket, name, generation)
        return ObjectInfo(generation=str(blob.generation), size=int(blob.size or 0), crc32c=str(blob.crc32c or ""))

    def list_page(self, bucket: str, prefix: str, page_token: str, limit: int) -> tuple[list[ListedObject], str]:
        try:
            iterator = self._client.list_blobs(bucket, prefix=prefix, max_results=limit, page_token=page_token or None)
            page = next(iterator.pages, None)
            blobs = list(page) if page is not None else []
        except _TRANSIENT as exc:
            raise TransientError(f"listing gs://{bucket}/{prefix} failed: {exc}") from exc
        listed = [
            ListedObject(
                name=blob.name,
                generation=str(blob.generation),
                created=blob.time_created,
                metadata=dict(blob.metadata or {}),
                size=int(blob.size or 0),
            )
            for blob in blobs
        ]
        return listed, iterator.next_page_token or ""

    def copy_pinned(self, bucket: str, name: str, generation: str, destination: str) -> ObjectInfo:
        source_bucket = self._client.bucket(bucket)
        source = source_bucket.blob(name)
        # Looked up first as well as guarded by the precondition: fake-gcs-server ignores ifGenerationMatch on
        # copies, and the one writer of a job's copies is that job's own upload handler.
        try:
            existing = self.describe(bucket, destination)
        except ObjectMissing:
            existing = None
        if existing is not None:
            if existing.crc32c != self.describe(bucket, name, generation).crc32c:
                raise CopyConflict(f"gs://{bucket}/{destination} exists with other bytes")
            return existing
        try:
            copied = source_bucket.copy_blob(
                source, source_bucket, destination, source_generation=int(generation), if_generation_match=0
            )
        except gexc.PreconditionFailed:
            # Copied by an earlier delivery: fine if it is the same bytes.
            existing = self.describe(bucket, destination)
            if existing.crc32c != self.describe(bucket, name, generation).crc32c:
                raise CopyConflict(f"gs://{bucket}/{destination} exists with other bytes") from None
            return existing
        except gexc.NotFound as exc:
            raise ObjectMissing(f"gs://{bucket}/{name} at generation {generation} does not exist.") from exc
        except _TRANSIENT as exc:
            raise TransientError(f"copying gs://{bucket}/{name} failed: {exc}") from exc
        return ObjectInfo(
            generation=str(copied.generation), size=int(copied.size or 0), crc32c=str(copied.crc32c or "")
        )

    def write(self, bucket: str, name: str, data: bytes, content_type: str, *, if_absent: bool = False) -> str:
        blob = self._client.bucket(bucket).blob(name)
        try:
            # Generation 0 matches only an object that does not exist: GCS creates it or refuses, atomically.
            blob.upload_from_string(data, content_type=content_type, if_generation_match=0 if if_absent else None)
        except gexc.PreconditionFailed as exc:
            raise ObjectExists(f"gs://{bucket}/{name} exists.") from exc
        except _TRANSIENT as exc:
            raise TransientError(f"writing gs://{bucket}/{name} failed: {exc}") from exc
        return f"gs://{bucket}/{name}"
