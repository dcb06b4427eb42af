"""ListTuningJobs page tokens: opaque to clients, bound to the query they were issued for."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Final

from .errors import invalid_argument

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000


def page_limit(page_size: int) -> int:
    """How many jobs a page holds: the default for 0, capped at the maximum; negative is refused."""
    if page_size < 0:
        raise invalid_argument(f"page_size must be >= 0, got {page_size}.")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def query_fingerprint(number: str, location: str, filter_text: str) -> str:
    """What a token is bound to, so a token from another parent or filter is rejected."""
    return hashlib.sha256(f"{number}/{location}|{filter_text}".encode()).hexdigest()[:16]


def encode_page_token(before_seq: int, fingerprint: str) -> str:
    raw = json.dumps({"before": before_seq, "query": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, fingerprint: str) -> int:
    """The creation sequence number the next page starts below."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        before = data["before"]
        query = data["query"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid_argument(f"Invalid page_token {token!r}.") from None
    if query != fingerprint or not isinstance(before, int):
        raise invalid_argument(
            "page_token does not match this request: parent and filter must stay the same across pages."
        )
    return before
