"""JSON-line logs on stdout that Cloud Logging reads as structured entries."""

from __future__ import annotations

import contextvars
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("tunedrop_log", default=None)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach fields (event id, job id) to every log line written inside the block."""
    merged = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def log(severity: str, message: str, *, stream: TextIO | None = None, **fields: Any) -> None:
    entry: dict[str, Any] = {
        "severity": severity,
        "message": message,
        "time": datetime.now(UTC).isoformat(),
        **(_context.get() or {}),
        **fields,
    }
    out = stream or sys.stdout
    out.write(json.dumps(entry, default=str) + "\n")
    out.flush()


def info(message: str, **fields: Any) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    log("ERROR", message, **fields)
