"""on_upload over real functions-framework HTTP handling, fed golden push and Eventarc requests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from shared import bootstrap
from shared.errors import TransientError
from shared.jobs import JobState, job_id_for
from tests.fakes import INVALID_DATASET, VALID_DATASET, Harness
from tests.functional.support import (
    Functions,
    GoldenRequest,
    changed_event,
    create_function_app,
    eventarc_request,
    load_golden,
)

FINALIZE = load_golden("pubsub_gcs_finalize.json")
DELETE = load_golden("pubsub_gcs_delete.json")
BINARY = load_golden("eventarc_finalized_binary.json")
STRUCTURED = load_golden("eventarc_finalized_structured.json")


def stage(h: Harness, resource: dict[str, Any], data: bytes = VALID_DATASET) -> str:
    """Put the object the request announces into the fake bucket; returns its job id."""
    h.blobs.put(
        resource["bucket"],
        resource["name"],
        data,
        generation=resource["generation"],
        metadata=resource.get("metadata"),
    )
    return job_id_for(resource["bucket"], resource["name"], resource["generation"])


# ---- the golden requests are what the platform really sends ---------------------------------


def test_golden_bucket_notification_has_the_fake_gcs_server_shape() -> None:
    resource = FINALIZE.pubsub_data()
    attributes = FINALIZE.body["message"]["attributes"]
    assert resource["kind"] == "storage#object"
    assert resource["id"] == f"{resource['bucket']}/{resource['name']}#{resource['generation']}"
    assert isinstance(resource["generation"], str)
    assert attributes["payloadFormat"] == "JSON_API_V1"
    assert attributes["eventType"] == "OBJECT_FINALIZE"
    assert (attributes["bucketId"], attributes["objectId"], attributes["objectGeneration"]) == (
        resource["bucket"],
        resource["name"],
        resource["generation"],
    )
    assert FINALIZE.body["subscription"].startswith("projects/demo/subscriptions/")
    assert DELETE.body["message"]["attributes"]["eventType"] == "OBJECT_DELETE"


def test_golden_eventarc_requests_are_cloud_events() -> None:
    binary, structured = BINARY.cloud_event(), STRUCTURED.cloud_event()
    assert binary["type"] == structured["type"] == "google.cloud.storage.object.v1.finalized"
    assert binary["subject"] == f"objects/{BINARY.announced_object()['name']}"
    assert structured["subject"] == f"objects/{STRUCTURED.announced_object()['name']}"
    assert binary["bucket"] == "ds"  # Eventarc's extension attribute
    assert STRUCTURED.headers["Content-Type"].startswith("application/cloudevents+json")
    # What the SDK writes for these events is the same request the platform sent.
    assert eventarc_request(binary, mode="binary").cloud_event() == binary
    assert eventarc_request(structured, mode="structured").cloud_event() == structured
    assert eventarc_request(binary, mode="binary").body == BINARY.body


def test_the_function_sees_a_pubsub_cloud_event_named_after_the_push_path(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[CloudEvent] = []
    monkeypatch.setattr("shared.entrypoints.handle_upload", seen.append)
    client = create_function_app("on_upload").test_client()  # main.py re-imported: sees the stand-in
    assert FINALIZE.send(client).status_code == 200
    (event,) = seen
    assert event["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert event["source"] == "//pubsub.googleapis.com/projects/demo/topics/tunedrop-uploads"
    assert event["id"] == FINALIZE.body["message"]["messageId"]
    data = event.get_data()
    assert data is not None and data["message"]["attributes"]["objectId"] == "incoming/a.jsonl"


# ---- uploads --------------------------------------------------------------------------------


def test_pubsub_notification_queues_a_job(world: Harness, functions: Functions) -> None:
    job_id = stage(world, FINALIZE.pubsub_data())
    response = FINALIZE.send(functions.upload)
    assert response.status_code == 200

    job = world.job(job_id)
    assert job.state is JobState.QUEUED
    assert job.dataset_uri == "gs://ds/incoming/a.jsonl"
    assert job.generation == "1795266321404665"
    assert (job.base_model, job.priority) == ("gemini-2.0-flash-001", 5)  # from the object's metadata
    assert job.upload_event_id == "13254875362510743"
    assert [m.json() for m in world.dispatch_messages()] == [{"reason": "queued", "job_id": job_id}]


@pytest.mark.parametrize("golden", [BINARY, STRUCTURED], ids=["binary", "structured"])
def test_eventarc_event_queues_a_job(world: Harness, functions: Functions, golden: GoldenRequest) -> None:
    resource = golden.announced_object()
    job_id = stage(world, resource)
    assert golden.send(functions.upload).status_code == 200
    job = world.job(job_id)
    assert job.state is JobState.QUEUED
    assert job.object_name == resource["name"]
    assert job.upload_event_id == golden.cloud_event()["id"]
    assert job.priority == (2 if golden is BINARY else 0)
    assert len(world.dispatch_messages()) == 1


def test_redelivery_and_a_second_route_create_no_second_job(world: Harness, functions: Functions) -> None:
    job_id = stage(world, FINALIZE.pubsub_data())
    assert FINALIZE.send(functions.upload).status_code == 200
    before = world.store.get(job_id)

    assert FINALIZE.send(functions.upload).status_code == 200  # Pub/Sub redelivers
    # The same object announced by Eventarc as well.
    eventarc = eventarc_request(
        changed_event(BINARY.cloud_event(), FINALIZE.pubsub_data(), subject="objects/incoming/a.jsonl")
    )
    assert eventarc.send(functions.upload).status_code == 200

    assert world.store.get(job_id) == before
    assert len(world.store.jobs()) == 1
    assert len(world.dispatch_messages()) == 1


def test_object_delete_is_ignored_and_acknowledged(world: Harness, functions: Functions) -> None:
    stage(world, DELETE.pubsub_data())
    response = DELETE.send(functions.upload)
    assert response.status_code == 200
    assert world.store.jobs() == []
    assert world.publisher.messages == []
    assert world.blobs.opens == 0


def test_invalid_dataset_is_rejected_with_one_event(world: Harness, functions: Functions) -> None:
    job_id = stage(world, FINALIZE.pubsub_data(), INVALID_DATASET)
    assert FINALIZE.send(functions.upload).status_code == 200
    assert FINALIZE.send(functions.upload).status_code == 200
    job = world.job(job_id)
    assert job.state is JobState.REJECTED
    report = json.loads(world.blobs.read("ds", f"reports/{job.team}/{job_id}.json"))
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(2, "not_json"), (3, "missing_contents")]
    (event,) = world.completions()
    assert event.attributes["ce-type"] == "tunedrop.job.v1.rejected"
    assert world.dispatch_messages() == []


def test_an_object_gone_before_delivery_is_rejected_and_acknowledged(world: Harness, functions: Functions) -> None:
    resource = FINALIZE.pubsub_data()
    job_id = job_id_for(resource["bucket"], resource["name"], resource["generation"])
    assert FINALIZE.send(functions.upload).status_code == 200  # nothing was staged
    assert world.job(job_id).validation["error_counts"] == {"object_missing": 1}


def test_objects_outside_incoming_are_ignored(world: Harness, functions: Functions) -> None:
    resource = {**FINALIZE.pubsub_data(), "name": "reports/x.json"}
    request = FINALIZE.with_pubsub_data(json.dumps(resource).encode(), objectId="reports/x.json")
    assert request.send(functions.upload).status_code == 200
    assert world.store.jobs() == []


@pytest.mark.parametrize(
    "make_request",
    [
        pytest.param(lambda: FINALIZE.with_pubsub_data("%%% not base64 %%%"), id="data-not-base64"),
        pytest.param(lambda: FINALIZE.with_pubsub_data(b"<html>not json</html>"), id="payload-not-json"),
        pytest.param(lambda: FINALIZE.with_pubsub_data(b"[1, 2, 3]"), id="payload-not-an-object"),
        pytest.param(lambda: FINALIZE.with_pubsub_data(b"{}", objectGeneration=None), id="no-generation"),
        pytest.param(lambda: FINALIZE.with_pubsub_data(b"", payloadFormat="NONE"), id="payload-format-none"),
        pytest.param(
            lambda: eventarc_request(changed_event(BINARY.cloud_event(), {"bucket": "ds", "generation": "1"})),
            id="no-name",
        ),
        pytest.param(
            lambda: eventarc_request(changed_event(BINARY.cloud_event(), {}, type="com.example.other")),
            id="other-event-type",
        ),
    ],
)
def test_malformed_notifications_are_acknowledged(
    world: Harness, functions: Functions, make_request: Callable[[], GoldenRequest]
) -> None:
    response = make_request().send(functions.upload)
    assert response.status_code == 200  # retrying cannot help: acknowledge, do not redeliver forever
    assert world.store.jobs() == []
    assert world.publisher.messages == []


def test_a_transient_storage_error_is_a_5xx_and_the_redelivery_succeeds(world: Harness, functions: Functions) -> None:
    job_id = stage(world, FINALIZE.pubsub_data())
    world.blobs.fail_open(TransientError("503 Service Unavailable"))
    response = FINALIZE.send(functions.upload)
    assert response.status_code == 500
    assert world.job(job_id).state is JobState.VALIDATING

    assert FINALIZE.send(functions.upload).status_code == 200
    assert world.job(job_id).state is JobState.QUEUED
    assert len(world.dispatch_messages()) == 1


def test_a_failed_rejection_event_is_a_5xx_then_published_once(world: Harness, functions: Functions) -> None:
    job_id = stage(world, FINALIZE.pubsub_data(), INVALID_DATASET)
    world.publisher.fail_next(topic=world.settings.completions_topic)
    assert FINALIZE.send(functions.upload).status_code == 500
    assert world.completions() == []
    assert FINALIZE.send(functions.upload).status_code == 200
    assert [e.attributes["ce-id"] for e in world.completions()] == [f"{job_id}/1/rejected"]


def test_another_delivery_while_one_validates_is_a_5xx(world: Harness, functions: Functions) -> None:
    job_id = stage(world, FINALIZE.pubsub_data())
    world.blobs.fail_open(TransientError("503"))
    assert FINALIZE.send(functions.upload).status_code == 500  # first delivery dies mid-validation
    other = FINALIZE.with_message_id("99999")
    assert other.send(functions.upload).status_code == 500  # must wait: retried later
    assert FINALIZE.send(functions.upload).status_code == 200
    assert world.job(job_id).state is JobState.QUEUED


def test_missing_configuration_is_a_5xx(
    functions: Functions, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no App installed the function builds one from the environment; bad settings are retried."""
    bootstrap.set_app(None)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("TUNEDROP_BUCKET", raising=False)
    response = FINALIZE.send(functions.upload)
    assert response.status_code == 500
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (entry,) = [e for e in logged if e.get("error_type") == "ConfigError"]
    assert entry["severity"] == "ERROR"
    assert "TUNEDROP_BUCKET is not set" in entry["error"]
    assert entry["event_id"] == FINALIZE.body["message"]["messageId"]
