"""The job state machine, its history, and the job id."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.jobs import (
    ALLOWED_TRANSITIONS,
    MAX_HISTORY,
    TERMINAL_STATES,
    Job,
    JobState,
    TransitionRefused,
    can_transition,
    completion_event_id,
    job_id_for,
    new_job,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
S = JobState

EXPECTED_ALLOWED = {
    (S.VALIDATING, S.QUEUED),
    (S.VALIDATING, S.REJECTED),
    (S.VALIDATING, S.CANCELLED),
    (S.VALIDATING, S.FAILED),  # validation never finished, or the dataset changed before it was kept
    (S.QUEUED, S.SUBMITTING),
    (S.QUEUED, S.CANCELLED),
    (S.QUEUED, S.FAILED),  # its base model closed for tuning before it was submitted
    (S.QUEUED, S.REJECTED),  # over its team's monthly budget, with a policy that rejects
    (S.SUBMITTING, S.RUNNING),
    (S.SUBMITTING, S.QUEUED),
    (S.SUBMITTING, S.FAILED),
    (S.SUBMITTING, S.CANCELLED),
    (S.SUBMITTING, S.SUCCEEDED),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.FAILED, S.QUEUED),
}
ALL_PAIRS = list(itertools.product(JobState, JobState))
# A path from VALIDATING to each state, so a job can be put in any state legally.
PATH_TO = {
    S.VALIDATING: [],
    S.QUEUED: [S.QUEUED],
    S.SUBMITTING: [S.QUEUED, S.SUBMITTING],
    S.RUNNING: [S.QUEUED, S.SUBMITTING, S.RUNNING],
    S.SUCCEEDED: [S.QUEUED, S.SUBMITTING, S.RUNNING, S.SUCCEEDED],
    S.FAILED: [S.QUEUED, S.SUBMITTING, S.FAILED],
    S.CANCELLED: [S.QUEUED, S.CANCELLED],
    S.REJECTED: [S.REJECTED],
}


def fresh(job_id: str = "ds-1") -> Job:
    return new_job(job_id=job_id, bucket="ds", object_name="incoming/a.jsonl", generation="7", base_model="m", now=T0)


def job_in(state: JobState) -> Job:
    job = fresh()
    for i, step in enumerate(PATH_TO[state]):
        job = job.moved_to(step, T0 + timedelta(seconds=i + 1), f"to {step}")
    assert job.state is state
    return job


def test_the_transition_table_is_exactly_the_documented_one() -> None:
    table = {(a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets}
    assert table == EXPECTED_ALLOWED
    assert set(ALLOWED_TRANSITIONS) == set(JobState)


@pytest.mark.parametrize(("source", "target"), sorted(EXPECTED_ALLOWED))
def test_allowed_transition(source: JobState, target: JobState) -> None:
    job = job_in(source)
    moved = job.moved_to(target, T0 + timedelta(hours=1), "because")
    assert moved.state is target
    assert moved.updated_at == T0 + timedelta(hours=1)
    assert moved.history[-1].from_state == source.value
    assert moved.history[-1].to_state == target.value
    assert moved.history[-1].reason == "because"
    assert len(moved.history) == len(job.history) + 1
    assert job.state is source  # the original is untouched (frozen)


@pytest.mark.parametrize(("source", "target"), [p for p in ALL_PAIRS if p not in EXPECTED_ALLOWED])
def test_refused_transition(source: JobState, target: JobState) -> None:
    job = job_in(source)
    assert not can_transition(source, target)
    with pytest.raises(TransitionRefused, match=f"{source} -> {target}"):
        job.moved_to(target, T0, "nope")


def test_terminal_states() -> None:
    assert {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.REJECTED} == TERMINAL_STATES
    assert all(s.terminal == (s in TERMINAL_STATES) for s in JobState)
    # No way out of a terminal state except the operator's retry of a FAILED job.
    assert ALLOWED_TRANSITIONS[S.SUCCEEDED] == ALLOWED_TRANSITIONS[S.CANCELLED] == frozenset()
    assert ALLOWED_TRANSITIONS[S.REJECTED] == frozenset()
    assert ALLOWED_TRANSITIONS[S.FAILED] == {S.QUEUED}
    assert {s for s in JobState if s.holds_slot} == {S.SUBMITTING, S.RUNNING}


def test_history_records_every_move_in_order() -> None:
    job = job_in(S.SUCCEEDED)
    assert [(h.from_state, h.to_state) for h in job.history] == [
        (None, "VALIDATING"),
        ("VALIDATING", "QUEUED"),
        ("QUEUED", "SUBMITTING"),
        ("SUBMITTING", "RUNNING"),
        ("RUNNING", "SUCCEEDED"),
    ]
    assert job.history[0].reason == "uploaded" and job.history[0].at == T0
    assert [h.at for h in job.history] == sorted(h.at for h in job.history)


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_entering_a_terminal_state_marks_a_completion_pending(state: JobState) -> None:
    job = job_in(state)
    assert job.completion_pending is True
    assert job.completion_event_id == completion_event_id(job.job_id, job.attempt, state)
    assert job.completion_event_id == f"ds-1/1/{state.value.lower()}"


def test_non_terminal_moves_do_not_mark_a_completion() -> None:
    assert not job_in(S.RUNNING).completion_pending
    assert job_in(S.RUNNING).completion_event_id == ""


def test_changes_are_applied_with_the_move() -> None:
    moved = job_in(S.RUNNING).moved_to(S.SUCCEEDED, T0, "done", tuned_model="m1", ended_at=T0)
    assert moved.tuned_model == "m1" and moved.ended_at == T0


def test_document_round_trip() -> None:
    job = replace(job_in(S.FAILED), hyper_parameters={"epochs": 3}, labels={"team": "x"}, error={"code": "E"})
    doc = job.to_document()
    assert doc["state"] == "FAILED"
    assert isinstance(doc["history"], list) and isinstance(doc["history"][0], dict)
    assert Job.from_document(doc) == job
    assert Job.from_document({**doc, "unknown_field": 1}) == job  # newer documents still load


def test_new_job_starts_validating() -> None:
    job = fresh()
    assert job.state is S.VALIDATING
    assert job.generation == "7"
    assert job.attempt == 1
    assert job.dataset_uri == "gs://ds/incoming/a.jsonl"
    assert not job.completion_pending


# ---- job_id_for ---------------------------------------------------------------------------

LABEL_VALUE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def test_job_id_is_stable_and_distinct_per_upload() -> None:
    a = job_id_for("ds", "incoming/My Data.jsonl", "1795266321404665")
    assert a == job_id_for("ds", "incoming/My Data.jsonl", 1795266321404665)  # str or int generation
    assert a.startswith("my-data-")
    assert a != job_id_for("ds", "incoming/My Data.jsonl", "1795266321404666")  # a new generation
    assert a != job_id_for("other", "incoming/My Data.jsonl", "1795266321404665")
    assert a != job_id_for("ds", "incoming/my-data.jsonl", "1795266321404665")


@pytest.mark.parametrize(
    "name",
    [
        "incoming/a.jsonl",
        "incoming/2024-data.jsonl",
        "incoming/___.jsonl",
        "incoming/.jsonl",
        "incoming/ÜBER Daten.jsonl",
        "incoming/" + "X" * 300 + ".jsonl",
        "incoming/" + "9" * 300 + ".jsonl",
        "incoming/1-" + "-" * 50 + "z.jsonl",
        "incoming/数据.jsonl",
    ],
)
def test_job_id_is_a_valid_vertex_label_value(name: str) -> None:
    job_id = job_id_for("ds", name, "1")
    assert LABEL_VALUE.match(job_id), job_id
    assert len(job_id) <= 63


@given(bucket=st.text(min_size=1, max_size=30), name=st.text(max_size=200), generation=st.integers(0, 2**63))
def test_job_id_is_always_a_valid_vertex_label_value(bucket: str, name: str, generation: int) -> None:
    job_id = job_id_for(bucket, name, generation)
    assert LABEL_VALUE.match(job_id), job_id
    assert job_id == job_id_for(bucket, name, str(generation))


def test_history_stays_bounded_and_keeps_its_first_entry() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    job = new_job(job_id="j", bucket="b", object_name="incoming/j.jsonl", generation="1", base_model="m", now=now)
    job = job.moved_to(JobState.QUEUED, now, "validated")
    for _ in range(MAX_HISTORY):
        job = job.moved_to(JobState.SUBMITTING, now, "claim").moved_to(JobState.QUEUED, now, "quota full")
    assert len(job.history) == MAX_HISTORY
    assert job.history[0].reason == "uploaded"
    assert job.history[-1].reason == "quota full"


def test_with_fields_changes_fields_but_never_the_state_or_the_history() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    job = new_job(job_id="j", bucket="b", object_name="incoming/j.jsonl", generation="1", base_model="m", now=now)
    assert job.with_fields(priority=3).priority == 3
    for guarded in ({"state": JobState.SUCCEEDED}, {"history": ()}, {"job_id": "other"}):
        with pytest.raises(TransitionRefused):
            job.with_fields(**guarded)


def test_latest_move_is_the_move_last_recorded() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    job = new_job(job_id="j", bucket="b", object_name="incoming/j.jsonl", generation="1", base_model="m", now=now)
    assert job.latest_move == (None, JobState.VALIDATING)
    queued = job.moved_to(JobState.QUEUED, now, "validated")
    assert queued.latest_move == (JobState.VALIDATING, JobState.QUEUED)
    assert queued.with_fields(priority=1).latest_move == (JobState.VALIDATING, JobState.QUEUED)
