"""Entry points: permanent errors are acknowledged, anything else is raised for redelivery."""

from __future__ import annotations

import base64
import importlib
import json
import logging
import sys

import pytest
from cloudevents.http import CloudEvent

from shared.entrypoints import handle_dispatch, handle_poll, handle_upload
from shared.errors import PermanentError, TransientError
from shared.jobs import JobState, job_id_for
from tests.fakes import VALID_DATASET, Harness, make_harness


def notification(h: Harness, name: str = "incoming/a.jsonl", event_type: str = "OBJECT_FINALIZE") -> CloudEvent:
    stored = h.blobs.put("ds", name, VALID_DATASET)
    message = {
        "data": base64.b64encode(json.dumps(stored.resource()).encode()).decode(),
        "attributes": {"eventType": event_type, "payloadFormat": "JSON_API_V1"},
        "messageId": "42",
    }
    return CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub.googleapis.com/x", "id": "42"},
        {"message": message},
    )


def test_upload_runs_the_service(harness: Harness) -> None:
    event = notification(harness)
    handle_upload(event, harness.app)
    (job,) = harness.store.jobs()
    assert job.state is JobState.QUEUED
    assert job.job_id == job_id_for("ds", "incoming/a.jsonl", job.generation)


def test_ignored_events_do_nothing(harness: Harness) -> None:
    handle_upload(notification(harness, event_type="OBJECT_DELETE"), harness.app)
    assert harness.store.jobs() == []


def test_permanent_errors_are_swallowed(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    event = CloudEvent({"type": "com.example.unknown", "source": "//x", "id": "7"}, {})
    handle_upload(event, harness.app)  # does not raise: the message is acknowledged
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(e["severity"] == "ERROR" and e["event_id"] == "7" and e["function"] == "upload" for e in logged)


def test_transient_errors_propagate(harness: Harness) -> None:
    harness.blobs.fail_open(TransientError("503"))
    with pytest.raises(TransientError):
        handle_upload(notification(harness), harness.app)


def test_unexpected_errors_propagate(harness: Harness) -> None:
    harness.tuning.fail("find", RuntimeError("bug"))
    handle_upload(notification(harness), harness.app)
    with pytest.raises(RuntimeError):
        handle_dispatch(CloudEvent({"type": "t", "source": "//s", "id": "1"}, {}), harness.app)


def test_dispatch_and_poll_entry_points(harness: Harness) -> None:
    handle_upload(notification(harness), harness.app)
    tick = CloudEvent({"type": "t", "source": "//s", "id": "2"}, {})
    handle_dispatch(tick, harness.app)
    (job,) = harness.store.jobs()
    assert job.state is JobState.RUNNING
    harness.tuning.succeed(job.vertex_job_name)
    handle_poll(tick, harness.app)
    assert harness.store.job(job.job_id).state is JobState.SUCCEEDED


def test_the_dispatch_entry_point_keeps_the_deployed_policies_version_once() -> None:
    policies = {"teams": {"a": {"weight": 2}}, "change": {"changed_by": "ops@example.com", "reason": "a weighs 2"}}
    h = make_harness({"TUNEDROP_TEAM_POLICIES": json.dumps(policies)})
    tick = CloudEvent({"type": "t", "source": "//s", "id": "3"}, {})
    handle_dispatch(tick, h.app)
    handle_dispatch(tick, h.app)
    (kept,) = h.store.policy_history(limit=10)
    assert (kept.changed_by, kept.reason) == ("ops@example.com", "a weighs 2")
    assert h.store.calls["record_policy"] == 1  # once per instance


def test_permanent_error_class_is_what_decides() -> None:
    assert not issubclass(PermanentError, TransientError)


def test_the_functions_module_installs_json_logging_for_every_library(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.handlers[:] = [h for h in handlers if type(h).__name__ != "_JsonLineHandler"]
    sys.modules.pop("functions.main", None)
    try:
        importlib.import_module("functions.main")
        logging.getLogger("google.api_core.retry").info("retrying")
        (entry,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        assert entry["severity"] == "INFO" and entry["logger"] == "google.api_core.retry"
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
