"""Poller: record Vertex AI outcomes, free slots, announce each outcome exactly once."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from shared.errors import TransientError
from shared.jobs import JobState
from shared.ports import QuotaExhausted, RemoteState, TuningRejected, TuningUnavailable
from tests.fakes import Harness

MakeApp = Callable[..., Harness]
TICK = 60  # seconds between scheduler ticks


def running(h: Harness, name: str = "a.jsonl") -> tuple[str, str]:
    """A job RUNNING on Vertex AI: (job id, Vertex job name)."""
    job_id = h.upload(name)
    assert job_id in h.app.dispatcher.dispatch()
    h.publisher.clear()
    return job_id, h.job(job_id).vertex_job_name


def tick(h: Harness) -> list[str]:
    h.clock.advance(TICK)
    return h.app.poller.poll()


def test_succeeded_job_is_recorded_released_and_announced_once(harness: Harness) -> None:
    job_id, name = running(harness)
    harness.clock.advance(600)
    remote = harness.tuning.succeed(name)

    assert tick(harness) == [job_id]
    job = harness.job(job_id)
    assert job.state is JobState.SUCCEEDED
    assert job.tuned_model == remote.tuned_model and job.tuned_model
    assert job.endpoint == remote.endpoint and job.endpoint
    assert job.vertex_state == RemoteState.SUCCEEDED
    assert job.ended_at == remote.end_time
    assert not job.completion_pending
    assert harness.store.slot_holders() == {}

    (event,) = harness.completions()
    assert event.attributes["ce-type"] == "tunedrop.job.v1.succeeded"
    assert event.attributes["ce-id"] == f"{job_id}/1/succeeded"
    assert event.attributes["ce-subject"] == job_id
    data = event.json()
    assert (data["tuned_model"], data["endpoint"]) == (job.tuned_model, job.endpoint)
    assert data["duration_seconds"] == 600.0
    assert [m.json() for m in harness.dispatch_messages()] == [{"reason": "slot freed", "job_ids": [job_id]}]

    # The next tick has nothing to say.
    before = list(harness.publisher.messages)
    assert tick(harness) == []
    assert harness.publisher.messages == before


def test_a_still_running_job_only_updates_its_vertex_state(harness: Harness) -> None:
    job_id, name = running(harness)
    harness.tuning.script(name, "JOB_STATE_RUNNING", "JOB_STATE_RUNNING", RemoteState.SUCCEEDED)
    assert tick(harness) == []
    job = harness.job(job_id)
    assert (job.state, job.vertex_state) == (JobState.RUNNING, "JOB_STATE_RUNNING")
    version = harness.store.get(job_id).version  # type: ignore[union-attr]

    assert tick(harness) == []
    assert harness.store.get(job_id).version == version  # type: ignore[union-attr]  # unchanged: not rewritten
    assert harness.publisher.messages == []

    assert tick(harness) == [job_id]
    assert len(harness.completions()) == 1


@pytest.mark.parametrize(
    ("remote_state", "outcome"),
    [
        ("JOB_STATE_FAILED", JobState.FAILED),
        ("JOB_STATE_EXPIRED", JobState.FAILED),
        ("JOB_STATE_PARTIALLY_SUCCEEDED", JobState.FAILED),
        ("JOB_STATE_CANCELLED", JobState.CANCELLED),
    ],
)
def test_unsuccessful_outcomes(harness: Harness, remote_state: str, outcome: JobState) -> None:
    job_id, name = running(harness)
    harness.tuning.set_state(name, remote_state, error_code=9, error_message="training diverged")
    assert tick(harness) == [job_id]
    job = harness.job(job_id)
    assert job.state is outcome
    assert job.error == {"code": 9, "message": "training diverged"}
    assert job.tuned_model == ""
    (event,) = harness.completions()
    assert event.attributes["ce-type"] == f"tunedrop.job.v1.{outcome.value.lower()}"
    assert event.json()["error"] == {"code": 9, "message": "training diverged"}
    assert harness.store.slot_holders() == {}


def test_tuning_stats_are_kept(harness: Harness) -> None:
    job_id, name = running(harness)
    harness.tuning.set_state(name, RemoteState.SUCCEEDED, stats={"example_count": 3, "tuning_step_count": 12})
    tick(harness)
    assert harness.job(job_id).tuning_stats == {"example_count": 3, "tuning_step_count": 12}


def test_an_unreadable_job_is_retried_next_tick(harness: Harness) -> None:
    job_id, name = running(harness)
    harness.tuning.succeed(name)
    harness.tuning.fail("get", TuningUnavailable("UNAVAILABLE"))
    assert tick(harness) == []
    assert harness.job(job_id).state is JobState.RUNNING
    assert harness.publisher.messages == []
    assert tick(harness) == [job_id]


@pytest.mark.parametrize("after_send", [False, True], ids=["lost-before-send", "ack-lost-after-send"])
def test_a_crash_between_recording_and_publishing_yields_one_distinct_event(harness: Harness, after_send: bool) -> None:
    job_id, name = running(harness)
    harness.tuning.succeed(name)
    harness.publisher.fail_next(topic=harness.settings.completions_topic, after_send=after_send)

    with pytest.raises(TransientError):
        tick(harness)  # the outcome is recorded, then publishing fails: the tick is redelivered
    job = harness.job(job_id)
    assert job.state is JobState.SUCCEEDED
    assert job.completion_pending
    assert harness.store.slot_holders() == {}

    tick(harness)
    tick(harness)
    events = harness.completions()
    assert len(events) == (2 if after_send else 1)
    assert {e.attributes["ce-id"] for e in events} == {f"{job_id}/1/succeeded"}
    assert len({(e.data, json.dumps(e.attributes, sort_keys=True)) for e in events}) == 1  # byte for byte
    assert not harness.job(job_id).completion_pending


def test_many_jobs_finish_in_one_tick(make_app: MakeApp) -> None:
    h = make_app(quota=3)
    jobs = [h.upload(f"d{i}.jsonl") for i in range(4)]
    assert h.app.dispatcher.dispatch() == jobs[:3]
    for job_id in jobs[:3]:
        h.tuning.succeed(h.job(job_id).vertex_job_name)
    h.publisher.clear()

    assert sorted(tick(h)) == sorted(jobs[:3])
    assert sorted(e.attributes["ce-subject"] for e in h.completions()) == sorted(jobs[:3])
    (wake,) = h.dispatch_messages()
    assert sorted(wake.json()["job_ids"]) == sorted(jobs[:3])
    assert h.store.slot_holders() == {}
    assert h.app.dispatcher.dispatch() == [jobs[3]]


def test_a_freed_slot_goes_to_the_next_job(harness: Harness) -> None:
    first, name = running(harness, "first.jsonl")
    second = harness.upload("second.jsonl")
    assert harness.app.dispatcher.dispatch() == []  # quota 1 is taken
    harness.tuning.succeed(name)
    tick(harness)
    assert harness.app.dispatcher.dispatch() == [second]
    assert harness.job(second).state is JobState.RUNNING
    assert harness.job(first).state is JobState.SUCCEEDED


def test_a_concurrent_poller_that_read_the_same_job_announces_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, name = running(harness)
    harness.tuning.succeed(name)
    harness.clock.advance(TICK)
    stale = harness.store.in_states([JobState.RUNNING])  # what the other instance read
    assert harness.app.poller.poll() == [job_id]

    monkeypatch.setattr(harness.store, "in_states", lambda states, limit=1000: stale)
    assert harness.app.poller.poll() == []  # its conditional write loses: the winner announces
    assert len(harness.completions()) == 1
    assert len(harness.dispatch_messages()) == 1
    assert harness.job(job_id).state is JobState.SUCCEEDED


def test_an_unreadable_vertex_job_does_not_hold_up_the_others(make_app: MakeApp) -> None:
    h = make_app(quota=2)
    lost = h.upload("lost.jsonl")
    done = h.upload("done.jsonl")
    assert sorted(h.app.dispatcher.dispatch()) == sorted([lost, done])
    del h.tuning.jobs[h.job(lost).vertex_job_name]  # get() now answers NOT_FOUND (TuningRejected)
    h.tuning.succeed(h.job(done).vertex_job_name)
    h.publisher.clear()

    assert tick(h) == [done]
    assert tick(h) == []
    assert h.job(done).state is JobState.SUCCEEDED
    assert [e.attributes["ce-subject"] for e in h.completions()] == [done]
    assert list(h.store.slot_holders()) == [lost]
    assert h.job(lost).state is JobState.RUNNING  # left as it is, and logged, for an operator


def test_one_failing_job_does_not_stop_the_others_being_recorded(make_app: MakeApp) -> None:
    h = make_app(quota=3)
    jobs = [h.upload(f"d{i}.jsonl") for i in range(3)]
    assert h.app.dispatcher.dispatch() == jobs
    for job_id in jobs:
        h.tuning.succeed(h.job(job_id).vertex_job_name)
    h.publisher.clear()
    h.publisher.fail_next(topic=h.settings.completions_topic)

    with pytest.raises(TransientError):
        tick(h)  # redelivered: one completion event did not go out
    assert all(h.job(j).state is JobState.SUCCEEDED for j in jobs)  # but every outcome is recorded
    assert h.store.slot_holders() == {}
    (wake,) = h.dispatch_messages()  # and the dispatcher woken for the freed slots
    assert set(wake.json()["job_ids"]) < set(jobs)

    tick(h)
    assert sorted(e.attributes["ce-id"] for e in h.completions()) == sorted(f"{j}/1/succeeded" for j in jobs)


def test_a_vertex_job_that_no_longer_exists_fails_the_job_and_frees_its_slot() -> None:
    from shared.ports import TuningJobMissing
    from tests.fakes import make_harness

    h = make_harness()
    job_id = h.upload("a.jsonl")
    h.app.dispatcher.dispatch()
    # Deleted on Vertex AI: no longer listed, and reading it says NOT_FOUND.
    del h.tuning.jobs[h.job(job_id).vertex_job_name]
    h.tuning.fail("get", TuningJobMissing("NOT_FOUND: projects/demo/locations/us-central1/tuningJobs/1000"))
    assert h.app.poller.poll() == [job_id]
    job = h.job(job_id)
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error["code"] == "VERTEX_JOB_NOT_FOUND"
    assert h.store.slot_holders() == {}
    assert [p.attributes["ce-type"] for p in h.completions()] == ["tunedrop.job.v1.failed"]


def test_one_list_answers_for_every_running_job_and_only_ended_ones_are_read() -> None:
    from tests.fakes import make_harness

    h = make_harness(quota=10)
    jobs = [h.upload(f"j{n}.jsonl") for n in range(10)]
    assert sorted(h.app.dispatcher.dispatch()) == sorted(jobs)
    h.tuning.calls.clear()

    assert h.app.poller.poll() == []
    assert (h.tuning.calls["active_jobs"], h.tuning.calls["get"]) == (1, 0)  # not one read per job

    ended = h.job(jobs[3]).vertex_job_name
    h.tuning.succeed(ended)
    h.tuning.calls.clear()
    assert h.app.poller.poll() == [jobs[3]]  # noticed within the tick
    assert (h.tuning.calls["active_jobs"], h.tuning.calls["get"]) == (1, 1)


@pytest.mark.parametrize(
    "error",
    [
        TuningUnavailable("UNAVAILABLE"),
        QuotaExhausted("RESOURCE_EXHAUSTED: read requests per minute"),
        TuningRejected("PERMISSION_DENIED in a quota region"),
    ],
    ids=["unavailable", "rate-limited", "refused"],
)
def test_without_the_list_each_running_job_is_read_on_its_own(error: Exception) -> None:
    from tests.fakes import make_harness

    h = make_harness(quota=3)
    jobs = [h.upload(f"j{n}.jsonl") for n in range(3)]
    h.app.dispatcher.dispatch()
    h.tuning.succeed(h.job(jobs[0]).vertex_job_name)
    h.tuning.fail("active_jobs", error)
    h.tuning.calls.clear()

    assert h.app.poller.poll() == [jobs[0]]
    assert h.tuning.calls["get"] == 3
