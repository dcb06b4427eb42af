"""Time a job spends waiting for quota on Vertex AI is not "running": no stuck or over-long warning counts it,
and `started_at` is when it got past the wait (issue 14, item 2). The detail state is the service's when it gives
one (the fake stands for a library that carries it) and otherwise inferred from this tick's list of active jobs."""

from __future__ import annotations

from datetime import datetime

from google.cloud import aiplatform_v1

from shared.adapters.vertex_tuning import to_remote
from shared.cli import job_details, vertex_detail
from shared.jobs import JobState
from shared.ports import RemoteJob, RemoteState, TuningUnavailable
from tests.fakes import FakeTuningService, Harness, make_harness

TICK = 600  # seconds between the polls of these tests
STUCK = 3600
MAX_RUNNING = 3 * 3600
EVENTS = "tunedrop-events"
WAITING = RemoteJob.WAITING_FOR_QUOTA
ENV = {
    "TUNEDROP_STUCK_SECONDS": str(STUCK),
    "TUNEDROP_MAX_RUNNING_SECONDS": str(MAX_RUNNING),
    "TUNEDROP_EVENTS_TOPIC": EVENTS,
}


def submitted(h: Harness, *names: str) -> list[str]:
    """Upload and dispatch datasets: their Vertex jobs are PENDING (the fake's first state)."""
    jobs = [h.upload(name) for name in names]
    assert sorted(h.app.dispatcher.dispatch()) == sorted(jobs)
    return jobs


def vertex_name(h: Harness, job_id: str) -> str:
    return h.job(job_id).vertex_job_name


def version(h: Harness, job_id: str) -> object:
    found = h.store.get(job_id)
    assert found is not None
    return found.version


