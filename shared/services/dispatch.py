"""Dispatcher: submit queued jobs in priority then FIFO order, never beyond the quota, never twice."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from shared import logs
from shared.jobs import Job, JobState, TransitionRefused
from shared.ports import (
    QuotaExhausted,
    RemoteJob,
    TuningRejected,
    TuningRequest,
    TuningUnavailable,
    Versioned,
)
from shared.services.base import JobService

MAX_SUBMIT_ERRORS = 5


class Dispatcher(JobService):
    def dispatch(self) -> list[str]:
        """Submit as many queued jobs as there are free slots; returns the submitted job ids."""
        self._sweep_slots()
        paused = self._ledger.paused_until()
        if paused is not None:
            logs.info("dispatch paused after RESOURCE_EXHAUSTED", until=paused.isoformat())
            return []
        if not self._store.queued(limit=1):
            return []  # nothing waits: no call to Vertex AI at all
        submitted: list[str] = []
        limit = self._slot_limit(submitted)
        while True:
            free = limit - len(self._ledger.holders())
            if free <= 0:
                break
            candidates = self._store.queued(limit=free)
            if not candidates:
                break
            progressed = False
            for candidate in candidates:
                outcome = self._take(candidate, limit)
                if outcome == "full":
                    return submitted
                if outcome == "submitted":
                    submitted.append(candidate.value.job_id)
                    progressed = True
                elif outcome == "failed":
                    progressed = True  # its slot is free again and the queue moved on
                elif outcome == "stop":
                    return submitted
            if not progressed:
                break
        return submitted

    def _slot_limit(self, adopted: list[str]) -> int:
        """The quota less the active jobs Tunedrop does not hold a slot for (made by hand, by other
        tools, or orphaned): they take slots of the same global quota."""
        holders = self._ledger.holders()
        try:
            active = self._tuning.active_jobs()
        except TuningUnavailable as exc:
            logs.warning("could not list active tuning jobs; counting only our own", error=str(exc))
            return self._settings.quota
        foreign: list[str] = []
        for job in active:
            if job.job_id in holders:
                continue
            if self._adopt(job):
                adopted.append(job.job_id)
            else:
                foreign.append(job.name)
        if foreign:
            logs.info("active tuning jobs outside Tunedrop's slots take quota", jobs=foreign)
        return max(0, self._settings.quota - len(foreign))

    def _adopt(self, remote: RemoteJob) -> bool:
        """Take back a live Vertex job whose Tunedrop job went back to the queue (say, the create
        answered UNAVAILABLE yet went through). True when it is ours again."""
        if not remote.job_id:
            return False
        current = self._store.get(remote.job_id)
        if current is None or current.value.state is not JobState.QUEUED:
            return False
        if remote.attempt != current.value.attempt:
            return False
        now = self._clock()
        claimed = current.value.moved_to(JobState.SUBMITTING, now, "its Vertex job is running", submit_claimed_at=now)
        if not self._store.replace(claimed, current.version):
            return False
        # The job holds a Vertex slot already, so its claim may not be refused.
        self._ledger.claim(remote.job_id, limit=len(self._ledger.holders()) + 1)
        with logs.log_context(job_id=remote.job_id):
            logs.info("adopting a running Vertex job of a queued job", vertex_job=remote.name)
            self._submit(remote.job_id)
        return True

    def _take(self, candidate: Versioned[Job], limit: int) -> str:
        """Claim the job, then a slot, then submit. Returns submitted, lost, full or stop."""
        job = candidate.value
        now = self._clock()
        try:
            claimed = job.moved_to(JobState.SUBMITTING, now, "slot free", submit_claimed_at=now)
        except TransitionRefused:
            return "lost"
        # The job first: once it is SUBMITTING no other dispatcher can take it.
        if not self._store.replace(claimed, candidate.version):
            return "lost"
        if not self._ledger.claim(job.job_id, limit):
            self._requeue(job.job_id, "all slots taken by another dispatcher")
            return "full"
        with logs.log_context(job_id=job.job_id):
            return self._submit(job.job_id)

    def _submit(self, job_id: str) -> str:
        current = self._store.get(job_id)
        if current is None or current.value.state is not JobState.SUBMITTING:
            self._ledger.release(job_id)
            return "lost"
        job = current.value
        try:
            remote = self._tuning.find(job.job_id, job.attempt)
            if remote is None:
                remote = self._tuning.create(self._request_for(job))
                logs.info("tuning job created", vertex_job=remote.name, base_model=job.base_model)
            else:
                logs.info("tuning job found from an earlier attempt", vertex_job=remote.name)
        except QuotaExhausted as exc:
            until = self._ledger.back_off()
            logs.warning(
                "Vertex AI quota full; job goes back to the head of the queue",
                error=str(exc),
                paused_until=until.isoformat(),
            )
            self._requeue(job.job_id, "Vertex AI answered RESOURCE_EXHAUSTED", release=True)
            return "stop"
        except TuningUnavailable as exc:
            errors = job.submit_errors + 1
            if errors >= MAX_SUBMIT_ERRORS:
                self._fail(current, {"code": "SUBMIT_UNAVAILABLE", "message": str(exc)})
                return "failed"
            logs.warning("Vertex AI unavailable; job re-queued", error=str(exc), submit_errors=errors)
            self._requeue(job.job_id, f"Vertex AI unavailable: {exc}", release=True, submit_errors=errors)
            return "stop"
        except TuningRejected as exc:
            self._fail(current, {"code": "SUBMIT_REJECTED", "message": str(exc)})
            return "failed"
        self._ledger.clear_backoff()
        self._record_running(job.job_id, remote)
        return "submitted"

    def _request_for(self, job: Job) -> TuningRequest:
        return TuningRequest(
            job_id=job.job_id,
            attempt=job.attempt,
            base_model=job.base_model,
            training_dataset_uri=job.dataset_uri,
            validation_dataset_uri=job.validation_uri,
            display_name=job.display_name or job.job_id,
            hyper_parameters=job.hyper_parameters,
            labels=job.labels,
        )

    def _record_running(self, job_id: str, remote: RemoteJob) -> None:
        for _ in range(10):
            current = self._store.get(job_id)
            if current is None or current.value.state is not JobState.SUBMITTING:
                return
            job = current.value
            running = job.moved_to(
                JobState.RUNNING,
                self._clock(),
                "submitted to Vertex AI",
                vertex_job_name=remote.name,
                vertex_state=remote.state,
                started_at=remote.start_time or remote.create_time or self._clock(),
            )
            if self._store.replace(running, current.version):
                self._lifecycle.emit(running, "submitted", vertex_state=remote.state)
                return

    def _requeue(self, job_id: str, reason: str, *, release: bool = False, **changes: object) -> None:
        for _ in range(10):
            current = self._store.get(job_id)
            if current is None or current.value.state is not JobState.SUBMITTING:
                break
            job = current.value
            requeued = job.moved_to(JobState.QUEUED, self._clock(), reason, submit_claimed_at=None, **changes)
            if self._store.replace(requeued, current.version):
                break
        if release:
            self._ledger.release(job_id)

    def _fail(self, current: Versioned[Job], error: dict[str, str]) -> None:
        job = current.value
        failed = job.moved_to(JobState.FAILED, self._clock(), error["message"], error=error, ended_at=self._clock())
        if self._store.replace(failed, current.version):
            logs.error("job finished", state=JobState.FAILED.value, error=error["message"])
            self._ledger.release(job.job_id)
            self._completions.publish(failed)

    def _sweep_slots(self) -> None:
        """Free slots whose holder no longer needs one; re-queue claims that outlived their lease."""
        lease = timedelta(seconds=self._settings.submit_lease_seconds)
        now = self._clock()

        def is_stale(job_id: str) -> bool:
            current = self._store.get(job_id)
            return current is None or not current.value.state.holds_slot

        freed = self._ledger.sweep(is_stale)
        if freed:
            logs.info("freed slots of jobs that no longer hold one", job_ids=freed)
        holders = self._ledger.holders()
        for stuck in self._store.in_states([JobState.SUBMITTING]):
            job = stuck.value
            claimed_at = job.submit_claimed_at or job.updated_at
            if now - claimed_at < lease:
                continue
            with logs.log_context(job_id=job.job_id):
                if job.job_id in holders:
                    # The dispatcher died after taking the slot: finish its submission (idempotent).
                    refreshed = replace(job, submit_claimed_at=now)
                    if self._store.replace(refreshed, stuck.version):
                        logs.warning("recovering a submission whose lease expired")
                        self._submit(job.job_id)
                else:
                    logs.warning("re-queueing a claim that never got a slot")
                    self._requeue(job.job_id, "submission lease expired")
