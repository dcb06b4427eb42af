"""UriChecker on Cloud Storage: the adapter behind the validator's gs:// existence port."""

from __future__ import annotations

from typing import Any

from shared.validation.uris import split_gs_uri


class GcsUriChecker:
    """Checks objects with google-cloud-storage (honours STORAGE_EMULATOR_HOST)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    def _get_client(self) -> Any:
        if self._client is None:
            from google.cloud import storage

            self._client = storage.Client()
        return self._client

    def __call__(self, uri: str) -> bool:
        try:
            bucket, name = split_gs_uri(uri)
        except ValueError:
            return False
        return bool(self._get_client().bucket(bucket).blob(name).exists())
