"""Turn incoming CloudEvents into service calls' inputs.

Uploads arrive two ways: a Cloud Storage notification delivered by a Pub/Sub push subscription
(which functions-framework turns into a `messagePublished` CloudEvent), or an Eventarc
`google.cloud.storage.object.v1.finalized` CloudEvent whose data is the object resource.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from shared.errors import PermanentError
from shared.services.upload import UploadedObject

PUBSUB_MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized"


def _object_from_resource(resource: Any, event_id: str) -> UploadedObject:
    if not isinstance(resource, Mapping):
        raise PermanentError("storage event data is not a JSON object resource")
    for key in ("bucket", "name", "generation"):
        if resource.get(key) in (None, ""):
            raise PermanentError(f"storage event lacks the object's {key!r}")
    metadata = resource.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise PermanentError("storage event's object metadata is not a JSON object")
    return UploadedObject(
        bucket=str(resource["bucket"]),
        name=str(resource["name"]),
        generation=str(resource["generation"]),
        metadata={str(k): str(v) for k, v in metadata.items()},
        event_id=event_id,
    )


def pubsub_message(data: Any) -> tuple[dict[str, str], bytes]:
    """Attributes and payload of the Pub/Sub message inside a messagePublished event."""
    if not isinstance(data, Mapping) or not isinstance(data.get("message"), Mapping):
        raise PermanentError("messagePublished event has no message")
    message = data["message"]
    attributes = {str(k): str(v) for k, v in (message.get("attributes") or {}).items()}
    try:
        payload = base64.b64decode(message.get("data") or b"", validate=True)
    except ValueError as exc:
        raise PermanentError("Pub/Sub message data is not base64") from exc
    return attributes, payload


def evaluation_request(event: Any) -> str:
    """The job id an evaluate-topic message asks the gate to judge ({"job_id": ...})."""
    if event["type"] != PUBSUB_MESSAGE_PUBLISHED:
        raise PermanentError(f"unsupported event type {event['type']!r}")
    _, payload = pubsub_message(event.get_data())
    try:
        job_id = json.loads(payload).get("job_id")
    except (ValueError, AttributeError) as exc:
        raise PermanentError("an evaluate message is JSON with a job_id") from exc
    if not isinstance(job_id, str) or not job_id:
        raise PermanentError("an evaluate message names no job_id")
    return job_id


def uploaded_object(event: Any) -> UploadedObject | None:
    """The finalized object, or None when the event is about something else (a delete, say)."""
    event_type = event["type"]
    event_id = str(event["id"])
    if event_type == STORAGE_FINALIZED:
        return _object_from_resource(event.get_data() or {}, event_id)
    if event_type != PUBSUB_MESSAGE_PUBLISHED:
        raise PermanentError(f"unsupported event type {event_type!r}")
    attributes, payload = pubsub_message(event.get_data())
    if attributes.get("eventType") != "OBJECT_FINALIZE":
        return None
    if attributes.get("payloadFormat", "JSON_API_V1") != "JSON_API_V1":
        raise PermanentError("bucket notification must use payload format JSON_API_V1")
    try:
        resource = json.loads(payload)
    except ValueError as exc:
        raise PermanentError("bucket notification payload is not JSON") from exc
    if not isinstance(resource, dict):
        raise PermanentError("bucket notification payload is not a JSON object resource")
    for key, attribute in (("bucket", "bucketId"), ("name", "objectId"), ("generation", "objectGeneration")):
        if resource.get(key) in (None, "") and attributes.get(attribute):
            resource[key] = attributes[attribute]
    return _object_from_resource(resource, event_id)
