"""Parsing incoming CloudEvents into the uploaded object."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_http

from shared.errors import PermanentError
from shared.services.upload import UploadedObject
from shared.triggers import PUBSUB_MESSAGE_PUBLISHED, STORAGE_FINALIZED, pubsub_message, uploaded_object

RESOURCE = {
    "kind": "storage#object",
    "id": "ds/incoming/a.jsonl#1795266321404665",
    "name": "incoming/a.jsonl",
    "bucket": "ds",
    "generation": "1795266321404665",
    "contentType": "application/jsonl",
    "metadata": {"base_model": "gemini-2.0-flash", "priority": 5},
}
ATTRIBUTES = {
    "bucketId": "ds",
    "objectId": "incoming/a.jsonl",
    "objectGeneration": "1795266321404665",
    "eventType": "OBJECT_FINALIZE",
    "payloadFormat": "JSON_API_V1",
    "notificationConfig": "projects/_/buckets/ds/notificationConfigs/1",
}


def pubsub_event(
    payload: bytes | str | None, attributes: dict[str, str] | None = None, msg_id: str = "m-1"
) -> CloudEvent:
    message: dict[str, Any] = {"attributes": ATTRIBUTES if attributes is None else attributes, "messageId": msg_id}
    if payload is not None:
        message["data"] = payload if isinstance(payload, str) else base64.b64encode(payload).decode()
    return CloudEvent(
        {"type": PUBSUB_MESSAGE_PUBLISHED, "source": "//pubsub.googleapis.com/projects/demo/topics/up", "id": msg_id},
        {"message": message, "subscription": "projects/demo/subscriptions/up"},
    )


def storage_event(data: Any, event_type: str = STORAGE_FINALIZED) -> CloudEvent:
    attrs = {
        "type": event_type,
        "source": "//storage.googleapis.com/projects/_/buckets/ds",
        "subject": "objects/incoming/a.jsonl",
        "id": "eventarc-1",
    }
    return CloudEvent(attrs, data)


EXPECTED = UploadedObject(
    bucket="ds",
    name="incoming/a.jsonl",
    generation="1795266321404665",
    metadata={"base_model": "gemini-2.0-flash", "priority": "5"},
    event_id="m-1",
)


def test_pubsub_bucket_notification() -> None:
    assert uploaded_object(pubsub_event(json.dumps(RESOURCE).encode())) == EXPECTED


def test_eventarc_storage_event() -> None:
    assert uploaded_object(storage_event(RESOURCE)) == replace_id(EXPECTED, "eventarc-1")


@pytest.mark.parametrize("to_http", [to_binary, to_structured], ids=["binary", "structured"])
def test_eventarc_storage_event_over_http(to_http: Any) -> None:
    """As functions-framework hands it over: written to HTTP by the SDK, read back from the request."""
    headers, body = to_http(storage_event({**RESOURCE, "metadata": {"priority": "5"}}))
    obj = uploaded_object(from_http(headers, body))
    assert obj == UploadedObject("ds", "incoming/a.jsonl", "1795266321404665", {"priority": "5"}, "eventarc-1")


def test_event_id_is_the_message_id() -> None:
    assert uploaded_object(pubsub_event(json.dumps(RESOURCE).encode(), msg_id="777")).event_id == "777"  # type: ignore[union-attr]


def test_attributes_fill_in_what_the_payload_lacks() -> None:
    obj = uploaded_object(pubsub_event(json.dumps({"kind": "storage#object"}).encode()))
    assert obj == UploadedObject("ds", "incoming/a.jsonl", "1795266321404665", {}, "m-1")


def test_object_without_metadata() -> None:
    resource = {k: v for k, v in RESOURCE.items() if k != "metadata"}
    obj = uploaded_object(storage_event(resource))
    assert obj is not None and obj.metadata == {}


@pytest.mark.parametrize("event_type", ["OBJECT_DELETE", "OBJECT_ARCHIVE", "OBJECT_METADATA_UPDATE"])
def test_non_finalize_notifications_are_ignored(event_type: str) -> None:
    event = pubsub_event(json.dumps(RESOURCE).encode(), {**ATTRIBUTES, "eventType": event_type})
    assert uploaded_object(event) is None


def test_a_plain_message_on_the_uploads_topic_is_ignored() -> None:
    assert uploaded_object(pubsub_event(b"hello", {})) is None


def test_other_cloud_event_types_are_refused_for_good() -> None:
    with pytest.raises(PermanentError, match="unsupported event type"):
        uploaded_object(storage_event(RESOURCE, "google.cloud.storage.object.v1.deleted"))


@pytest.mark.parametrize(
    ("event", "match"),
    [
        (lambda: pubsub_event(b"{not json"), "not JSON"),
        (lambda: pubsub_event(None), "not JSON"),
        (lambda: pubsub_event("***not base64***"), "not base64"),
        (lambda: pubsub_event(b"{}", {"eventType": "OBJECT_FINALIZE"}), "lacks the object's 'bucket'"),
        (lambda: pubsub_event(b"{}", {k: v for k, v in ATTRIBUTES.items() if k != "objectGeneration"}), "'generation'"),
        (lambda: pubsub_event(b'{"generation": null}', {"eventType": "OBJECT_FINALIZE"}), "'bucket'"),
        (lambda: storage_event({**RESOURCE, "metadata": ["x"]}), "metadata"),
        (lambda: pubsub_event(b"{}", {**ATTRIBUTES, "payloadFormat": "NONE"}), "JSON_API_V1"),
        (lambda: pubsub_event(b"[1, 2]"), "object"),
        (lambda: pubsub_event(b'"a string"'), "object"),
        (lambda: storage_event({"bucket": "ds", "name": "incoming/a.jsonl"}), "'generation'"),
        (lambda: storage_event(b"raw bytes"), "object"),
        (lambda: storage_event(["a", "list"]), "object"),
    ],
)
def test_malformed_events_are_permanent_errors(event: Any, match: str) -> None:
    with pytest.raises(PermanentError, match=match):
        uploaded_object(event())


def test_pubsub_message_needs_a_message() -> None:
    with pytest.raises(PermanentError, match="no message"):
        pubsub_message({"subscription": "s"})
    with pytest.raises(PermanentError, match="no message"):
        pubsub_message(None)
    assert pubsub_message({"message": {"data": base64.b64encode(b"x").decode()}}) == ({}, b"x")


def replace_id(obj: UploadedObject, event_id: str) -> UploadedObject:
    return UploadedObject(obj.bucket, obj.name, obj.generation, obj.metadata, event_id)
