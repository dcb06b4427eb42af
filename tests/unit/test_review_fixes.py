"""Edge cases found in review: each of these once let a slot leak, a job stick or an event collide."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from google.cloud import aiplatform_v1

from shared.adapters.vertex_tuning import VertexTuning
from shared.errors import TransientError
from shared.jobs import MAX_HISTORY, JobState, new_job
from shared.ports import RemoteJob, TuningUnavailable
from tests.fakes import ATTEMPT_LABEL, JOB_LABEL, Harness, make_harness


class ListingClient:
    """The two methods of GenAiTuningServiceClient that active_jobs uses, answering from a list."""

    def __init__(self, jobs: list[aiplatform_v1.TuningJob]) -> None:
        self.jobs = jobs

    def list_tuning_jobs(self, request: dict[str, Any], timeout: float) -> list[aiplatform_v1.TuningJob]:
        return self.jobs


def test_a_partially_succeeded_job_does_not_count_as_active() -> None:
    jobs = [
        aiplatform_v1.TuningJob(name="projects/1/locations/us-central1/tuningJobs/1", state="JOB_STATE_RUNNING"),
        aiplatform_v1.TuningJob(
            name="projects/1/locations/us-central1/tuningJobs/2", state="JOB_STATE_PARTIALLY_SUCCEEDED"
        ),
    ]
    tuning = VertexTuning(lambda _region: ListingClient(jobs), "p", "us-central1")  # type: ignore[arg-type,return-value]
    assert [j.name for j in tuning.active_jobs()] == ["projects/1/locations/us-central1/tuningJobs/1"]


def test_a_second_vertex_job_for_one_attempt_is_cancelled(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    harness.app.dispatcher.dispatch()
    recorded = harness.job(job_id).vertex_job_name
    # A slow submitter's create returns after another dispatcher already recorded its own job.
    late = harness.tuning.create(harness.app.dispatcher._request_for(harness.job(job_id)))
    harness.app.dispatcher._record_running(job_id, late)
    assert harness.job(job_id).vertex_job_name == recorded
    assert harness.tuning.jobs[late.name].state == "JOB_STATE_CANCELLED"
    assert harness.tuning.jobs[recorded].state != "JOB_STATE_CANCELLED"


def test_no_dispatch_while_active_jobs_cannot_be_listed(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    harness.tuning.fail("active_jobs", TuningUnavailable("UNAVAILABLE"))
    assert harness.app.dispatcher.dispatch() == []
    assert harness.job(job_id).state is JobState.QUEUED
    assert harness.app.dispatcher.dispatch() == [job_id]


def test_cancelling_a_queued_job_also_cancels_a_live_vertex_job_of_its_attempt(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    orphan = harness.tuning.add(
        RemoteJob(
            name="projects/demo/locations/us-central1/tuningJobs/5",
            state="JOB_STATE_RUNNING",
            labels={JOB_LABEL: job_id, ATTEMPT_LABEL: "1"},
        )
    )
    assert harness.app.operations.cancel(job_id).state is JobState.CANCELLED
    assert harness.tuning.jobs[orphan.name].state == "JOB_STATE_CANCELLED"


def test_one_failing_republish_does_not_stop_the_others(make_app) -> None:  # type: ignore[no-untyped-def]
    h: Harness = make_app()
    first = h.upload("a.jsonl", data=b"{bad\n")
    second = h.upload("b.jsonl", data=b"{bad\n")
    for job_id in (first, second):  # both recorded, neither announced (say, a crash before publishing)
        current = h.store.get(job_id)
        assert current is not None
        h.store.replace(replace(current.value, completion_pending=True), current.version)
    h.clock.advance(60)
    h.publisher.fail_next(topic=h.settings.completions_topic)
    assert h.app.completions.flush_pending() == 1
    pending = [j for j in (first, second) if h.job(j).completion_pending]
    assert len(pending) == 1
    assert h.app.completions.flush_pending() == 1
    assert not any(h.job(j).completion_pending for j in (first, second))


def test_history_stays_bounded_and_keeps_its_first_entry() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    job = new_job(job_id="j", bucket="b", object_name="incoming/j.jsonl", generation="1", base_model="m", now=now)
    job = job.moved_to(JobState.QUEUED, now, "validated")
    for _ in range(MAX_HISTORY):
        job = job.moved_to(JobState.SUBMITTING, now, "claim").moved_to(JobState.QUEUED, now, "quota full")
    assert len(job.history) == MAX_HISTORY
    assert job.history[0].reason == "uploaded"
    assert job.history[-1].reason == "quota full"


def test_lifecycle_event_ids_differ_for_two_events_of_one_kind() -> None:
    h = make_harness(
        env={
            "TUNEDROP_EVENTS_TOPIC": "tunedrop-events",
            "TUNEDROP_STUCK_SECONDS": "60",
            "TUNEDROP_MAX_RUNNING_SECONDS": "120",
        }
    )
    job_id = h.upload("a.jsonl")
    h.app.dispatcher.dispatch()
    h.clock.advance(61)
    h.app.poller.poll()  # pending too long
    name = h.job(job_id).vertex_job_name
    h.tuning.set_state(name, "JOB_STATE_RUNNING")
    h.clock.advance(200)
    h.app.poller.poll()  # running too long
    stuck = [p.attributes["ce-id"] for p in h.publisher.on("tunedrop-events") if p.attributes["kind"] == "stuck"]
    assert len(stuck) == 2 and len(set(stuck)) == 2
    assert h.job(job_id).warnings == ["stuck_pending", "running_too_long"]


def test_retry_announces_the_job_queued_again(make_app) -> None:  # type: ignore[no-untyped-def]
    h: Harness = make_app(env={"TUNEDROP_EVENTS_TOPIC": "tunedrop-events"})
    job_id = h.upload("a.jsonl")
    h.app.dispatcher.dispatch()
    h.tuning.set_state(h.job(job_id).vertex_job_name, "JOB_STATE_FAILED", error_code=13, error_message="x")
    h.app.poller.poll()
    h.app.operations.retry(job_id)
    queued = [p.attributes["ce-id"] for p in h.publisher.on("tunedrop-events") if p.attributes["kind"] == "queued"]
    assert [i.split("/")[1] for i in queued] == ["1", "2"]


def test_an_unreadable_vertex_answer_while_cancelling_a_queued_job_is_retried(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    harness.tuning.fail("find", TuningUnavailable("UNAVAILABLE"))
    try:
        harness.app.operations.cancel(job_id)
    except TransientError:
        pass
    else:
        raise AssertionError("a cancel that could not check Vertex AI must be retried")
    assert harness.job(job_id).state is JobState.QUEUED
    assert harness.app.operations.cancel(job_id).state is JobState.CANCELLED
