"""Do the gs:// objects an example references exist, and how large are they? A small port; its Cloud
Storage adapter is shared.adapters.gcs_uris."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

DEFAULT_WORKERS = 16


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What the store says about an object that exists (a class rather than a bare int, so that a
    checker answering True or False is caught instead of read as a size of 1 or 0 bytes)."""

    size_bytes: int


class UriChecker(Protocol):
    """The object when it exists, None when it does not; raises when it cannot tell."""

    def __call__(self, uri: str) -> StoredObject | None: ...


UriCheck = StoredObject | None | Exception


def split_gs_uri(uri: str) -> tuple[str, str]:
    """("bucket", "object/name") of a gs:// URI; raises ValueError when it names no object."""
    rest = uri.removeprefix("gs://")
    bucket, _, name = rest.partition("/")
    if not uri.startswith("gs://") or not bucket or not name:
        raise ValueError(f"{uri} is not a gs://bucket/object URI")
    return bucket, name


def check_all(uris: Iterable[str], checker: UriChecker, max_workers: int = DEFAULT_WORKERS) -> dict[str, UriCheck]:
    """Check each URI once, at most ``max_workers`` at a time; errors are returned, not raised."""

    def one(uri: str) -> UriCheck:
        try:
            found = checker(uri)
            if found is not None and not isinstance(found, StoredObject):
                raise TypeError(f"the URI checker answered {found!r}, not a StoredObject or None")
            return found
        except Exception as exc:  # reported per URI, so one failure does not hide the others
            return exc

    unique = list(dict.fromkeys(uris))
    if not unique:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(unique))), thread_name_prefix="uri-check") as pool:
        return dict(zip(unique, pool.map(one, unique), strict=True))
