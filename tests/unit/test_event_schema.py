"""Every completion event the services publish validates against the published JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.jobs import JobState
from tests.eventschema import assert_valid_completion
from tests.fakes import Harness


def _events(h: Harness) -> list[tuple[dict[str, str], dict[str, Any]]]:
    return [(dict(p.attributes), json.loads(p.data)) for p in h.completions()]


def test_succeeded_failed_cancelled_and_rejected_events_match_the_schema(make_app) -> None:  # type: ignore[no-untyped-def]
    h: Harness = make_app(quota=3)
    ok = h.upload("ok.jsonl")
    bad_run = h.upload("fails.jsonl")
    cancelled = h.upload("cancelled.jsonl")
    rejected = h.upload("rejected.jsonl", data=b"{not json\n")
    h.app.dispatcher.dispatch()
    h.tuning.succeed(h.job(ok).vertex_job_name)
    h.tuning.set_state(h.job(bad_run).vertex_job_name, "JOB_STATE_FAILED", error_code=13, error_message="boom")
    h.app.operations.cancel(cancelled)
    h.app.poller.poll()
    assert {h.job(j).state for j in (ok, bad_run, cancelled, rejected)} == {
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.REJECTED,
    }
    events = _events(h)
    assert {data["state"] for _, data in events} == {"SUCCEEDED", "FAILED", "CANCELLED", "REJECTED"}
    for attributes, data in events:
        assert_valid_completion(attributes, data)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("job_id"),
        lambda d: d.update(state="DONE"),
        lambda d: d.update(attempt=0),
        lambda d: d.update(warnings="stuck_pending"),  # a list, even though its values may grow
        lambda d: d.update(dataset_uri="s3://x/y"),
    ],
)
def test_the_schema_rejects_malformed_data(harness: Harness, mutate) -> None:  # type: ignore[no-untyped-def]
    harness.upload("rejected.jsonl", data=b"{not json\n")
    ((attributes, data),) = _events(harness)
    assert_valid_completion(attributes, data)
    mutate(data)
    with pytest.raises(AssertionError):
        assert_valid_completion(attributes, data)


def test_events_carry_estimated_and_actual_billable_tokens(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    estimated = harness.job(job_id).validation["estimated_billable_tokens"]
    assert isinstance(estimated, int) and estimated > 0
    harness.app.dispatcher.dispatch()
    harness.tuning.set_state(
        harness.job(job_id).vertex_job_name,
        "JOB_STATE_SUCCEEDED",
        tuned_model="projects/1/locations/us-central1/models/9@1",
        endpoint="projects/1/locations/us-central1/endpoints/9",
        stats={"example_count": 3, "billable_token_count": 777, "truncated_example_count": 0},
    )
    harness.app.poller.poll()
    ((attributes, data),) = _events(harness)
    assert_valid_completion(attributes, data)
    assert (data["estimated_billable_tokens"], data["billable_tokens"]) == (estimated, 777)
    assert data["tuning_stats"]["truncated_example_count"] == 0


def test_a_v1_subscriber_accepts_fields_and_warnings_added_later(harness: Harness) -> None:
    from tests.eventschema import PUBLISHED, SCHEMA_PATH, schema_errors

    harness.upload("a.jsonl", data=b"{not json\n")
    (event,) = harness.completions()
    data = json.loads(event.data)
    later = {**data, "team": "kitchen", "evaluation": {"verdict": "better"}, "warnings": ["a_warning_from_2027"]}
    assert PUBLISHED, "the published copies of the schema are missing"
    for path in (SCHEMA_PATH, *PUBLISHED):
        assert schema_errors(later, path) == [], path.name
    # Still a contract: what v1 promises is checked.
    broken = {k: v for k, v in data.items() if k != "job_id"}
    assert schema_errors(broken) != []


EVALUATIONS = [
    {
        "checkpoint_id": "1",
        "operation_name": "projects/demo/locations/us-central1/operations/7",
        "metrics": [
            {"metric": "bleu", "aggregation": "AVERAGE", "value": 0.41},
            {"metric": "pairwise", "aggregation": "MODE", "value": "CANDIDATE"},
        ],
        "output_directory": "gs://ds/reports/job/evaluation/",
    }
]


def test_evaluation_runs_and_the_experiment_are_recorded_and_announced(harness: Harness) -> None:
    job_id = harness.upload("evaluated.jsonl")
    harness.app.dispatcher.dispatch()
    name = harness.job(job_id).vertex_job_name
    experiment = "projects/demo/locations/us-central1/metadataStores/default/contexts/tuning-experiment"
    harness.tuning.succeed(name)
    harness.tuning.set_state(name, "JOB_STATE_SUCCEEDED", evaluations=EVALUATIONS, experiment=experiment)
    harness.app.poller.poll()

    job = harness.job(job_id)
    assert (job.evaluations, job.experiment) == (EVALUATIONS, experiment)
    ((attributes, data),) = _events(harness)
    assert data["evaluations"] == EVALUATIONS and data["experiment"] == experiment
    assert_valid_completion(attributes, data)
    data["evaluations"][0]["metrics"] = "bleu"  # a list, always
    with pytest.raises(AssertionError):
        assert_valid_completion(attributes, data)


def test_events_of_jobs_without_evaluation_carry_no_such_fields(harness: Harness) -> None:
    harness.upload("rejected.jsonl", data=b"{not json\n")
    ((_, data),) = _events(harness)
    assert "evaluations" not in data and "experiment" not in data
