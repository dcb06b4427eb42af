"""UriChecker on Cloud Storage: the adapter behind the validator's gs:// object port."""

from __future__ import annotations

from typing import Any

from shared.validation.uris import StoredObject, split_gs_uri


class GcsUriChecker:
    """Looks objects up with google-cloud-storage (honours STORAGE_EMULATOR_HOST)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    def _get_client(self) -> Any:
        if self._client is None:
            from google.cloud import storage

            self._client = storage.Client()
        return self._client

    def __call__(self, uri: str) -> StoredObject | None:
        try:
            bucket, name = split_gs_uri(uri)
        except ValueError:
            return None
        # One metadata request: get_blob answers None for a missing object and raises on other errors
        # (a 403 among them), which the caller reports as a check that failed.
        blob = self._get_client().bucket(bucket).get_blob(name)
        if blob is None:
            return None
        if blob.size is None:
            raise ValueError(f"Cloud Storage gave no size for {uri}")
        return StoredObject(size_bytes=int(blob.size))
