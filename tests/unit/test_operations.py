"""Operator commands: cancel, retry and the quota view, on in-memory fakes."""

from __future__ import annotations

import json

import pytest

from shared.errors import JobNotFound, NotAllowed, TransientError
from shared.jobs import JobState
from shared.ports import RemoteJob, RemoteState, TuningUnavailable
from tests.fakes import ATTEMPT_LABEL, JOB_LABEL, Harness


def _completion_ids(h: Harness, job_id: str) -> list[str]:
    return [p.attributes["ce-id"] for p in h.completions() if p.attributes["ce-subject"] == job_id]


def test_cancel_a_queued_job_dequeues_it_and_announces_it(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    cancelled = harness.app.operations.cancel(job_id)
    assert cancelled.state is JobState.CANCELLED
    assert harness.store.queued(10) == []
    assert _completion_ids(harness, job_id) == [f"{job_id}/1/cancelled"]
    assert harness.app.dispatcher.dispatch() == []
    with pytest.raises(NotAllowed, match="CANCELLED already"):
        harness.app.operations.cancel(job_id)


def test_cancel_a_running_job_cancels_it_on_vertex_and_the_poller_records_it(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    harness.app.dispatcher.dispatch()
    vertex_name = harness.job(job_id).vertex_job_name
    flagged = harness.app.operations.cancel(job_id)
    assert flagged.state is JobState.RUNNING and flagged.cancel_requested
    assert harness.tuning.jobs[vertex_name].state == "JOB_STATE_CANCELLED"
    assert harness.app.poller.poll() == [job_id]
    assert harness.job(job_id).state is JobState.CANCELLED
    assert _completion_ids(harness, job_id) == [f"{job_id}/1/cancelled"]
    assert harness.store.slot_holders() == {}


def test_cancel_while_submitting_is_carried_out_once_the_job_runs(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    harness.app.dispatcher.dispatch()
    # Pretend the cancel arrived while the job was still SUBMITTING: the flag survives submission.
    current = harness.store.get(job_id)
    assert current is not None
    from dataclasses import replace

    harness.store.replace(replace(current.value, cancel_requested=True), current.version)
    harness.app.poller.poll()
    vertex_name = harness.job(job_id).vertex_job_name
    assert harness.tuning.calls["cancel"] == 1
    assert harness.tuning.jobs[vertex_name].state == "JOB_STATE_CANCELLED"
    harness.app.poller.poll()
    assert harness.job(job_id).state is JobState.CANCELLED


def test_retry_makes_a_new_attempt_with_its_own_vertex_job_and_event_id(make_app) -> None:  # type: ignore[no-untyped-def]
    h: Harness = make_app()
    job_id = h.upload("a.jsonl")
    h.app.dispatcher.dispatch()
    first = h.job(job_id).vertex_job_name
    h.tuning.set_state(first, "JOB_STATE_FAILED", error_code=13, error_message="boom")
    h.app.poller.poll()
    assert h.job(job_id).state is JobState.FAILED
    with pytest.raises(NotAllowed):
        h.app.operations.cancel(job_id)

    retried = h.app.operations.retry(job_id)
    assert (retried.state, retried.attempt, retried.vertex_job_name, retried.error) == (JobState.QUEUED, 2, "", None)
    assert json.loads(h.dispatch_messages()[-1].data)["reason"] == "retried"
    assert h.app.dispatcher.dispatch() == [job_id]
    second = h.job(job_id).vertex_job_name
    assert second != first
    assert [j.name for j in h.tuning.for_job(job_id, 2)] == [second]
    h.tuning.succeed(second)
    h.app.poller.poll()
    assert _completion_ids(h, job_id) == [f"{job_id}/1/failed", f"{job_id}/2/succeeded"]
    with pytest.raises(NotAllowed, match="only FAILED"):
        h.app.operations.retry(job_id)


def test_unknown_job(harness: Harness) -> None:
    with pytest.raises(JobNotFound):
        harness.app.operations.cancel("nope")
    with pytest.raises(JobNotFound):
        harness.app.operations.retry("nope")


def test_quota_shows_our_slots_others_jobs_and_the_queue(make_app) -> None:  # type: ignore[no-untyped-def]
    h: Harness = make_app(quota=3)
    h.tuning.add(RemoteJob(name="projects/demo/locations/us-central1/tuningJobs/9", state="JOB_STATE_RUNNING"))
    ours = h.upload("a.jsonl")
    h.app.dispatcher.dispatch()
    for name in ("b.jsonl", "c.jsonl", "d.jsonl"):
        h.clock.advance(1)
        h.upload(name)
    h.app.dispatcher.dispatch()
    status = h.app.operations.quota()
    assert status.limit == 3
    assert status.foreign == ["projects/demo/locations/us-central1/tuningJobs/9"]
    assert ours in status.held and len(status.held) == 2
    assert status.in_use == 3
    assert status.queued == 2


def test_cancelling_a_queued_job_also_cancels_a_live_vertex_job_of_its_attempt(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    orphan = harness.tuning.add(
        RemoteJob(
            name="projects/demo/locations/us-central1/tuningJobs/5",
            state=RemoteState.RUNNING,
            labels={JOB_LABEL: job_id, ATTEMPT_LABEL: "1"},
        )
    )
    assert harness.app.operations.cancel(job_id).state is JobState.CANCELLED
    assert harness.tuning.jobs[orphan.name].state == RemoteState.CANCELLED


def test_an_unreadable_vertex_answer_while_cancelling_a_queued_job_is_retried(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    harness.tuning.fail("find", TuningUnavailable("UNAVAILABLE"))
    with pytest.raises(TransientError):
        harness.app.operations.cancel(job_id)
    assert harness.job(job_id).state is JobState.QUEUED
    assert harness.app.operations.cancel(job_id).state is JobState.CANCELLED
