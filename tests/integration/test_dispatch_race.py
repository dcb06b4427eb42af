"""The dispatcher on real emulators: Firestore for state, the Vertex AI emulator for jobs.

Several dispatchers race; Vertex AI must never see more jobs at once than the quota, no job
may be created twice, and a dispatcher that dies mid-submission leaves nothing stuck.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from shared.bootstrap import App
from shared.jobs import JobState
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
