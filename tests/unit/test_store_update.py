"""JobStore.update: the one conditional read-change-write every service uses for a job."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.jobs import Job, new_job
from shared.ports import MAX_UPDATE_ATTEMPTS, UpdateContention
from tests.fakes import InMemoryJobStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stored(store: InMemoryJobStore) -> Job:
    job = new_job(job_id="j", bucket="b", object_name="incoming/j.jsonl", generation="1", base_model="m", now=T0)
    store.put(job)
    return job


def test_the_change_is_applied_to_what_is_stored_and_written_once() -> None:
    store = InMemoryJobStore()
    stored(store)
    result = store.update("j", lambda job: replace(job, priority=job.priority + 1))
    assert result is not None and result.written and result.job.priority == 1
    assert store.job("j").priority == 1


def test_nothing_to_change_and_no_such_job() -> None:
    store = InMemoryJobStore()
    job = stored(store)
    result = store.update("j", lambda current: None)
    assert result is not None and not result.written and result.job == job
    assert store.update("missing", lambda current: current) is None


def test_a_lost_race_is_retried_on_the_new_state_then_gives_up_with_a_transient_error() -> None:
    store = InMemoryJobStore()
    stored(store)
    pauses: list[float] = []
    seen: list[int] = []

    def bump_behind_its_back(job: Job) -> Job:
        seen.append(job.priority)
        store.put(replace(store.job("j"), priority=store.job("j").priority + 10))  # someone writes first
        return replace(job, display_name="mine")

    with pytest.raises(UpdateContention):
        store.update("j", bump_behind_its_back, sleep=pauses.append)
    assert len(seen) == MAX_UPDATE_ATTEMPTS and seen == sorted(seen) and seen[1] > seen[0]  # re-read each time
    assert len(pauses) == MAX_UPDATE_ATTEMPTS and all(0 <= p <= 0.2 for p in pauses)
    assert store.job("j").display_name == ""

    calls: dict[str, Any] = {"n": 0}

    def loses_once(job: Job) -> Job:
        calls["n"] += 1
        if calls["n"] == 1:
            store.put(replace(store.job("j"), priority=99))
        return replace(job, display_name="second try")

    result = store.update("j", loses_once, sleep=lambda s: None)
    assert result is not None and result.written and result.job.priority == 99
    assert store.job("j").display_name == "second try"


def test_swap_writes_over_the_version_read_and_never_over_a_newer_one() -> None:
    store = InMemoryJobStore()
    stored(store)
    read = store.get("j")
    assert read is not None
    assert store.swap(read, lambda job: None) is None  # the change declined: nothing written
    assert store.writes == 0
    written = store.swap(read, lambda job: job.with_fields(priority=2))
    assert written is not None and written.priority == 2 and store.job("j").priority == 2
    # The job moved on since `read`: a claim on what was read loses, and is not retried.
    assert store.swap(read, lambda job: job.with_fields(priority=3)) is None
    assert store.job("j").priority == 2
