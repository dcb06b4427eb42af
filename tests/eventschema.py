"""Check completion events against the JSON Schema published in shared/schemas/."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "shared" / "schemas" / "completion-event-data.v1.json"
REQUIRED_ATTRIBUTES = ("ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time", "ce-subject", "content-type")


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def assert_valid_completion(attributes: dict[str, str], data: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    missing = [a for a in REQUIRED_ATTRIBUTES if not attributes.get(a)]
    assert not missing, f"missing CloudEvents attributes {missing}"
    assert attributes["ce-subject"] == data["job_id"]
    assert attributes["ce-type"] == f"tunedrop.job.v1.{data['state'].lower()}"
    assert attributes["state"] == data["state"]
