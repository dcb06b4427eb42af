"""Continuous tuning (issue 14, item 1): a manifest's continue_from names an earlier job of its team; the new job
tunes on that job's tuned model (at a checkpoint, or the default one) on the same base model and key, and the
Vertex AI request names the pre-tuned model instead of a base model."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shared.jobs import JobState
from tests.fakes import VALID_DATASET, Harness, make_harness

TEAM = "kitchen"


def finished_job(h: Harness) -> str:
    """A SUCCEEDED job of the team, with a tuned model and two checkpoints."""
    h.blobs.put("ds", f"datasets/{TEAM}/first.jsonl", VALID_DATASET)
    job_id = h.upload(
        f"incoming/{TEAM}/first.json", data=json.dumps({"training_dataset": f"datasets/{TEAM}/first.jsonl"})
    )
    h.app.dispatcher.dispatch()
    name = h.job(job_id).vertex_job_name
    h.tuning.succeed(name)
    checkpoints = [{"checkpoint_id": "1", "epoch": 1, "step": 5}, {"checkpoint_id": "2", "epoch": 2, "step": 10}]
    h.tuning.set_state(name, "JOB_STATE_SUCCEEDED", checkpoints=checkpoints)
    h.app.poller.poll()
    assert h.job(job_id).state is JobState.SUCCEEDED
    return job_id


def continue_job(h: Harness, team: str = TEAM, **continue_from: object) -> str:
    h.blobs.put("ds", f"datasets/{team}/more.jsonl", VALID_DATASET)
    manifest = {"training_dataset": f"datasets/{team}/more.jsonl", "continue_from": continue_from}
    return h.upload(f"incoming/{team}/more.json", data=json.dumps(manifest))


def test_a_continuation_tunes_on_the_earlier_jobs_model_at_a_checkpoint() -> None:
    h = make_harness(quota=2)
    first = finished_job(h)
    second = continue_job(h, job=first, checkpoint_id="1")
    job = h.job(second)
    assert job.state is JobState.QUEUED, job.validation
    assert (job.continued_from, job.pre_tuned_model, job.pre_tuned_checkpoint) == (first, h.job(first).tuned_model, "1")
    assert job.base_model == h.job(first).base_model  # taken from the earlier job: the manifest names none

    h.app.dispatcher.dispatch()

    request = h.tuning.requests[-1]
    assert (request.pre_tuned_model, request.pre_tuned_checkpoint) == (h.job(first).tuned_model, "1")


def refusal(h: Harness, job_id: str) -> str:
    job = h.job(job_id)
    assert job.state is JobState.REJECTED
    assert job.error is not None
    (first,) = [e for e in job.error["first_errors"] if e["code"].startswith("continue_from")]
    return f"{first['code']}: {first['message']}"


def test_an_unknown_job_is_refused() -> None:
    h = make_harness()
    assert refusal(h, continue_job(h, job="no-such-job")) == (
        "continue_from_not_found: continue_from: there is no job 'no-such-job'."
    )


def test_another_teams_job_is_refused() -> None:
    h = make_harness(quota=2)
    first = finished_job(h)
    assert "is team kitchen's; a job continues only its team's" in refusal(h, continue_job(h, team="ads", job=first))


def test_a_checkpoint_the_job_does_not_have_is_refused() -> None:
    h = make_harness(quota=2)
    first = finished_job(h)
    assert "has checkpoints 1, 2, not '7'" in refusal(h, continue_job(h, job=first, checkpoint_id="7"))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"state": JobState.FAILED}, "is FAILED without a tuned model"),
        ({"tuned_model": ""}, "is SUCCEEDED without a tuned model"),
        ({"created_at": datetime(2025, 7, 1, tzinfo=UTC)}, "was tuned before 2025-07-11"),
        ({"encryption_key": "projects/p-12345/locations/us-central1/keyRings/r/cryptoKeys/k"}, "must use the same key"),
    ],
    ids=["failed", "no-model", "too-old", "other-key"],
)
def test_a_job_that_cannot_be_continued_is_refused_saying_why(change: dict[str, object], why: str) -> None:
    h = make_harness(quota=2)
    first = finished_job(h)
    h.store.put(replace(h.job(first), **change))  # type: ignore[arg-type]
    assert why in refusal(h, continue_job(h, job=first))


def test_a_model_the_documentation_does_not_list_for_continuous_tuning_is_refused() -> None:
    # gemini-3.5-flash-lite is open for tuning but not in the continuous-tuning list (shared/models.json).
    h = make_harness({"TUNEDROP_BASE_MODEL": "gemini-3.5-flash-lite"}, quota=2)
    first = finished_job(h)
    job = h.job(continue_job(h, job=first))
    assert job.state is JobState.REJECTED
    assert job.error is not None
    (issue,) = [e for e in job.error["first_errors"] if e["code"] == "model_no_continuous_tuning"]
    assert "gemini-3.5-flash-lite is not among the models the documentation lists" in issue["message"]


def test_a_continuation_may_name_the_tuned_model_instead_of_the_job() -> None:
    h = make_harness(quota=2)
    first = finished_job(h)
    model = h.job(first).tuned_model
    job = h.job(continue_job(h, model=model, checkpoint_id="2"))
    assert job.state is JobState.QUEUED, job.validation
    assert (job.continued_from, job.pre_tuned_model, job.pre_tuned_checkpoint) == (first, model, "2")


def test_a_tuned_model_no_tunedrop_job_made_is_refused() -> None:
    h = make_harness()
    foreign = "projects/p/locations/us-central1/models/999@1"
    assert refusal(h, continue_job(h, model=foreign)).startswith(
        "continue_from_not_found: continue_from: no Tunedrop job tuned 'projects/p/locations/us-central1/models/999@1'"
    )


@pytest.mark.parametrize(
    "asked",
    [
        {"job": "a-job", "model": "projects/p/locations/us-central1/models/1@1"},
        {"checkpoint_id": "1"},
        {"model": "models/1"},
    ],
)
def test_continue_from_names_one_job_or_one_model(asked: dict[str, str]) -> None:
    h = make_harness()
    job = h.job(continue_job(h, **asked))
    assert job.state is JobState.REJECTED
    assert "manifest_bad_value" in job.validation["error_counts"]


def test_a_hostile_key_under_continue_from_is_quoted_short() -> None:
    h = make_harness()
    job = h.job(continue_job(h, job="a-job", **{"x" * 5000: 1}))
    assert job.error is not None
    (issue,) = [e for e in job.error["first_errors"] if e["code"] == "manifest_bad_value"]
    assert len(issue["message"]) < 600
