"""Dispatcher: priority then FIFO, never beyond the quota, never the same Vertex job twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from shared.jobs import JobState
from shared.ports import RemoteJob, TuningRejected, TuningRequest, TuningUnavailable
from shared.services.dispatch import MAX_SUBMIT_ERRORS
from shared.services.submission import request_for
from tests.fakes import ATTEMPT_LABEL, JOB_LABEL, Harness

MakeApp = Callable[..., Harness]


def queue(h: Harness, name: str, priority: int = 0, advance: float = 1) -> str:
    h.clock.advance(advance)
    return h.upload(name, metadata={"priority": str(priority)} if priority else None)


def queue_with(h: Harness, name: str, metadata: dict[str, str]) -> str:
    h.clock.advance(1)
    return h.upload(name, metadata=metadata)


def state(h: Harness, job_id: str) -> JobState:
    return h.job(job_id).state


def test_a_queued_job_is_submitted(harness: Harness) -> None:
    job_id = queue(harness, "a.jsonl")
    assert harness.app.dispatcher.dispatch() == [job_id]

    job = harness.job(job_id)
    assert job.state is JobState.RUNNING
    assert [h.to_state for h in job.history] == ["VALIDATING", "QUEUED", "SUBMITTING", "RUNNING"]
    (remote,) = harness.tuning.jobs.values()
    assert job.vertex_job_name == remote.name
    assert job.vertex_state == "JOB_STATE_PENDING"
    assert job.started_at is None  # PENDING: not started yet (the poller records the start)
    assert remote.labels[JOB_LABEL] == job_id and remote.labels[ATTEMPT_LABEL] == "1"
    (request,) = harness.tuning.requests
    assert (
        request.training_dataset_uri
        == job.tuning_training_uri
        == f"gs://ds/tunedrop-staging/{job_id}/training-{job.generation}.jsonl"
    )
    assert request.base_model == "gemini-3.5-flash"
    assert request.display_name == job_id
    assert list(harness.store.slot_holders()) == [job_id]


def test_nothing_queued_nothing_done(harness: Harness) -> None:
    assert harness.app.dispatcher.dispatch() == []
    assert harness.tuning.calls["create"] == 0


def test_the_quota_is_respected(make_app: MakeApp) -> None:
    h = make_app(quota=2)
    ids = [queue(h, f"d{i}.jsonl") for i in range(5)]
    assert h.app.dispatcher.dispatch() == ids[:2]
    assert h.app.dispatcher.dispatch() == []  # still full
    assert [state(h, i) for i in ids] == [JobState.RUNNING] * 2 + [JobState.QUEUED] * 3
    assert h.tuning.creates == 2
    assert set(h.store.slot_holders()) == set(ids[:2])


def test_priority_first_then_first_in_first_out(make_app: MakeApp) -> None:
    h = make_app(quota=1)
    low_early = queue(h, "low-early.jsonl", 0)
    high_late = queue(h, "high-late.jsonl", 5)
    low_late = queue(h, "low-late.jsonl", 0)
    high_later = queue(h, "high-later.jsonl", 5)
    urgent = queue(h, "urgent.jsonl", 9)

    order = []
    for _ in range(5):
        (submitted,) = h.app.dispatcher.dispatch()
        order.append(submitted)
        remote = h.job(submitted).vertex_job_name
        h.tuning.succeed(remote)
        h.clock.advance(60)
        h.app.poller.poll()
    assert order == [urgent, high_late, high_later, low_early, low_late]


def test_quota_exhausted_puts_the_job_back_at_the_head_and_frees_the_slot(make_app: MakeApp) -> None:
    h = make_app(quota=2, vertex_quota=1)
    outside = h.tuning.create(TuningRequest(job_id="not-ours", attempt=1, base_model="m", training_dataset_uri="x"))
    first = queue(h, "first.jsonl")
    second = queue(h, "second.jsonl")
    enqueued_at = h.job(first).enqueued_at
    creates_before = h.tuning.calls["create"]

    assert h.app.dispatcher.dispatch() == []
    job = h.job(first)
    assert job.state is JobState.QUEUED
    assert job.enqueued_at == enqueued_at  # keeps its place in line
    assert job.history[-1].reason == "Vertex AI answered RESOURCE_EXHAUSTED"
    assert job.submit_errors == 0  # quota is not an error of the job
    assert h.store.slot_holders() == {}
    assert h.tuning.calls["create"] == creates_before + 1  # stopped: the second job was not tried against a full quota
    assert state(h, second) is JobState.QUEUED
    assert [v.value.job_id for v in h.store.queued(2)] == [first, second]

    later = queue(h, "later.jsonl")
    h.tuning.set_state(outside.name, "JOB_STATE_SUCCEEDED")  # the other team's job ends
    assert h.app.dispatcher.dispatch() == [], "dispatch pauses after RESOURCE_EXHAUSTED"
    h.clock.advance(5)
    assert h.app.dispatcher.dispatch() == [first]
    assert state(h, second) is JobState.QUEUED and state(h, later) is JobState.QUEUED


def test_unclear_create_failures_keep_the_slot_retry_with_backoff_then_fail(harness: Harness) -> None:
    job_id = queue(harness, "a.jsonl")
    harness.tuning.fail("create", TuningUnavailable("UNAVAILABLE: try again"), times=MAX_SUBMIT_ERRORS)
    for attempt in range(1, MAX_SUBMIT_ERRORS + 1):
        assert harness.app.dispatcher.dispatch() == []
        job = harness.job(job_id)
        # The create may have gone through: the job keeps its claim and its slot.
        assert (job.state, job.submit_errors) == (JobState.SUBMITTING, attempt)
        assert list(harness.store.slot_holders()) == [job_id]
        assert harness.completions() == []
        assert job.submit_retry_at is not None
        harness.app.dispatcher.dispatch()
        assert harness.tuning.calls["create"] == attempt, "no retry before the pause is over"
        harness.clock.advance((job.submit_retry_at - harness.clock.now).total_seconds())

    # The next retry finds no job on Vertex AI (so none was made) and gives up.
    assert harness.app.dispatcher.dispatch() == []
    job = harness.job(job_id)
    assert job.state is JobState.FAILED
    assert job.error == {"code": "SUBMIT_UNAVAILABLE", "message": "UNAVAILABLE: try again"}
    assert harness.store.slot_holders() == {}
    (event,) = harness.completions()
    assert event.attributes["ce-type"] == "tunedrop.job.v1.failed"
    assert harness.tuning.creates == 0


def test_an_unclear_failure_whose_create_went_through_is_found_not_repeated(harness: Harness) -> None:
    job_id = queue(harness, "a.jsonl")
    harness.tuning.fail("create", TuningUnavailable("DEADLINE_EXCEEDED"))
    assert harness.app.dispatcher.dispatch() == []
    # The create reached Vertex AI although the answer was lost.
    harness.tuning.create(request_for(harness.job(job_id)))
    harness.clock.advance(5)
    harness.app.dispatcher.dispatch()
    job = harness.job(job_id)
    assert job.state is JobState.RUNNING
    assert harness.tuning.creates == 1


def test_a_transient_error_then_success(harness: Harness) -> None:
    job_id = queue(harness, "a.jsonl")
    harness.tuning.fail("find", TuningUnavailable("deadline exceeded"))
    assert harness.app.dispatcher.dispatch() == []
    harness.clock.advance(5)
    harness.app.dispatcher.dispatch()
    assert harness.job(job_id).state is JobState.RUNNING
    assert harness.job(job_id).submit_errors == 1
    assert harness.tuning.creates == 1


def test_a_cancel_requested_during_submission_cancels_instead_of_creating(harness: Harness) -> None:
    job_id = queue(harness, "a.jsonl")
    harness.tuning.fail("create", TuningUnavailable("UNAVAILABLE"))
    harness.app.dispatcher.dispatch()
    harness.app.operations.cancel(job_id)
    harness.clock.advance(5)
    harness.app.dispatcher.dispatch()
    assert harness.job(job_id).state is JobState.CANCELLED
    assert harness.tuning.creates == 0
    assert harness.store.slot_holders() == {}
    assert [p.attributes["ce-type"] for p in harness.completions()] == ["tunedrop.job.v1.cancelled"]


def test_adapter_size_spelled_out_is_submitted_as_a_number(harness: Harness) -> None:
    job_id = queue_with(harness, "a.jsonl", {"adapter_size": "ADAPTER_SIZE_FOUR", "base_model": "gemini-3.5-flash"})
    assert harness.job(job_id).hyper_parameters == {"adapter_size": 4}
    assert harness.app.dispatcher.dispatch() == [job_id]
    assert harness.tuning.requests[0].hyper_parameters == {"adapter_size": 4}


def test_permanent_error_fails_the_job_and_the_next_one_goes(harness: Harness) -> None:
    bad = queue(harness, "bad.jsonl")
    good = queue(harness, "good.jsonl")
    harness.tuning.fail("create", TuningRejected("INVALID_ARGUMENT: base model not found"))

    assert harness.app.dispatcher.dispatch() == [good]
    job = harness.job(bad)
    assert job.state is JobState.FAILED
    assert job.error == {"code": "SUBMIT_REJECTED", "message": "INVALID_ARGUMENT: base model not found"}
    assert job.ended_at == harness.clock.now
    (event,) = harness.completions()
    assert event.attributes["ce-id"] == f"{bad}/1/failed"
    assert event.attributes["state"] == "FAILED"
    assert list(harness.store.slot_holders()) == [good]


def test_an_existing_vertex_job_is_adopted_not_created_again(harness: Harness) -> None:
    job_id = queue(harness, "a.jsonl")
    earlier = harness.tuning.add(
        RemoteJob(
            name="projects/demo/locations/us-central1/tuningJobs/77",
            state="JOB_STATE_RUNNING",
            labels={JOB_LABEL: job_id, ATTEMPT_LABEL: "1"},
            create_time=harness.clock.now,
        )
    )
    assert harness.app.dispatcher.dispatch() == [job_id]
    job = harness.job(job_id)
    assert job.state is JobState.RUNNING
    assert job.vertex_job_name == earlier.name
    assert job.vertex_state == "JOB_STATE_RUNNING"
    assert harness.tuning.calls["create"] == 0


def test_a_vertex_job_of_an_earlier_attempt_is_not_adopted(harness: Harness) -> None:
    job_id = queue(harness, "a.jsonl")
    harness.store.put(replace(harness.job(job_id), attempt=2))
    harness.tuning.add(RemoteJob(name="old", state="JOB_STATE_FAILED", labels={JOB_LABEL: job_id, ATTEMPT_LABEL: "1"}))
    harness.app.dispatcher.dispatch()
    assert harness.job(job_id).vertex_job_name != "old"
    assert [r.labels[ATTEMPT_LABEL] for r in harness.tuning.for_job(job_id)] == ["1", "2"]


def crash_during_submit(h: Harness, job_id: str, *, after_create: bool) -> None:
    """The instance dies after claiming job and slot; optionally after Vertex created the job."""
    h.tuning.fail("find", RuntimeError("instance killed"))
    with pytest.raises(RuntimeError):
        h.app.dispatcher.dispatch()
    if after_create:
        h.tuning.create(TuningRequest(job_id=job_id, attempt=1, base_model="m", training_dataset_uri="x"))
    assert state(h, job_id) is JobState.SUBMITTING
    assert list(h.store.slot_holders()) == [job_id]


@pytest.mark.parametrize("after_create", [False, True])
def test_lease_recovery_finishes_a_dead_submission_exactly_once(harness: Harness, after_create: bool) -> None:
    job_id = queue(harness, "a.jsonl")
    crash_during_submit(harness, job_id, after_create=after_create)

    harness.clock.advance(harness.settings.submit_lease_seconds - 1)
    harness.app.dispatcher.dispatch()
    assert state(harness, job_id) is JobState.SUBMITTING  # lease still held: left alone

    harness.clock.advance(2)
    harness.app.dispatcher.dispatch()
    job = harness.job(job_id)
    assert job.state is JobState.RUNNING
    assert harness.tuning.creates == 1  # created once, by whichever got there
    assert job.vertex_job_name == harness.tuning.for_job(job_id)[0].name
    assert list(harness.store.slot_holders()) == [job_id]


def test_a_claim_that_never_got_a_slot_is_requeued_after_the_lease(harness: Harness) -> None:
    job_id = queue(harness, "a.jsonl")
    current = harness.store.get(job_id)
    assert current is not None
    claimed = current.value.moved_to(
        JobState.SUBMITTING, harness.clock.now, "slot free", submit_claimed_at=harness.clock.now
    )
    assert harness.store.replace(claimed, current.version)  # ...and the instance died here

    harness.clock.advance(harness.settings.submit_lease_seconds + 1)
    assert harness.app.dispatcher.dispatch() == [job_id]  # requeued by the sweep, then submitted
    job = harness.job(job_id)
    assert job.state is JobState.RUNNING
    assert "submission lease expired" in [h.reason for h in job.history]
    assert harness.tuning.creates == 1


def test_slots_of_finished_jobs_are_swept(harness: Harness) -> None:
    done = queue(harness, "done.jsonl")
    harness.app.dispatcher.dispatch()
    # The job reached a terminal state but its slot was never released (a crash in between).
    current = harness.store.get(done)
    assert current is not None
    harness.store.replace(current.value.moved_to(JobState.SUCCEEDED, harness.clock.now, "done"), current.version)
    harness.tuning.succeed(current.value.vertex_job_name)  # and so did its Vertex job
    waiting = queue(harness, "waiting.jsonl")
    assert harness.app.dispatcher.dispatch() == [waiting]
    assert list(harness.store.slot_holders()) == [waiting]


def test_slots_of_vanished_jobs_are_swept(harness: Harness) -> None:
    assert harness.app.ledger.claim("ghost", 1)
    job_id = queue(harness, "a.jsonl")
    assert harness.app.dispatcher.dispatch() == [job_id]


def test_concurrent_dispatchers_never_exceed_the_quota_or_create_twice(make_app: MakeApp) -> None:
    h = make_app(quota=3)
    ids = [queue(h, f"d{i}.jsonl") for i in range(10)]
    barrier = threading.Barrier(8)
    submitted: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            submitted.extend(h.app.dispatcher.dispatch())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors
    assert len(submitted) == len(set(submitted)) == 3
    assert h.tuning.creates == 3
    assert all(len(h.tuning.for_job(i)) <= 1 for i in ids)
    assert sorted(h.store.slot_holders()) == sorted(submitted)
    assert all(state(h, i) is JobState.RUNNING for i in submitted)
    assert sum(state(h, i) is JobState.RUNNING for i in ids) == 3
    assert sum(state(h, i) is JobState.QUEUED for i in ids) == 7
