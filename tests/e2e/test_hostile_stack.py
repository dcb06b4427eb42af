"""The adversarial corpus on the whole local stack: real bucket notifications, push deliveries, the
dead-letter policy. Every upload settles within 60 s and no delivery of any of them fails, so none is
delivered again, let alone more often than the subscription's retry policy allows."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from shared.bootstrap import build_app
from shared.jobs import JobState, job_id_for
from tests.e2e.helpers import bucket
from tests.integration.test_hostile_corpus import CASES, GOOD
from tests.stackfixture import log_lines

pytestmark = pytest.mark.e2e

SETTLE_SECONDS = 60


def test_every_hostile_upload_settles_within_a_minute_without_a_failed_delivery(stack_env: dict[str, str]) -> None:
    env = stack_env
    target = bucket(env)
    target.blob("datasets/t.jsonl").upload_from_string(GOOD * 3)
    run = uuid.uuid4().hex[:6]
    failures_before = _failed_deliveries()
    expected: dict[str, tuple[JobState, str | None, str]] = {}
    started = time.monotonic()
    for case in CASES:
        if case.before is not None:
            continue  # changes between notification and validation cannot be timed through the bucket
        *folders, leaf = case.name.split("/")
        blob = target.blob("/".join(["incoming", *folders, f"{run}-{leaf}"]))
        if case.metadata:
            blob.metadata = case.metadata
        blob.upload_from_string(case.body)
        expected[job_id_for(env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))] = (
            case.state,
            case.code,
            blob.name,
        )
    assert len(expected) >= 60
    store = build_app().store

    def unsettled() -> list[str]:
        waiting = []
        for job_id in expected:
            found = store.get(job_id)
            if found is None or found.value.state is JobState.VALIDATING:
                waiting.append(job_id)
        return waiting

    while unsettled() and time.monotonic() - started < SETTLE_SECONDS:
        time.sleep(1)
    assert unsettled() == [], f"not settled within {SETTLE_SECONDS} s"
    for job_id, (state, code, name) in expected.items():
        found = store.get(job_id)
        assert found is not None
        job = found.value
        if state is JobState.REJECTED:
            assert job.state is JobState.REJECTED, (name, job.validation)
            assert code is None or code in job.validation["error_counts"], (name, job.validation["error_counts"])
        else:
            assert job.state in (JobState.QUEUED, JobState.SUBMITTING, JobState.RUNNING, JobState.SUCCEEDED), name
    # Tests run one at a time: every failed upload delivery since the uploads began is one of ours.
    failed = _failed_deliveries()[len(failures_before) :]
    assert failed == [], "a delivery of a hostile upload failed and was redelivered"


def _failed_deliveries() -> list[dict[str, object]]:
    return [
        json.loads(line)
        for line in log_lines("upload")
        if line.startswith("{") and "transient error; message will be redelivered" in line
    ]
