"""Helpers of the functional tier: golden HTTP requests and the functions-framework apps."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import functions_framework
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

    def send(self, client: FlaskClient) -> TestResponse:
        return client.post(self.path, data=json.dumps(self.body), headers=self.headers)


def load_golden(name: str) -> GoldenRequest:
    doc = json.loads((GOLDEN / name).read_text())
    assert doc["method"] == "POST"
    return GoldenRequest(name=name, path=doc["path"], headers=doc["headers"], body=doc["body"])


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
