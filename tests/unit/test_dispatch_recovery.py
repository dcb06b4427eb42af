"""What the dispatcher recovers or refuses so that a slot never leaks and a Vertex job never runs twice."""

from __future__ import annotations

from typing import Any

from google.cloud import aiplatform_v1

from shared.adapters.vertex_tuning import VertexTuning
from shared.jobs import JobState
from shared.ports import RemoteState, TuningUnavailable
from shared.services.submission import request_for
from tests.fakes import Harness


class ListingClient:
    """The two methods of GenAiTuningServiceClient that active_jobs uses, answering from a list."""

    def __init__(self, jobs: list[aiplatform_v1.TuningJob]) -> None:
        self.jobs = jobs

    def list_tuning_jobs(self, request: dict[str, Any], timeout: float) -> list[aiplatform_v1.TuningJob]:
        return self.jobs


def test_a_partially_succeeded_job_does_not_count_as_active() -> None:
    jobs = [
        aiplatform_v1.TuningJob(name="projects/1/locations/us-central1/tuningJobs/1", state=RemoteState.RUNNING),
        aiplatform_v1.TuningJob(
            name="projects/1/locations/us-central1/tuningJobs/2", state=RemoteState.PARTIALLY_SUCCEEDED
        ),
    ]
    tuning = VertexTuning(lambda _region: ListingClient(jobs), "p", "us-central1")  # type: ignore[arg-type,return-value]
    assert [j.name for j in tuning.active_jobs()] == ["projects/1/locations/us-central1/tuningJobs/1"]


def test_a_second_vertex_job_for_one_attempt_is_cancelled(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    harness.app.dispatcher.dispatch()
    recorded = harness.job(job_id).vertex_job_name
    # A slow submitter's create returns after another dispatcher already recorded its own job.
    late = harness.tuning.create(request_for(harness.job(job_id)))
    harness.app.dispatcher.submitter.record_running(job_id, late)
    assert harness.job(job_id).vertex_job_name == recorded
    assert harness.tuning.jobs[late.name].state == RemoteState.CANCELLED
    assert harness.tuning.jobs[recorded].state != RemoteState.CANCELLED


def test_no_dispatch_while_active_jobs_cannot_be_listed(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    harness.tuning.fail("active_jobs", TuningUnavailable("UNAVAILABLE"))
    assert harness.app.dispatcher.dispatch() == []
    assert harness.job(job_id).state is JobState.QUEUED
    assert harness.app.dispatcher.dispatch() == [job_id]
