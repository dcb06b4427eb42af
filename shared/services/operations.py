"""What operators do by hand: cancel a job, retry a failed one, see the quota."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from shared import logs
from shared.errors import JobNotFound, NotAllowed, TransientError
from shared.jobs import Job, JobState
from shared.ports import TuningUnavailable
from shared.services.base import JobService
from shared.validation.registry import ModelStatus, get_model


@dataclass(frozen=True)
class QuotaStatus:
    limit: int
    held: list[str]  # Tunedrop jobs holding a slot
    foreign: list[str]  # active Vertex jobs Tunedrop holds no slot for
    queued: int
    paused_until: datetime | None

    @property
    def in_use(self) -> int:
        return len(self.held) + len(self.foreign)


class Operations(JobService):
    def cancel(self, job_id: str) -> Job:
        """Queued (or still validating): dequeued and reported CANCELLED now. Submitting or running:
        cancelled on Vertex AI; the poller records CANCELLED once Vertex AI reports it."""
        for _ in range(10):
            current = self._store.get(job_id)
            if current is None:
                raise JobNotFound(f"no job {job_id}")
            job = current.value
            now = self._clock()
            if job.state in (JobState.QUEUED, JobState.VALIDATING):
                if job.state is JobState.QUEUED:
                    self._cancel_orphan(job)
                cancelled = job.moved_to(JobState.CANCELLED, now, "cancelled by an operator", ended_at=now)
                if self._store.replace(cancelled, current.version):
                    logs.info("job cancelled before submission", job_id=job_id)
                    self._completions.publish(cancelled)
                    return cancelled
                continue
            if job.state in (JobState.SUBMITTING, JobState.RUNNING):
                if job.state is JobState.RUNNING and job.vertex_job_name:
                    try:
                        self._tuning.cancel(job.vertex_job_name)
                    except TuningUnavailable as exc:
                        raise TransientError(f"Vertex AI did not take the cancel, try again: {exc}") from exc
                flagged = replace(job, cancel_requested=True, updated_at=now)
                if self._store.replace(flagged, current.version):
                    logs.info("cancel requested", job_id=job_id, vertex_job=job.vertex_job_name)
                    return flagged
                continue
            raise NotAllowed(f"job {job_id} is {job.state.value} already; only active jobs can be cancelled")
        raise TransientError(f"job {job_id} kept changing; try again")

    def _cancel_orphan(self, job: Job) -> None:
        """A queued job may have a live Vertex job (a create answered unclearly, then re-queued):
        cancel it too, or it would train to the end unrecorded."""
        try:
            remote = self._tuning.find(job.job_id, job.attempt)
            if remote is not None and remote.terminal_state is None:
                self._tuning.cancel(remote.name)
                logs.info("cancelled the Vertex job of a queued job", job_id=job.job_id, vertex_job=remote.name)
        except TuningUnavailable as exc:
            raise TransientError(f"could not check Vertex AI for a job of {job.job_id}, try again: {exc}") from exc

    def retry(self, job_id: str) -> Job:
        """A FAILED job goes back to the queue as a new attempt (a new Vertex job, a new event id)."""
        for _ in range(10):
            current = self._store.get(job_id)
            if current is None:
                raise JobNotFound(f"no job {job_id}")
            job = current.value
            if job.state is not JobState.FAILED:
                raise NotAllowed(f"job {job_id} is {job.state.value}; only FAILED jobs can be retried")
            if not (job.validation or {}).get("valid"):
                # Never validated (validation_incomplete, dataset_changed before it was kept): nothing to tune.
                raise NotAllowed(
                    f"job {job_id} never passed validation, so there is nothing validated to tune: upload the "
                    "dataset again."
                )
            spec = get_model(job.base_model)
            if spec is not None and spec.status(self._clock().date()) is not ModelStatus.AVAILABLE:
                raise NotAllowed(
                    f"job {job_id} cannot be retried: {spec.closed_message(self._clock().date())} "
                    f"`tunedrop retune {job_id}` tunes its datasets on another model."
                )
            if job.completion_pending:
                self._completions.publish(job)  # the failure is announced before the retry starts
                continue
            now = self._clock()
            retried = job.moved_to(
                JobState.QUEUED,
                now,
                f"retried by an operator as attempt {job.attempt + 1}",
                attempt=job.attempt + 1,
                enqueued_at=now,
                vertex_job_name="",
                vertex_state="",
                submit_claimed_at=None,
                submit_errors=0,
                started_at=None,
                ended_at=None,
                tuned_model="",
                endpoint="",
                error=None,
                tuning_stats={},
                cancel_requested=False,
                completion_event_id="",
                checkpoints=[],
                warnings=[],
            )
            if self._store.replace(retried, current.version):
                self._lifecycle.emit(retried, "queued", reason="retried by an operator")
                self._publisher.publish(
                    self._settings.dispatch_topic, json.dumps({"reason": "retried", "job_id": job_id}).encode(), {}
                )
                return retried
        raise TransientError(f"job {job_id} kept changing; try again")

    def quota(self) -> QuotaStatus:
        holders = self._ledger.holders()
        active = self._tuning.active_jobs()
        return QuotaStatus(
            limit=self._settings.quota,
            held=sorted(holders),
            foreign=sorted(j.name for j in active if j.job_id not in holders),
            queued=self._store.count(JobState.QUEUED),
            paused_until=self._ledger.paused_until(),
        )
