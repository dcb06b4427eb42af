"""Check completion events against the JSON Schema published in shared/schemas/."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from cloudevents.http import from_http

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "shared" / "schemas" / "completion-event-data.v1.json"
# Copies of the schema as it was published at each release that changed it: an event must still validate
# against every one of them, or a subscriber validating with an earlier copy would refuse it. Add a copy
# here whenever the schema changes (never edit one).
PUBLISHED = sorted((Path(__file__).resolve().parent / "fixtures" / "schemas").glob("completion-event-data.v1.*.json"))
REQUIRED_ATTRIBUTES = ("ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time", "ce-subject", "content-type")


@cache
def _validator(path: Path = SCHEMA_PATH) -> jsonschema.Draft202012Validator:
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(data: dict[str, Any], path: Path = SCHEMA_PATH) -> list[str]:
    return [
        f"{list(e.path)}: {e.message}" for e in sorted(_validator(path).iter_errors(data), key=lambda e: list(e.path))
    ]


def assert_valid_completion(attributes: dict[str, str], data: dict[str, Any]) -> None:
    for path in (SCHEMA_PATH, *PUBLISHED):
        errors = schema_errors(data, path)
        assert not errors, (path.name, errors)
    assert attributes.get("ce-dataschema") == json.loads(SCHEMA_PATH.read_text())["$id"]
    missing = [a for a in REQUIRED_ATTRIBUTES if not attributes.get(a)]
    assert not missing, f"missing CloudEvents attributes {missing}"
    # A subscriber's CloudEvents SDK reads the message as a binary-mode event, its data the same document.
    event = from_http(attributes, json.dumps(data))
    assert (event["id"], event["specversion"], event.get_data()) == (attributes["ce-id"], "1.0", data)
    assert attributes["ce-subject"] == data["job_id"]
    assert attributes["ce-type"] == f"tunedrop.job.v1.{data['state'].lower()}"
    assert attributes["state"] == data["state"]


MODEL_SCHEMA_PATH = SCHEMA_PATH.with_name("model-event-data.v1.json")


def assert_valid_model_event(attributes: dict[str, str], data: dict[str, Any]) -> None:
    """A tunedrop.model.v1.* event: its data against its own schema, and the CloudEvents attributes."""
    errors = schema_errors(data, MODEL_SCHEMA_PATH)
    assert not errors, errors
    assert attributes.get("ce-dataschema") == json.loads(MODEL_SCHEMA_PATH.read_text())["$id"]
    assert attributes.get("ce-type") == f"tunedrop.model.v1.{data['kind']}"
    missing = [a for a in REQUIRED_ATTRIBUTES if not attributes.get(a)]
    assert not missing, f"missing CloudEvents attributes {missing}"
