"""Helpers of the functional tier: golden HTTP requests and the functions-framework apps.

Eventarc requests are CloudEvents over HTTP: the tests build them with the `cloudevents` SDK
(`to_binary` / `to_structured`), as the platform does, and read recorded ones back with `from_http`.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import functions_framework
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_http
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "functions" / "main.py"
GOLDEN = Path(__file__).resolve().parent / "golden"


@dataclass
class GoldenRequest:
    """One recorded HTTP request: what a push subscription or Eventarc sends the function."""

    name: str
    path: str
    headers: dict[str, str]
    body: Any

    def pubsub_data(self) -> Any:
        """The decoded `message.data` of a Pub/Sub push envelope, parsed as JSON."""
        return json.loads(base64.b64decode(self.body["message"]["data"]))

    def with_pubsub_data(self, data: bytes | str, **attributes: str | None) -> GoldenRequest:
        """A copy with other message data (bytes are base64-encoded, str sent as is) and attributes."""
        body = copy.deepcopy(self.body)
        message = body["message"]
        message["data"] = base64.b64encode(data).decode() if isinstance(data, bytes) else data
        for key, value in attributes.items():
            if value is None:
                message["attributes"].pop(key, None)
            else:
                message["attributes"][key] = value
        return GoldenRequest(self.name, self.path, dict(self.headers), body)

    def with_message_id(self, message_id: str) -> GoldenRequest:
        body = copy.deepcopy(self.body)
        body["message"]["messageId"] = body["message"]["message_id"] = message_id
        return GoldenRequest(self.name, self.path, dict(self.headers), body)

    def cloud_event(self) -> CloudEvent:
        """The CloudEvent an Eventarc request carries (binary or structured content mode)."""
        return from_http(self.headers, json.dumps(self.body))

    def announced_object(self) -> dict[str, Any]:
        """The object resource the request announces: a bucket notification's payload or an Eventarc event's data."""
        resource = self.pubsub_data() if "message" in self.body else self.cloud_event().get_data()
        assert isinstance(resource, dict), f"{self.name} announces no object"
        return resource

    def send(self, client: FlaskClient) -> TestResponse:
        return client.post(self.path, data=json.dumps(self.body), headers=self.headers)


def load_golden(name: str) -> GoldenRequest:
    doc = json.loads((GOLDEN / name).read_text())
    assert doc["method"] == "POST"
    return GoldenRequest(name=name, path=doc["path"], headers=doc["headers"], body=doc["body"])


def eventarc_request(
    event: CloudEvent, *, mode: Literal["binary", "structured"] = "binary", name: str = "eventarc"
) -> GoldenRequest:
    """The HTTP request Eventarc sends for ``event``, in the given content mode, written by the cloudevents SDK."""
    headers, body = (to_binary if mode == "binary" else to_structured)(event)
    return GoldenRequest(name=name, path="/", headers=headers, body=json.loads(body))


def changed_event(event: CloudEvent, data: Any = None, **attributes: str) -> CloudEvent:
    """A copy of ``event`` with some attributes (and, when given, the data) replaced."""
    return CloudEvent({**event.get_attributes(), **attributes}, event.get_data() if data is None else data)


def create_function_app(target: str) -> Flask:
    app: Flask = functions_framework.create_app(  # type: ignore[no-untyped-call]
        target=target, source=str(SOURCE), signature_type="cloudevent"
    )
    return app


@dataclass
class Functions:
    upload: FlaskClient
    dispatch: FlaskClient
    poll: FlaskClient