def poll_for(h: Harness, seconds: int) -> None:
    """Poll every TICK for `seconds` (the first poll one TICK from now)."""
    for _ in range(seconds // TICK):
        h.clock.advance(TICK)
        h.app.poller.poll()


def kinds(h: Harness, job_id: str, kind: str) -> list[dict[str, object]]:
    return [p.json() for p in h.publisher.on(EVENTS) if p.attributes["kind"] == kind and p.json()["job_id"] == job_id]


def started_elsewhere(h: Harness, name: str = "by-hand") -> None:
    """A job someone started outside Tunedrop after it submitted its own: together they fill the quota."""
    h.tuning.add(
        RemoteJob(
            name=f"projects/p/locations/us-central1/tuningJobs/{name}",
            state=RemoteState.RUNNING,
            create_time=h.clock(),
            start_time=h.clock(),
        )
    )


def behind_a_running_job() -> tuple[Harness, str, str]:
    """Two jobs accepted by Vertex AI: `ahead` started, `behind` still PENDING, held for quota: a job started
    elsewhere took the second slot of the quota (2) after Tunedrop submitted `behind`."""
    h = make_harness(ENV, quota=2)
    ahead, behind = submitted(h, "ahead.jsonl", "behind.jsonl")
    h.tuning.set_state(vertex_name(h, ahead), RemoteState.RUNNING)
    started_elsewhere(h)
    return h, ahead, behind


def test_a_job_pending_behind_a_running_one_waits_for_quota_without_warnings_and_starts_when_admitted() -> None:
    h, ahead, behind = behind_a_running_job()
    created = h.clock()
    h.clock.advance(TICK)
    h.app.poller.poll()
    first_seen = h.clock()
    job = h.job(behind)
    assert (job.vertex_state, job.detail_state, job.detail_since) == (RemoteState.PENDING, WAITING, first_seen)
    written = version(h, behind)

    poll_for(h, 2 * STUCK)  # twice the stuck bound, waiting all along
    job = h.job(behind)
    assert job.warnings == [] and kinds(h, behind, "stuck") == []
    assert version(h, behind) == written  # recorded once, not rewritten on every tick
    assert (job.detail_state, job.detail_since) == (WAITING, first_seen)
    assert h.job(ahead).detail_state == ""  # the running job waits for nothing

    # A slot frees and Vertex AI admits the waiting job.
    h.tuning.succeed(vertex_name(h, ahead))
    admitted = h.tuning.set_state(vertex_name(h, behind), RemoteState.RUNNING)
    h.clock.advance(TICK)
    h.app.poller.poll()
    job = h.job(behind)
    assert admitted.start_time is not None and admitted.start_time > created
    assert job.started_at == admitted.start_time
    assert (job.vertex_state, job.detail_state, job.detail_since) == (RemoteState.RUNNING, "", h.clock())
    assert len(kinds(h, behind, "running")) == 1

    # running_too_long counts from that start, not from the create time.
    poll_for(h, MAX_RUNNING - 2 * TICK)
    assert h.job(behind).warnings == []
    poll_for(h, 2 * TICK)
    assert h.job(behind).warnings == ["running_too_long"]


def test_a_job_pending_while_nothing_runs_is_stuck_as_before() -> None:
    h = make_harness(ENV)
    (alone,) = submitted(h, "alone.jsonl")
    poll_for(h, STUCK)
    assert h.job(alone).warnings == []
    poll_for(h, TICK)
    job = h.job(alone)
    assert job.warnings == ["stuck_pending"]
    assert (job.detail_state, job.detail_since) == ("", None)
    assert vertex_detail(job) == ""
    assert [e["reason"] for e in kinds(h, alone, "stuck")] == ["stuck_pending"]


def test_the_stuck_clock_starts_when_the_wait_ends_not_at_creation() -> None:
    h, ahead, behind = behind_a_running_job()
    poll_for(h, 2 * STUCK)
    assert h.job(behind).detail_state == WAITING

    h.tuning.succeed(vertex_name(h, ahead))  # the running job ends; Vertex AI keeps the other PENDING
    h.clock.advance(TICK)
    h.app.poller.poll()
    stopped = h.clock()
    job = h.job(behind)
    assert (job.vertex_state, job.detail_state, job.detail_since) == (RemoteState.PENDING, "", stopped)
    assert job.warnings == []  # created over two hours ago, but it waited all that time

    poll_for(h, STUCK - TICK)
    assert h.job(behind).warnings == []
    poll_for(h, 2 * TICK)
    assert h.job(behind).warnings == ["stuck_pending"]
    assert kinds(h, behind, "stuck")[0]["reason"] == "stuck_pending"


def test_the_service_detail_state_running_but_waiting_for_quota_starts_the_job_when_it_is_past_the_wait() -> None:
    h = make_harness(ENV)
    (job_id,) = submitted(h, "given.jsonl")
    name = vertex_name(h, job_id)
    waits = 2 * MAX_RUNNING // TICK  # longer than running_too_long allows, counted from Vertex AI's start_time
    h.tuning.script(
        name,
        *[(RemoteState.RUNNING, FakeTuningService.detail(WAITING))] * waits,
        (RemoteState.RUNNING, FakeTuningService.detail("PROCESSING_DATASET")),
        (RemoteState.RUNNING, FakeTuningService.detail("TUNING")),
    )
    h.clock.advance(TICK)
    h.app.poller.poll()
    vertex_start = h.tuning.jobs[name].start_time
    job = h.job(job_id)
    assert (job.vertex_state, job.detail_state, job.detail_since) == (RemoteState.RUNNING, WAITING, vertex_start)
    assert job.started_at != vertex_start
    assert kinds(h, job_id, "running") == []  # not running yet: it waits
    written = version(h, job_id)

    poll_for(h, (waits - 1) * TICK)
    assert version(h, job_id) == written
    assert h.job(job_id).warnings == []

    h.clock.advance(TICK)
    h.app.poller.poll()
    past_wait = h.clock()
    job = h.job(job_id)
    assert (job.detail_state, job.detail_since, job.started_at) == ("PROCESSING_DATASET", past_wait, past_wait)
    assert len(kinds(h, job_id, "running")) == 1
    poll_for(h, TICK)
    job = h.job(job_id)
    assert (job.detail_state, job.detail_since, job.started_at) == ("TUNING", h.clock(), past_wait)
    assert len(kinds(h, job_id, "running")) == 1

    poll_for(h, MAX_RUNNING - 2 * TICK)
    assert h.job(job_id).warnings == []
    poll_for(h, 2 * TICK)
    assert h.job(job_id).warnings == ["running_too_long"]

    # Its outcome keeps that start: the completion event does not count the wait either.
    h.tuning.succeed(name)
    h.clock.advance(TICK)
    assert h.app.poller.poll() == [job_id]
    job = h.job(job_id)
    assert job.state is JobState.SUCCEEDED and job.started_at == past_wait
    assert job.ended_at is not None and job.ended_at > past_wait
    (event,) = h.completions()
    assert event.json()["duration_seconds"] == (job.ended_at - past_wait).total_seconds()


def test_without_the_list_nothing_is_inferred() -> None:
    h, _, behind = behind_a_running_job()
    h.tuning.fail("active_jobs", TuningUnavailable("UNAVAILABLE"))
    h.clock.advance(TICK)
    h.app.poller.poll()
    assert h.job(behind).detail_state == ""  # read on its own, it looks like any pending job
    h.clock.advance(TICK)
    h.app.poller.poll()
    assert h.job(behind).detail_state == WAITING


def test_inferring_the_wait_costs_no_vertex_call() -> None:
    h = make_harness(ENV, quota=10)
    jobs = submitted(h, *(f"j{n}.jsonl" for n in range(10)))
    h.tuning.set_state(vertex_name(h, jobs[0]), RemoteState.RUNNING)
    for n in range(9):
        started_elsewhere(h, f"elsewhere-{n}")
    h.tuning.calls.clear()
    h.clock.advance(TICK)
    h.app.poller.poll()
    assert (h.tuning.calls["active_jobs"], h.tuning.calls["get"]) == (1, 0)
    assert [h.job(j).detail_state for j in jobs] == [""] + [WAITING] * 9


def test_tunedrop_job_shows_the_detail_state_and_whether_it_was_inferred() -> None:
    h, _, behind = behind_a_running_job()
    h.clock.advance(TICK)
    h.app.poller.poll()
    since = h.clock()
    assert since == datetime.fromisoformat("2026-01-01T00:10:00+00:00")
    line = next(line for line in job_details(h.job(behind)) if "vertex detail" in line)
    assert line.startswith("  vertex detail WAITING_FOR_QUOTA since 2026-01-01 00:10 UTC (inferred: ")
    assert "PENDING" in line

    given = make_harness(ENV)
    (job_id,) = submitted(given, "given.jsonl")
    given.tuning.set_state(vertex_name(given, job_id), RemoteState.RUNNING, detail_state="TUNING")
    given.clock.advance(TICK)
    given.app.poller.poll()
    assert vertex_detail(given.job(job_id)) == "TUNING since 2026-01-01 00:10 UTC"


def test_the_installed_client_library_cannot_carry_the_detail_state() -> None:
    """aiplatform_v1 2.7 has no TuningJob.tuning_job_state: the adapter reports the detail state unknown. When a
    newer library carries it, this fails, and the adapter reads it from then on (see _detail_state there)."""
    assert "tuning_job_state" not in aiplatform_v1.TuningJob.meta.fields
    job = aiplatform_v1.TuningJob(
        name="projects/demo/locations/us-central1/tuningJobs/1", state=aiplatform_v1.JobState.JOB_STATE_RUNNING
    )
    assert to_remote(job).detail_state == ""


def test_the_completion_event_carries_the_last_detail_state_and_events_without_one_leave_it_out() -> None:
    h = make_harness(ENV, quota=2)
    with_detail, without = submitted(h, "detail.jsonl", "plain.jsonl")
    h.tuning.set_state(vertex_name(h, with_detail), RemoteState.RUNNING, **FakeTuningService.detail("POST_PROCESSING"))
    h.tuning.set_state(vertex_name(h, without), RemoteState.RUNNING)
    poll_for(h, TICK)
    assert h.job(with_detail).detail_state == "POST_PROCESSING"
    for job_id in (with_detail, without):
        h.tuning.succeed(vertex_name(h, job_id))
    poll_for(h, TICK)

    events = {p.json()["job_id"]: p.json() for p in h.completions()}
    assert events[with_detail]["detail_state"] == "POST_PROCESSING"
    assert "detail_state" not in events[without]


def test_a_job_that_ends_while_waiting_for_quota_keeps_its_last_detail_state_in_the_completion_event() -> None:
    """Vertex AI gives no detail state for an ended job (the library cannot carry it, and the service documents it
    only while the job runs): the end must not erase the last one recorded while the job was active."""
    h, _, behind = behind_a_running_job()
    poll_for(h, TICK)
    assert h.job(behind).detail_state == WAITING
    h.tuning.set_state(vertex_name(h, behind), RemoteState.CANCELLED)
    poll_for(h, TICK)

    assert h.job(behind).detail_state == WAITING
    (event,) = [p.json() for p in h.completions() if p.json()["job_id"] == behind]
    assert event["detail_state"] == WAITING


def test_a_job_pending_while_the_quota_has_room_is_not_waiting_for_it_and_is_warned_stuck() -> None:
    h = make_harness(ENV, quota=10)
    ahead, behind = submitted(h, "ahead.jsonl", "behind.jsonl")
    h.tuning.set_state(vertex_name(h, ahead), RemoteState.RUNNING)
    poll_for(h, STUCK + TICK)
    job = h.job(behind)
    assert job.detail_state == ""  # one job runs of ten allowed: nothing holds this one back for quota
    assert job.warnings == ["stuck_pending"]
