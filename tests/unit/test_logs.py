"""shared.logs: every record, ours or a library's, is one JSON line Cloud Logging can read."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from shared import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Log into a buffer for one test, then leave the root logger as the test found it."""
    root, google = logging.getLogger(), logging.getLogger("google")
    handlers, level = list(root.handlers), root.level
    google_level, google_propagates = google.level, google.propagate
    buffer = io.StringIO()
    logs.configure_logging(stream=buffer)
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)
    google.setLevel(google_level)
    google.propagate = google_propagates


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("call", "expected"),
    [(logs.info, "INFO"), (logs.warning, "WARNING"), (logs.error, "ERROR")],
)
def test_one_json_line_per_record_with_its_severity(stream: io.StringIO, call: Any, expected: str) -> None:
    call("something happened", job_id="j1", count=3)
    (entry,) = lines(stream)
    assert entry["severity"] == expected
    assert entry["message"] == "something happened"
    assert entry["job_id"] == "j1" and entry["count"] == 3
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.DEBUG, "DEBUG"),
        (logging.INFO, "INFO"),
        (logging.WARNING, "WARNING"),
        (logging.ERROR, "ERROR"),
        (logging.CRITICAL, "CRITICAL"),
        (logging.WARNING + 5, "WARNING"),
        (5, "DEFAULT"),
    ],
)
def test_stdlib_levels_map_to_cloud_logging_severities(level: int, expected: str) -> None:
    assert logs.severity(level) == expected


def test_context_fields_apply_inside_the_block_only(stream: io.StringIO) -> None:
    with logs.log_context(event_id="e1", job_id=None):
        with logs.log_context(job_id="j2"):
            logs.info("inner")
        logs.info("outer")
    logs.info("after")
    inner, outer, after = lines(stream)
    assert inner["event_id"] == "e1" and inner["job_id"] == "j2"
    assert outer["event_id"] == "e1" and "job_id" not in outer
    assert "event_id" not in after


def test_a_third_party_record_is_json_too_with_its_extra_and_the_context(stream: io.StringIO) -> None:
    with logs.log_context(event_id="e9"):
        logging.getLogger("urllib3.connectionpool").warning("retrying %s", "/v1/x", extra={"attempt": 2})
    (entry,) = lines(stream)
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "retrying /v1/x"
    assert entry["logger"] == "urllib3.connectionpool"
    assert entry["attempt"] == 2 and entry["event_id"] == "e9"


def test_exception_info_is_included(stream: io.StringIO) -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("google.api_core").exception("call failed")
    (entry,) = lines(stream)
    assert entry["severity"] == "ERROR"
    assert "ValueError: bad value" in entry["exception"] and "Traceback" in entry["exception"]


def test_fields_named_like_record_attributes_are_kept(stream: io.StringIO) -> None:
    logs.warning("odd fields", name="model-x", module="m", args=[1])
    (entry,) = lines(stream)
    assert (entry["name"], entry["module"], entry["args"]) == ("model-x", "m", [1])


def test_configuring_twice_does_not_duplicate_lines(stream: io.StringIO) -> None:
    logs.configure_logging(stream=stream)
    logs.configure_logging(stream=stream)
    logs.info("once")
    assert [e["message"] for e in lines(stream)] == ["once"]


def test_the_level_filters_records(stream: io.StringIO) -> None:
    logs.configure_logging(level=logging.WARNING, stream=stream)
    logs.info("dropped")
    logs.warning("kept")
    assert [e["message"] for e in lines(stream)] == ["kept"]


def test_the_default_stream_is_stdout_at_write_time(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        logs.configure_logging()
        logs.info("to stdout", job_id="j3")
        (entry,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert entry["message"] == "to stdout" and entry["job_id"] == "j3"
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
def unconfigured() -> Iterator[None]:
    """A process that never called configure_logging; the loggers are put back afterwards."""
    root, ours = logging.getLogger(), logging.getLogger(logs.LOGGER_NAME)
    saved = (list(root.handlers), root.level, list(ours.handlers), ours.level, ours.propagate)
    root.handlers[:] = [h for h in saved[0] if type(h).__name__ != "_JsonLineHandler"]
    ours.handlers[:] = []
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    ours.handlers[:], ours.level, ours.propagate = saved[2], saved[3], saved[4]


@pytest.mark.usefixtures("unconfigured")
def test_unconfigured_our_records_are_json_on_stdout_and_the_libraries_are_left_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.info("unconfigured", job_id="j4")
    logs.error("still one handler")
    logging.getLogger("urllib3.connectionpool").info("library chatter")
    out = capsys.readouterr().out
    assert "library chatter" not in out
    first, second = (json.loads(line) for line in out.splitlines())
    assert (first["severity"], first["message"], first["job_id"]) == ("INFO", "unconfigured", "j4")
    assert second["message"] == "still one handler"


@pytest.mark.usefixtures("unconfigured")
def test_configuring_after_the_fallback_does_not_duplicate_lines(capsys: pytest.CaptureFixture[str]) -> None:
    logs.info("before")  # installs the fallback, writing to stdout
    buffer = io.StringIO()
    logs.configure_logging(stream=buffer)
    logs.info("after")
    assert [e["message"] for e in lines(buffer)] == ["after"]
    assert [json.loads(line)["message"] for line in capsys.readouterr().out.splitlines()] == ["before"]


def test_google_clients_do_not_cut_their_records_off_from_the_json_handler(stream: io.StringIO) -> None:
    # Creating a GAPIC client (Pub/Sub, Firestore, Vertex AI) runs api-core's logging set-up, which
    # stops the "google" logger propagating unless it already looks configured.
    from google.api_core import client_logging

    google = logging.getLogger("google")
    google.propagate = False  # a client created before configure_logging
    logs.configure_logging(stream=stream)
    client_logging.setup_logging()  # a client created after it
    logging.getLogger("google.api_core.retry").warning("retrying")
    (entry,) = lines(stream)
    assert entry["logger"] == "google.api_core.retry"
    assert entry["severity"] == "WARNING"


def test_a_plain_console_handler_a_host_installed_does_not_double_every_line(
    stream: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    plain = logging.StreamHandler(sys.stderr)  # what functions-framework's dictConfig installs
    root.addHandler(plain)
    try:
        logs.configure_logging(stream=stream)
        logs.warning("hello")
        assert plain not in root.handlers
        assert [entry["message"] for entry in lines(stream)] == ["hello"]
        assert "hello" not in capsys.readouterr().err
    finally:
        if plain in root.handlers:
            root.removeHandler(plain)
