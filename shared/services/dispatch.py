"""Dispatcher: submit queued jobs in priority then FIFO order, never beyond the quota, never twice."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from enum import StrEnum

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


class Outcome(StrEnum):
    """What one attempt to take a queued job came to, and so what the dispatch pass does next."""

    SUBMITTED = "submitted"  # its Vertex job exists now: count it
    LOST = "lost"  # another dispatcher took it, or it moved on: try the next one
    FULL = "full"  # every slot is taken: stop this pass
    STOP = "stop"  # Vertex AI refused or did not answer: stop this pass, try again later
    FAILED = "failed"  # the job ended without a Vertex job (refused, its model closed): its slot is free again


class Dispatcher(JobService):
    def dispatch(self) -> list[str]:
        """Submit as many queued jobs as there are free slots; returns the submitted job ids."""
        self._sweep_slots()
        table = self._ledger.table()  # read once: the backoff and the slot limit both come from it
        paused = self._ledger.paused_until(table)
        if paused is not None:
            logs.info("dispatch paused after RESOURCE_EXHAUSTED", until=paused.isoformat())
            return []
        if not self._store.queued(limit=1):
            return []  # nothing waits: no call to Vertex AI at all
        submitted: list[str] = []
        limit = self._slot_limit(set(table.holders), submitted)
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
                if outcome is Outcome.FULL:
                    return submitted
                if outcome is Outcome.SUBMITTED:
                    submitted.append(candidate.value.job_id)
                    progressed = True
                elif outcome is Outcome.FAILED:
                    progressed = True  # its slot is free again and the queue moved on
                elif outcome is Outcome.STOP:
                    return submitted
            if not progressed:
                break
        return submitted

    def _slot_limit(self, holders: set[str], adopted: list[str]) -> int:
        """The quota less the active jobs Tunedrop does not hold a slot for (made by hand, by other
        tools, or orphaned): they take slots of the same global quota."""
        try:
            active = self._tuning.active_jobs()
        except TuningUnavailable as exc:
            # Without the list, others' jobs are unknown: dispatching could exceed the quota.
            logs.warning("could not list active tuning jobs; not dispatching until the next trigger", error=str(exc))
            return 0
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
            self._record_running(remote.job_id, remote)
        return True

    def _take(self, candidate: Versioned[Job], limit: int) -> Outcome:
        """Claim the job, then a slot, then submit."""
        job = candidate.value
        if self._fail_if_model_closed(candidate):
            return Outcome.FAILED
        now = self._clock()
        try:
            claimed = job.moved_to(JobState.SUBMITTING, now, "slot free", submit_claimed_at=now)
        except TransitionRefused:
            return Outcome.LOST
        # The job first: once it is SUBMITTING no other dispatcher can take it.
        if not self._store.replace(claimed, candidate.version):
            return Outcome.LOST
        if not self._ledger.claim(job.job_id, limit):
            self._requeue(job.job_id, "all slots taken by another dispatcher")
            return Outcome.FULL
        with logs.log_context(job_id=job.job_id):
            return self._submit(job.job_id)

    def _submit(self, job_id: str) -> Outcome:
        """Find-or-create the Vertex job of a SUBMITTING job that holds a slot.

        An unclear failure (UNAVAILABLE, a timeout) may hide a create that went through, so the job
        keeps its claim and its slot, and a later dispatch retries with find-then-create after a
        pause. Only RESOURCE_EXHAUSTED, a clear refusal, gives the slot back at once.
        """
        current = self._store.get(job_id)
        if current is None or current.value.state is not JobState.SUBMITTING:
            if current is None or not current.value.state.holds_slot:
                self._ledger.release(job_id)
            return Outcome.LOST
        job = current.value
        try:
            remote = self._tuning.find(job.job_id, job.attempt)
            if remote is None and job.cancel_requested:
                self._finish(job.job_id, JobState.CANCELLED, "cancelled by an operator before submission")
                return Outcome.FAILED
            if remote is None and job.submit_errors >= MAX_SUBMIT_ERRORS:
                # Vertex AI answered the find: nothing was created, and it kept failing to create.
                self._finish(
                    job.job_id,
                    JobState.FAILED,
                    "Vertex AI kept failing to create the job",
                    {"code": "SUBMIT_UNAVAILABLE", "message": job.last_submit_error or "unavailable"},
                )
                return Outcome.FAILED
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
            return Outcome.STOP
        except TuningUnavailable as exc:
            errors = job.submit_errors + 1
            logs.warning(
                "Vertex AI unavailable; the job keeps its slot and is retried", error=str(exc), submit_errors=errors
            )
            self._note_submit_error(current, errors, str(exc))
            return Outcome.STOP
        except (TuningRejected, ValueError, KeyError, TypeError) as exc:
            # Refused by Vertex AI, or a request that cannot even be built: retrying cannot help.
            self._finish(job.job_id, JobState.FAILED, str(exc), {"code": "SUBMIT_REJECTED", "message": str(exc)})
            return Outcome.FAILED
        self._ledger.clear_backoff()
        self._record_running(job.job_id, remote)
        return Outcome.SUBMITTED

    def _note_submit_error(self, current: Versioned[Job], errors: int, message: str) -> None:
        """Count an unclear failure on the claim; `_retry_due` schedules the next try from it."""
        now = self._clock()
        noted = replace(
            current.value,
            submit_errors=errors,
            last_submit_error=message[:500],
            submit_retry_at=now + min(timedelta(minutes=5), timedelta(seconds=5 * 2 ** (errors - 1))),
            updated_at=now,
        )
        self._store.replace(noted, current.version)

    def _request_for(self, job: Job) -> TuningRequest:
        return TuningRequest(
            job_id=job.job_id,
            attempt=job.attempt,
            base_model=job.base_model,
            # The copies of exactly what was validated (jobs validated before copies existed: the originals).
            training_dataset_uri=job.tuning_training_uri or job.dataset_uri,
            validation_dataset_uri=job.tuning_validation_uri or job.validation_uri,
            display_name=job.display_name or job.job_id,
            hyper_parameters=job.hyper_parameters,
            labels=job.labels,
        )

    def _record_running(self, job_id: str, remote: RemoteJob) -> None:
        now = self._clock()

        def run(job: Job) -> Job | None:
            if job.state is not JobState.SUBMITTING:
                return None
            return job.moved_to(
                JobState.RUNNING,
                now,
                "submitted to Vertex AI",
                vertex_job_name=remote.name,
                vertex_state=remote.state,
                started_at=remote.start_time or remote.create_time or now,
            )

        result = self._store.update(job_id, run)
        if result is None:
            return
        if result.written:
            self._lifecycle.emit(result.job, "submitted", vertex_state=remote.state)
            return
        recorded = result.job.vertex_job_name
        if recorded and recorded != remote.name:
            # A slow submitter lost its lease and another one created the job too: undo ours.
            logs.error("cancelling a second Vertex job for one attempt", vertex_job=remote.name, recorded=recorded)
            try:
                self._tuning.cancel(remote.name)
            except (TuningUnavailable, TuningRejected) as exc:
                logs.error("could not cancel the second Vertex job", vertex_job=remote.name, error=str(exc))

    def _requeue(self, job_id: str, reason: str, *, release: bool = False, **changes: object) -> None:
        """Back to the queue (keeping its place), or CANCELLED if an operator asked for that meanwhile."""
        now = self._clock()

        def requeue(job: Job) -> Job | None:
            if job.state is not JobState.SUBMITTING or job.cancel_requested:
                return None
            return job.moved_to(JobState.QUEUED, now, reason, submit_claimed_at=None, **changes)

        result = self._store.update(job_id, requeue)
        if result is not None and not result.written and result.job.state is JobState.SUBMITTING:
            self._finish(job_id, JobState.CANCELLED, "cancelled by an operator before submission")
            return
        if release:
            self._ledger.release(job_id)

    def _finish(self, job_id: str, state: JobState, reason: str, error: dict[str, str] | None = None) -> None:
        """End a SUBMITTING job that never got a Vertex job: record, free the slot, announce."""
        now = self._clock()

        def end(job: Job) -> Job | None:
            if job.state is not JobState.SUBMITTING:
                return None
            return job.moved_to(state, now, reason, error=error, ended_at=now)

        result = self._store.update(job_id, end)
        if result is None or not result.written:
            return
        if state is JobState.FAILED:
            logs.error("job finished", state=state.value, error=reason)
        else:
            logs.info("job finished", state=state.value, reason=reason)
        self._ledger.release(job_id)
        self._completions.publish(result.job)

    def _sweep_slots(self) -> None:
        """Free slots whose holder no longer needs one; resume submissions whose lease expired or whose
        retry is due; re-queue claims that never got a slot."""
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
            expired = now - claimed_at >= lease
            retry_due = job.submit_retry_at is not None and now >= job.submit_retry_at
            if not (expired or (retry_due and job.job_id in holders)):
                continue
            with logs.log_context(job_id=job.job_id):
                if job.job_id in holders:
                    # A submission that died or failed unclearly: finish it (find first, so never twice).
                    refreshed = replace(job, submit_claimed_at=now, submit_retry_at=None)
                    if self._store.replace(refreshed, stuck.version):
                        logs.warning("resuming a submission", lease_expired=expired, submit_errors=job.submit_errors)
                        self._submit(job.job_id)
                else:
                    logs.warning("re-queueing a claim that never got a slot")
                    self._requeue(job.job_id, "submission lease expired")
