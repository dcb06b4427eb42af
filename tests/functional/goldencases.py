"""Golden functional cases: input files paired with the expected output they must produce.

A case is two files in golden/cases/: `<case>.input.json` (the objects in the bucket and the requests sent
to the functions, step by step) and `<case>.expected.json` (what came out: each response's status, the
job documents, the objects the functions wrote, the messages they published, what Vertex AI was asked).
Everything that could vary comes from the harness's fake clock and the inputs, so the expected output
holds no wall-clock time and no random id.

To regenerate the expected outputs after a deliberate change, opt in and review the diff:

    TUNEDROP_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/functional/test_golden_cases.py
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from cloudevents.http import CloudEvent

from shared.jobs import JobState
from tests.fakes import Harness, crc32c_of
from tests.functional.support import GOLDEN, Functions, GoldenRequest, eventarc_request, load_golden

CASES = GOLDEN / "cases"
DATASETS = GOLDEN / "datasets"
UPDATE_ENV = "TUNEDROP_UPDATE_GOLDEN"


def case_names() -> list[str]:
    return sorted(path.name.removesuffix(".input.json") for path in CASES.glob("*.input.json"))


def load_input(case: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CASES / f"{case}.input.json").read_text())
    return doc


def expected_path(case: str) -> Path:
    return CASES / f"{case}.expected.json"


def updating() -> bool:
    """Whether the reviewer asked for the expected outputs to be rewritten (never the default)."""
    return os.environ.get(UPDATE_ENV) == "1"


def _request_of(step: Mapping[str, Any]) -> GoldenRequest:
    """A step's request: a recorded one by file name, or a CloudEvent written in the case (HTTP via the SDK)."""
    if "send" in step:
        return load_golden(step["send"])
    event = step["event"]
    return eventarc_request(CloudEvent(event["attributes"], event["data"]), mode=step.get("mode", "binary"))


def _stage(h: Harness, resource: Mapping[str, Any], file: str) -> tuple[str, str, str]:
    """Put ``file`` into the fake bucket as the object ``resource`` describes."""
    h.blobs.put(
        str(resource["bucket"]),
        str(resource["name"]),
        (DATASETS / file).read_bytes(),
        generation=str(resource["generation"]),
        metadata=resource.get("metadata"),
    )
    return str(resource["bucket"]), str(resource["name"]), str(resource["generation"])


def _vertex(h: Harness, outcome: str) -> None:
    """Move every tuning job Vertex AI runs for a job still RUNNING to ``outcome``."""
    for job in h.store.jobs():
        if job.state is JobState.RUNNING and job.vertex_job_name:
            if outcome == "succeed":
                h.tuning.succeed(job.vertex_job_name)
            else:
                h.tuning.set_state(job.vertex_job_name, outcome, error_code=13, error_message="injected failure")


def run_case(spec: Mapping[str, Any], h: Harness, functions: Functions) -> dict[str, Any]:
    """Play a case's steps against the functions; returns its output, ready to compare or write."""
    staged = {_stage(h, {"bucket": h.settings.bucket, **item}, item["file"]) for item in spec.get("objects", ())}
    clients = {"upload": functions.upload, "dispatch": functions.dispatch, "poll": functions.poll}
    statuses: list[int] = []
    for step in spec["steps"]:
        if "advance_seconds" in step:
            h.clock.advance(step["advance_seconds"])
        elif "vertex" in step:
            _vertex(h, step["vertex"])
        else:
            request = _request_of(step)
            if "object_file" in step:
                staged.add(_stage(h, request.announced_object(), step["object_file"]))
            statuses.append(request.send(clients[step["to"]]).status_code)
    output = {
        "statuses": statuses,
        "jobs": [job.to_document() for job in sorted(h.store.jobs(), key=lambda job: job.job_id)],
        "written": _written(h, staged),
        "published": [
            {"topic": message.topic, "attributes": message.attributes, "data": _content(message.data, "")}
            for message in h.publisher.messages
        ],
        "vertex_requests": [dataclasses.asdict(request) for request in h.tuning.requests],
    }
    return _plain(output)


def _written(h: Harness, staged: set[tuple[str, str, str]]) -> dict[str, Any]:
    """The objects the functions wrote (reports, pinned copies), by URI."""
    return {
        f"gs://{bucket}/{name}": _content(stored.data, name)
        for (bucket, name, generation), stored in sorted(h.blobs.objects.items())
        if (bucket, name, generation) not in staged
    }


def _content(data: bytes, name: str) -> Any:
    """JSON as the document it holds, a Markdown report as its text (lines), anything else (a dataset copy) by
    size and checksum."""
    try:
        return json.loads(data)
    except ValueError:
        if name.endswith(".md"):
            return data.decode().splitlines()
        return {"bytes": len(data), "crc32c": crc32c_of(data)}


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as it reads back from a JSON file (datetimes as ISO text)."""

    def encode(item: Any) -> Any:
        if isinstance(item, datetime):
            return item.isoformat()
        if isinstance(item, Mapping):
            return dict(item)
        raise TypeError(f"cannot write {type(item).__name__} to a golden file")

    plain: dict[str, Any] = json.loads(json.dumps(value, default=encode))
    return plain


def write_expected(case: str, output: Mapping[str, Any]) -> None:
    expected_path(case).write_text(json.dumps(output, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def load_expected(case: str) -> Any:
    return json.loads(expected_path(case).read_text())
