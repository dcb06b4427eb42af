"""JSON-line logs on stdout that Cloud Logging reads as structured entries, through stdlib logging.

Every record, ours and every library's (google-api-core, grpc, urllib3...), becomes one JSON
object per line with ``severity``, ``message``, ``time`` and ``logger``, the fields set by
``log_context(...)`` around the call, the call's own fields, and ``exception`` when the record
carries exception info. Cloud Run hands stdout lines that parse as JSON to Cloud Logging as
``jsonPayload`` with the ``severity`` key lifted into the entry.

Use:

* ``configure_logging()`` once in a process's composition root (functions/main.py does it);
  it installs the JSON handler on the root logger, idempotently.
* ``info/warning/error(message, **fields)`` and ``log_context(**fields)`` in code; they go
  through the ``tunedrop`` logger. In a process that never called ``configure_logging`` (a
  test, a command of the ``tunedrop`` CLI) the first of them gives the ``tunedrop`` logger a
  JSON handler of its own, so our lines stay JSON on stdout as they always were, while the
  libraries' records are left to whatever that process set up.

Why not google-cloud-logging's ``StructuredLogHandler``: it is not installed, it would add a
dependency (and its transitive google-cloud-* pins) for what is about forty lines over
``logging``, and it does not know our ``log_context`` fields, which we would still have to
inject with a filter of our own.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final, TextIO

LOGGER_NAME: Final = "tunedrop"
_GOOGLE_LOGGER: Final = "google"  # the base logger of every google-cloud-* library
_FIELDS_ATTR: Final = "tunedrop_fields"  # where info/warning/error put their fields on a record

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("tunedrop_log", default=None)
_logger: Final = logging.getLogger(LOGGER_NAME)

# Cloud Logging's LogSeverity names, highest stdlib level first; a custom level takes the
# name of the highest standard level at or below it.
_SEVERITIES: Final = (
    (logging.CRITICAL, "CRITICAL"),
    (logging.ERROR, "ERROR"),
    (logging.WARNING, "WARNING"),
    (logging.INFO, "INFO"),
    (logging.DEBUG, "DEBUG"),
)
_LEVELS: Final = {name: level for level, name in _SEVERITIES}
# The attributes every LogRecord has; anything else on a record came from a call's `extra=`.
_RECORD_ATTRS: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    _FIELDS_ATTR,
}


def severity(levelno: int) -> str:
    """Cloud Logging's severity name for a stdlib level number."""
    return next((name for level, name in _SEVERITIES if levelno >= level), "DEFAULT")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: severity, message, time, logger, context, fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": severity(record.levelno),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
            # The handler runs synchronously in the caller's context, so the caller's context applies.
            **(_context.get() or {}),
            **{key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRS},
            **getattr(record, _FIELDS_ATTR, {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class _JsonLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose default stream is whatever sys.stdout is when a record is written.

    Looking sys.stdout up per record (rather than once) keeps output where a test's capture or
    a redirect put it after logging was configured.
    """

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream or sys.stdout)
        self._fixed_stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = self._fixed_stream or sys.stdout
        super().emit(record)


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Install the JSON handler on the root logger so every library's records are JSON lines too.

    Idempotent: a second call replaces the handler the first one installed (taking the new
    level and stream) instead of adding another, so no line is written twice.
    """
    root = logging.getLogger()
    _remove_json_handlers(root)
    # A host may already have put a plain console handler on the root (functions-framework does
    # with LOG_EXECUTION_ID set): every line would then come out twice, once as plain text.
    for handler in [h for h in root.handlers if _plain_console(h)]:
        root.removeHandler(handler)
    _remove_json_handlers(_logger)  # the fallback of an unconfigured process, if it was installed
    _logger.propagate = True
    _logger.setLevel(logging.NOTSET)
    root.addHandler(_json_handler(stream))
    root.setLevel(level)
    # google-api-core cuts the "google" logger off from the root (propagate=False) when a GAPIC
    # client is created, unless that logger already looks configured (a level, a handler or no
    # propagation). Give it a level and keep it propagating, so Pub/Sub's, Firestore's and Vertex
    # AI's records still reach the JSON handler, whichever came first.
    google = logging.getLogger(_GOOGLE_LOGGER)
    google.setLevel(level)
    google.propagate = True


def _json_handler(stream: TextIO | None) -> logging.Handler:
    handler = _JsonLineHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler


def _plain_console(handler: logging.Handler) -> bool:
    """A bare StreamHandler on stdout or stderr (not a subclass, such as a test's capture handler)."""
    stream = getattr(handler, "stream", None)
    return type(handler) is logging.StreamHandler and stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)


def _remove_json_handlers(logger: logging.Logger) -> None:
    for handler in [h for h in logger.handlers if isinstance(h, _JsonLineHandler)]:
        logger.removeHandler(handler)


def _ensure_configured() -> None:
    """Without configure_logging, our own records still become JSON lines on stdout (and only ours)."""
    configured = (logging.getLogger(), _logger)
    if not any(isinstance(h, _JsonLineHandler) for logger in configured for h in logger.handlers):
        _logger.addHandler(_json_handler(None))
        _logger.setLevel(logging.INFO)
        _logger.propagate = False


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach fields (event id, job id) to every log line written inside the block."""
    merged = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def log(severity_name: str, message: str, **fields: Any) -> None:
    """Log `message` with `fields` at a Cloud Logging severity name (INFO, WARNING, ERROR...)."""
    _emit(_LEVELS.get(severity_name, logging.INFO), message, fields)


def _emit(level: int, message: str, fields: Mapping[str, Any]) -> None:
    _ensure_configured()
    # The fields travel under one attribute: a field named like a LogRecord attribute
    # ("name", "module", "args") would otherwise make logging refuse the record.
    _logger.log(level, message, extra={_FIELDS_ATTR: dict(fields)}, stacklevel=3)


def info(message: str, **fields: Any) -> None:
    _emit(logging.INFO, message, fields)


def warning(message: str, **fields: Any) -> None:
    _emit(logging.WARNING, message, fields)


def error(message: str, **fields: Any) -> None:
    _emit(logging.ERROR, message, fields)
