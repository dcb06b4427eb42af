"""Completion and lifecycle events end to end: every outcome, checked against the published schema."""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict

import pytest

from shared.bootstrap import build_app
from shared.jobs import job_id_for
from tests.e2e.helpers import Completion, CompletionReader, bucket, dataset, wait_for
from tests.e2e.stacks import stack_fixture
from tests.eventschema import assert_valid_completion

pytestmark = pytest.mark.e2e


failing_env = stack_fixture(
    "events",
    {
        "TUNEDROP_QUOTA": "2",
        "TUNEDROP_EMULATOR_QUOTA": "10",
        "TUNEDROP_EMULATOR_JOB_SECONDS": "3",
        "TUNEDROP_EMULATOR_FAIL_RATE": "0.5",
        # With this seed the first five jobs end FAILED, SUCCEEDED, FAILED, FAILED, SUCCEEDED.
        "TUNEDROP_EMULATOR_SEED": "2",
        "TUNEDROP_POLL_SECONDS": "1",
    },
    scope="module",
)


def test_every_outcome_is_announced_once_and_matches_the_schema(failing_env: dict[str, str]) -> None:
    env = failing_env
    completions = CompletionReader(env)
    lifecycle = CompletionReader({**env, "TUNEDROP_COMPLETIONS_TOPIC": env["TUNEDROP_EVENTS_TOPIC"]})
    try:
        job_ids = _upload_the_six(env)
        cancel_id = next(j for j, n in job_ids.items() if n.endswith("cancel.jsonl"))
        # The operators' path (`tunedrop cancel`), on the real adapters, once the upload made the job;
        # it is still validating or queued behind the others.
        app = build_app()
        assert wait_for(lambda: app.store.get(cancel_id) is not None, timeout=30, every=0.2)
        assert app.operations.cancel(cancel_id).state.value == "CANCELLED"
        events = completions.read_until(lambda got: {e.attributes["ce-subject"] for e in got} >= set(job_ids), 120)
        steps = lifecycle.read_until(lambda got: False, 3)
    finally:
        completions.close()
        lifecycle.close()

    ours = [e for e in events if e.attributes["ce-subject"] in job_ids]
    _assert_one_valid_event_per_job(ours, job_ids)
    outcomes = {e.attributes["ce-subject"]: e.data["state"] for e in ours}
    _assert_outcomes(ours, outcomes)
    _assert_lifecycle_steps(steps, outcomes, cancel_id, job_ids)


def _upload_the_six(env: dict[str, str]) -> dict[str, str]:
    """Four good datasets, a broken one and one to cancel; their job ids and object names."""
    run = uuid.uuid4().hex[:6]
    target = bucket(env)
    job_ids: dict[str, str] = {}
    for name, body in [
        *[(f"ev-{run}-{n}.jsonl", dataset()) for n in range(4)],
        (f"ev-{run}-bad.jsonl", b"{broken\n"),
        (f"ev-{run}-cancel.jsonl", dataset()),
    ]:
        blob = target.blob(f"incoming/{name}")
        blob.upload_from_string(body)
        job_ids[job_id_for(env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))] = name
    return job_ids


def _assert_one_valid_event_per_job(ours: list[Completion], job_ids: dict[str, str]) -> None:
    ids_per_job: dict[str, set[str]] = defaultdict(set)
    for event in ours:
        assert_valid_completion(event.attributes, event.data)
        ids_per_job[event.attributes["ce-subject"]].add(event.attributes["ce-id"])
    assert all(len(ids) == 1 for ids in ids_per_job.values()) and set(ids_per_job) == set(job_ids)


def _assert_outcomes(ours: list[Completion], outcomes: dict[str, str]) -> None:
    counts = Counter(outcomes.values())
    # Which uploads fail depends on the order they are submitted in; that some do and some don't does not.
    assert (counts["CANCELLED"], counts["REJECTED"], counts["SUCCEEDED"] + counts["FAILED"]) == (1, 1, 4)
    assert counts["SUCCEEDED"] >= 1 and counts["FAILED"] >= 1
    failed = [e for e in ours if e.data["state"] == "FAILED"]
    assert all(e.data["error"]["message"] and e.data["vertex_job_name"] for e in failed)

    # A subscription filtered on `attributes.state = "FAILED"` selects exactly these. (The Pub/Sub
    # emulator ignores subscription filters, so the attribute itself is what can be checked here.)
    assert {e.attributes["ce-id"] for e in ours if e.attributes.get("state") == "FAILED"} == {
        e.attributes["ce-id"] for e in failed
    }


def _assert_lifecycle_steps(
    steps: list[Completion], outcomes: dict[str, str], cancel_id: str, job_ids: dict[str, str]
) -> None:
    kinds: dict[str, set[str]] = defaultdict(set)
    for step in steps:
        kinds[step.attributes["ce-subject"]].add(step.attributes["kind"])
    succeeded = next(j for j, s in outcomes.items() if s == "SUCCEEDED")
    assert {"queued", "submitted", "finished"} <= kinds[succeeded]
    assert kinds[cancel_id] >= {"finished"}
    assert all(json.loads(json.dumps(s.data))["job_id"] in job_ids for s in steps if s.data["job_id"] in job_ids)
