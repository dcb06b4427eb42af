"""The dispatcher on real emulators: Firestore for state, the Vertex AI emulator for jobs.

Several dispatchers race; Vertex AI must never see more jobs at once than the quota, no job
may be created twice, and a dispatcher that dies mid-submission leaves nothing stuck.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shared.bootstrap import App
from shared.jobs import Job, JobState
from shared.ports import RemoteJob, TuningRequest, TuningService
from tests.integration.apps import Killed, MovableClock, emulator_app, queued_jobs
from tests.integration.vertex import WatchedEmulator, vertex_emulator, vertex_tuning

pytestmark = pytest.mark.integration


def _app(env: Mapping[str, str], prefix: str, quota: int, tuning: TuningService, **kwargs: Any) -> App:
    return emulator_app(env, prefix, tuning, quota=quota, **kwargs)


def _queue(app: App, count: int) -> list[str]:
    jobs = queued_jobs(count)
    for job in jobs:
        assert app.store.create(job)
    return [job.job_id for job in jobs]


def test_eight_dispatchers_over_fifty_jobs_never_exceed_quota_three(emulator_env: dict[str, str]) -> None:
    prefix = f"race{uuid.uuid4().hex[:6]}"
    emulator = WatchedEmulator(quota=50, job_seconds=0.4, seed=1)
    with vertex_emulator(emulator) as host:
        apps = [_app(emulator_env, prefix, 3, vertex_tuning(host)) for _ in range(9)]
        dispatchers, poller = apps[:8], apps[8]
        job_ids = _queue(poller, 50)
        done = threading.Event()
        peak_slots = 0
        errors: list[BaseException] = []

        def run(step) -> None:  # type: ignore[no-untyped-def]
            while not done.is_set():
                try:
                    step()
                except BaseException as exc:
                    errors.append(exc)
                    done.set()

        def watch_slots() -> None:
            nonlocal peak_slots
            while not done.is_set():
                peak_slots = max(peak_slots, len(poller.ledger.holders()))

        threads = [threading.Thread(target=run, args=(app.dispatcher.dispatch,)) for app in dispatchers]
        threads += [threading.Thread(target=run, args=(poller.poller.poll,)), threading.Thread(target=watch_slots)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 240
        try:
            while time.monotonic() < deadline and not done.is_set():
                states = Counter(v.value.state for v in poller.store.in_states(list(JobState)))
                if states[JobState.SUCCEEDED] == 50:
                    break
                time.sleep(0.5)
        finally:
            done.set()
            for thread in threads:
                thread.join()

        assert not errors, errors
        final = {v.value.job_id: v.value for v in poller.store.in_states(list(JobState))}
        assert {j.state for j in final.values()} == {JobState.SUCCEEDED}
        assert emulator.peak_active <= 3, "Vertex AI never saw more than three jobs at once"
        assert peak_slots <= 3
        created = Counter(
            j.labels["tunedrop_job"]
            for j in emulator.list_tuning_jobs("projects/itest/locations/us-central1", page_size=1000).tuning_jobs
        )
        assert created == Counter(dict.fromkeys(job_ids, 1)), "one Vertex job per Tunedrop job"
        assert dict(poller.ledger.holders()) == {}


class DiesAfterCreate(TuningService):
    def __init__(self, inner: TuningService) -> None:
        self.inner = inner

    def create(self, request: TuningRequest) -> RemoteJob:
        self.inner.create(request)
        raise Killed

    def get(self, name: str) -> RemoteJob:
        return self.inner.get(name)

    def find(self, job_id: str, attempt: int) -> RemoteJob | None:
        return self.inner.find(job_id, attempt)

    def cancel(self, name: str) -> None:
        self.inner.cancel(name)

    def active_jobs(self) -> list[RemoteJob]:
        return self.inner.active_jobs()


def test_dispatcher_killed_between_create_and_record_leaves_no_duplicate_and_no_stuck_slot(
    emulator_env: dict[str, str],
) -> None:
    prefix = f"kill{uuid.uuid4().hex[:6]}"
    emulator = WatchedEmulator(quota=10, job_seconds=0.5, seed=2)
    with vertex_emulator(emulator) as host:
        clock = MovableClock()
        doomed = _app(emulator_env, prefix, 1, DiesAfterCreate(vertex_tuning(host)), clock=clock)
        (job_id,) = _queue(doomed, 1)
        with pytest.raises(Killed):
            doomed.dispatcher.dispatch()
        stuck = doomed.store.get(job_id)
        assert stuck is not None and stuck.value.state is JobState.SUBMITTING
        assert list(doomed.ledger.holders()) == [job_id]

        survivor = _app(emulator_env, prefix, 1, vertex_tuning(host), clock=clock)
        assert survivor.dispatcher.dispatch() == [], "within the lease nobody touches the claim"
        clock.offset = timedelta(seconds=61)
        survivor.dispatcher.dispatch()
        recovered = survivor.store.get(job_id)
        assert recovered is not None and recovered.value.state is JobState.RUNNING
        labels = [
            j.labels["tunedrop_job"]
            for j in emulator.list_tuning_jobs("projects/itest/locations/us-central1").tuning_jobs
        ]
        assert labels == [job_id], "the existing Vertex job was adopted, not created again"

        time.sleep(0.6)
        assert survivor.poller.poll() == [job_id]
        assert dict(survivor.ledger.holders()) == {}


def test_claim_without_a_slot_is_requeued_after_its_lease(emulator_env: dict[str, str]) -> None:
    prefix = f"lease{uuid.uuid4().hex[:6]}"
    emulator = WatchedEmulator(quota=10, job_seconds=0.5, seed=3)
    with vertex_emulator(emulator) as host:
        clock = MovableClock()
        app = _app(emulator_env, prefix, 1, vertex_tuning(host), clock=clock)
        (job_id,) = _queue(app, 1)
        # A dispatcher that died right after claiming the job, before taking a slot.
        queued = app.store.get(job_id)
        assert queued is not None
        claimed = queued.value.moved_to(JobState.SUBMITTING, clock(), "slot free", submit_claimed_at=clock())
        assert app.store.replace(claimed, queued.version)
        clock.offset = timedelta(seconds=61)
        assert app.dispatcher.dispatch() == [job_id]
        labels = [
            j.labels["tunedrop_job"]
            for j in emulator.list_tuning_jobs("projects/itest/locations/us-central1").tuning_jobs
        ]
        assert labels == [job_id]


def _team_jobs(team: str, count: int, tokens: int) -> list[Job]:
    """QUEUED jobs of `team` on a priced model ($3 per million tokens), each estimated at `tokens` tokens."""
    return [
        replace(
            job,
            team=team,
            base_model="gemini-3.1-flash-lite",
            validation={"valid": True, "estimated_billable_tokens": tokens},
        )
        for job in queued_jobs(count, prefix=team)
    ]


def _race_until(apps: list[App], finished: Callable[[], bool], seconds: float) -> None:
    """Every app's dispatcher in a loop of its own until `finished()` holds (then a few passes more) or
    `seconds` pass; re-raises what any of them raised."""
    done = threading.Event()
    errors: list[BaseException] = []

    def run(app: App) -> None:
        while not done.is_set():
            try:
                app.dispatcher.dispatch()
            except BaseException as exc:
                errors.append(exc)
                done.set()

    threads = [threading.Thread(target=run, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not done.is_set() and not finished():
            time.sleep(0.5)
        time.sleep(2)  # a few more racing passes over what is left
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert not errors, errors


def test_racing_dispatchers_hold_a_teams_slot_cap_and_budget(emulator_env: dict[str, str]) -> None:
    # Team "capped" may hold one slot; team "thrifty" may spend $10 a month and each of its jobs is estimated at
    # $3, so three fit. Six dispatchers race over both teams' queues and a third team's. No job ends during the
    # race (long jobs, no poller), so what is held at the end is the most that was ever held.
    prefix = f"teams{uuid.uuid4().hex[:6]}"
    policies = {"teams": {"capped": {"max_slots": 1}, "thrifty": {"monthly_budget_usd": 10}}}
    emulator = WatchedEmulator(quota=50, job_seconds=600, seed=4)
    with vertex_emulator(emulator) as host:
        settings = {"TUNEDROP_TEAM_POLICIES": json.dumps(policies)}
        apps = [_app(emulator_env, prefix, 20, vertex_tuning(host), settings=settings) for _ in range(6)]
        store = apps[0].store
        for job in _team_jobs("capped", 6, 1000) + _team_jobs("thrifty", 6, 1_000_000) + _team_jobs("free", 6, 1000):
            assert store.create(job)

        def jobs() -> dict[str, Job]:
            return {v.value.job_id: v.value for v in store.in_states(list(JobState), limit=100)}

        def by_team() -> Counter[tuple[str, JobState]]:
            return Counter((job.team, job.state) for job in jobs().values())

        _race_until(
            apps,
            lambda: by_team()[("free", JobState.RUNNING)] == 6 and by_team()[("thrifty", JobState.RUNNING)] == 3,
            120,
        )

        final = by_team()
        assert final[("capped", JobState.RUNNING)] == 1, "the capped team holds no more than its one slot"
        assert final[("capped", JobState.QUEUED)] == 5
        assert final[("thrifty", JobState.RUNNING)] == 3 and final[("thrifty", JobState.QUEUED)] == 3
        assert final[("free", JobState.RUNNING)] == 6
        waiting = sorted(
            job_id for job_id, job in jobs().items() if job.team == "thrifty" and job.state is JobState.QUEUED
        )
        # The team's next job records why it waits; those behind it wait their turn.
        assert store.get(waiting[0]).value.waiting_reason == "over_budget"  # type: ignore[union-attr]
        assert apps[0].dispatcher.budgets.spent("thrifty") == pytest.approx(9.0), "three estimates, never a fourth"
        slots = store.read_slots().value
        assert sorted(slots.teams.values()).count("capped") == 1 and len(slots.holders) == 10
        created = Counter(
            j.labels["tunedrop_job"]
            for j in emulator.list_tuning_jobs("projects/itest/locations/us-central1", page_size=1000).tuning_jobs
        )
        assert sum(created.values()) == 10 and set(created.values()) == {1}, "one Vertex job per submitted job"
