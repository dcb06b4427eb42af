"""Do the gs:// objects an example references exist? A small port; its Cloud Storage adapter is
shared.adapters.gcs_uris."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

DEFAULT_WORKERS = 16


class UriChecker(Protocol):
    """True when the object exists, False when it does not; raises when it cannot tell."""

    def __call__(self, uri: str) -> bool: ...


def split_gs_uri(uri: str) -> tuple[str, str]:
    """("bucket", "object/name") of a gs:// URI; raises ValueError when it names no object."""
    rest = uri.removeprefix("gs://")
    bucket, _, name = rest.partition("/")
    if not uri.startswith("gs://") or not bucket or not name:
        raise ValueError(f"{uri} is not a gs://bucket/object URI")
    return bucket, name


def check_all(
    uris: Iterable[str], checker: UriChecker, max_workers: int = DEFAULT_WORKERS
) -> dict[str, bool | Exception]:
    """Check each URI once, at most ``max_workers`` at a time; errors are returned, not raised."""

    def one(uri: str) -> bool | Exception:
        try:
            return bool(checker(uri))
        except Exception as exc:  # reported per URI, so one failure does not hide the others
            return exc

    unique = list(dict.fromkeys(uris))
    if not unique:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(unique))), thread_name_prefix="uri-check") as pool:
        return dict(zip(unique, pool.map(one, unique), strict=True))
