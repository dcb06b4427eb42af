"""Operator commands: cancel, retry and the quota view, on in-memory fakes."""

from __future__ import annotations

import json

import pytest

from shared.errors import JobNotFound, NotAllowed, TransientError
from shared.jobs import JobState
from shared.ports import RemoteJob, RemoteState, TuningUnavailable
from shared.services.operations import MAX_REASON_LENGTH, OperatorRequest
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


# -- who asked, and why (issue 13, item 6) -----------------------------------------------------

ALICE = OperatorRequest("alice@example.com", "wrong dataset")


def test_a_cancel_of_a_queued_job_records_the_operator_and_reason(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    cancelled = harness.app.operations.cancel(job_id, ALICE)
    entry = cancelled.history[-1]
    assert (entry.to_state, entry.actor, entry.reason) == (
        "CANCELLED",
        "alice@example.com",
        "cancelled by an operator: wrong dataset",
    )
    assert harness.job(job_id).history[-1] == entry


def test_a_cancel_of_a_running_job_keeps_who_asked_until_the_poller_records_it(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    harness.app.dispatcher.dispatch()
    flagged = harness.app.operations.cancel(job_id, ALICE)
    assert (flagged.cancel_requested_by, flagged.cancel_reason) == ("alice@example.com", "wrong dataset")
    harness.app.operations.cancel(job_id, OperatorRequest("bob@example.com", "me too"))  # the first asker stays
    assert harness.job(job_id).cancel_requested_by == "alice@example.com"
    harness.app.poller.poll()
    entry = harness.job(job_id).history[-1]
    assert (entry.to_state, entry.actor) == ("CANCELLED", "alice@example.com")
    assert entry.reason.endswith("; asked by an operator: wrong dataset")


def test_a_cancel_asked_while_submitting_names_the_operator_when_the_submitter_ends_the_job(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    current = harness.store.get(job_id)
    assert current is not None
    claimed = current.value.moved_to(JobState.SUBMITTING, harness.clock(), "claimed")
    harness.store.replace(claimed, current.version)
    harness.app.operations.cancel(job_id, ALICE)
    harness.app.dispatcher.submitter.finish(job_id, JobState.CANCELLED, "cancelled by an operator before submission")
    entry = harness.job(job_id).history[-1]
    assert (entry.to_state, entry.actor) == ("CANCELLED", "alice@example.com")
    assert entry.reason == "cancelled by an operator before submission; asked by an operator: wrong dataset"


def test_a_retry_records_the_operator_and_reason_and_a_new_attempt_forgets_the_cancel(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    harness.app.dispatcher.dispatch()
    harness.tuning.set_state(harness.job(job_id).vertex_job_name, "JOB_STATE_FAILED", error_code=13, error_message="x")
    harness.app.poller.poll()
    retried = harness.app.operations.retry(job_id, OperatorRequest("bob@example.com", "transient outage"))
    entry = retried.history[-1]
    assert (entry.to_state, entry.actor) == ("QUEUED", "bob@example.com")
    assert entry.reason == "retried by an operator as attempt 2: transient outage"
    assert (retried.cancel_requested_by, retried.cancel_reason) == ("", "")


def test_a_retune_records_who_asked_on_the_new_job(harness: Harness) -> None:
    original = harness.upload("a.jsonl")
    harness.app.operations.cancel(original, ALICE)
    retuned = harness.app.uploads.retune(original, "gemini-3.5-flash", OperatorRequest("carol@example.com", "newer"))
    assert (retuned.requested_by, retuned.request_reason) == ("carol@example.com", "newer")
    first = retuned.history[0]
    assert (first.from_state, first.to_state, first.actor) == (None, "VALIDATING", "carol@example.com")
    assert first.reason == f"retune of {original} on gemini-3.5-flash asked by an operator: newer"
    assert all(not entry.actor for entry in retuned.history[1:])  # validation is Tunedrop's own


def test_a_retune_of_a_job_recorded_without_a_team_is_the_default_teams(harness: Harness) -> None:
    original = harness.upload("a.jsonl")
    harness.app.operations.cancel(original, ALICE)
    current = harness.store.get(original)
    assert current is not None
    harness.store.replace(current.value.with_fields(team=""), current.version)  # as recorded before teams existed
    retuned = harness.app.uploads.retune(original, "gemini-3.5-flash", ALICE)
    assert retuned.team == harness.settings.default_team == "default"


def test_without_a_request_nothing_names_an_operator(harness: Harness) -> None:
    job_id = harness.upload("a.jsonl")
    cancelled = harness.app.operations.cancel(job_id)
    assert (cancelled.history[-1].actor, cancelled.history[-1].reason) == ("", "cancelled by an operator")


@pytest.mark.parametrize(
    ("actor", "reason", "problem"),
    [
        ("", "why", "name of who asks"),
        ("   ", "why", "name of who asks"),
        ("alice", "", "say why"),
        ("alice", "x" * (MAX_REASON_LENGTH + 1), f"at most {MAX_REASON_LENGTH}"),
        ("alice", "a\tb", "one line"),
    ],
)
def test_an_operator_request_needs_a_name_and_a_reason(actor: str, reason: str, problem: str) -> None:
    with pytest.raises(NotAllowed, match=problem):
        OperatorRequest(actor, reason)


def test_an_operator_request_is_trimmed() -> None:
    assert OperatorRequest(" alice ", " why \n") == OperatorRequest("alice", "why")
