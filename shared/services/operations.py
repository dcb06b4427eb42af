"""What operators do by hand: cancel a job, retry a failed one, see the quota.

Each action is recorded on the job's history with who asked and why (an OperatorRequest): the `tunedrop` command
always gives one, and refuses to act when it cannot name the caller (shared/adapters/identity.py).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from shared import logs
from shared.errors import JobNotFound, NotAllowed, TransientError
from shared.jobs import Job, JobState
from shared.ports import TuningUnavailable
from shared.services.base import JobService
from shared.validation.registry import ModelStatus, get_model

# Long enough for a sentence or two; the history entry holds it with its preamble within its 500 characters.
MAX_REASON_LENGTH: Final = 300


@dataclass(frozen=True)
class OperatorRequest:
    """Who asks for an operator action, and why: the history entry the action leaves names both."""

    actor: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "actor", self.actor.strip())
        object.__setattr__(self, "reason", self.reason.strip())
        if not self.actor:
            raise NotAllowed("an operator action needs the name of who asks for it")
        problem = reason_problem(self.reason)
        if problem:
            raise NotAllowed(problem)


def reason_problem(reason: str) -> str:
    """Why a reason cannot be recorded ("" when it can): one line of 1..MAX_REASON_LENGTH characters."""
    text = reason.strip()
    if not text:
        return "say why (--reason): operator actions are recorded with their reason"
    if len(text) > MAX_REASON_LENGTH:
        return f"the reason has {len(text)} characters; at most {MAX_REASON_LENGTH} are kept"
    if any(unicodedata.category(character).startswith("C") for character in text):
        return "the reason must be one line of printable text"
    return ""


def _because(what: str, request: OperatorRequest | None) -> str:
    """A history entry's reason: what happened, then the operator's reason."""
    return f"{what}: {request.reason}" if request else what


def _actor(request: OperatorRequest | None) -> str:
    return request.actor if request else ""


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
    def cancel(self, job_id: str, request: OperatorRequest | None = None) -> Job:
        """Queued (or still validating): dequeued and reported CANCELLED now. Submitting or running:
        cancelled on Vertex AI; the poller records CANCELLED once Vertex AI reports it, naming who asked and why
        (kept on the job meanwhile). `request`: who asks and why (the command always gives it)."""
        job = self._existing(job_id)
        if job.state.terminal:
            raise NotAllowed(f"job {job_id} is {job.state.value} already; only active jobs can be cancelled")
        # What Vertex AI must be told happens first, from what was read; the record then follows what is stored.
        if job.state is JobState.QUEUED:
            self._cancel_orphan(job)
        elif job.state is JobState.RUNNING and job.vertex_job_name:
            try:
                self._tuning.cancel(job.vertex_job_name)
            except TuningUnavailable as exc:
                raise TransientError(f"Vertex AI did not take the cancel, try again: {exc}") from exc
        now = self._clock()

        def cancel(current: Job) -> Job | None:
            if current.state in (JobState.QUEUED, JobState.VALIDATING):
                reason = _because("cancelled by an operator", request)
                return current.moved_to(JobState.CANCELLED, now, reason, actor=_actor(request), ended_at=now)
            if current.state.holds_slot and not current.cancel_requested:
                return current.with_fields(
                    cancel_requested=True,
                    cancel_requested_by=_actor(request),
                    cancel_reason=request.reason if request else "",
                    updated_at=now,
                )
            return None

        result = self._store.update(job_id, cancel)
        if result is None:
            raise JobNotFound(f"no job {job_id}")
        if result.job.state is JobState.CANCELLED and result.written:
            logs.info("job cancelled before submission", job_id=job_id)
            self._effects.settle(result.job)
        elif result.job.state.holds_slot:
            logs.info("cancel requested", job_id=job_id, vertex_job=result.job.vertex_job_name)
        elif not result.written:
            raise NotAllowed(f"job {job_id} is {result.job.state.value} already; only active jobs can be cancelled")
        return result.job

    def _existing(self, job_id: str) -> Job:
        current = self._store.get(job_id)
        if current is None:
            raise JobNotFound(f"no job {job_id}")
        return current.value

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

    def retry(self, job_id: str, request: OperatorRequest | None = None) -> Job:
        """A FAILED job goes back to the queue as a new attempt (a new Vertex job, a new event id); the history
        entry names `request`'s operator and reason."""
        job = self._existing(job_id)
        if job.state is not JobState.FAILED:
            raise NotAllowed(f"job {job_id} is {job.state.value}; only FAILED jobs can be retried")
        if not (job.validation or {}).get("valid"):
            # Never validated (validation_incomplete, dataset_changed before it was kept): nothing to tune.
            raise NotAllowed(
                f"job {job_id} never passed validation, so there is nothing validated to tune: "
                "upload the dataset again."
            )
        today = self._clock().date()
        spec = get_model(job.base_model)
        if spec is not None and spec.status(today) is not ModelStatus.AVAILABLE:
            raise NotAllowed(
                f"job {job_id} cannot be retried: {spec.closed_message(today)} "
                f"`tunedrop retune {job_id} --reason TEXT` tunes its datasets on another model."
            )
        if job.completion_pending:
            self._completions.publish(job)  # the failure is announced before the retry starts
        now = self._clock()

        def again(current: Job) -> Job | None:
            if current.state is not JobState.FAILED or current.completion_pending:
                return None
            reason = _because(f"retried by an operator as attempt {current.attempt + 1}", request)
            return current.new_attempt(now, reason, actor=_actor(request))

        result = self._store.update(job_id, again)
        if result is None:
            raise JobNotFound(f"no job {job_id}")
        if not result.written:
            raise TransientError(f"job {job_id} changed meanwhile ({result.job.state.value}); try again")
        self._effects.settle(result.job)
        self._publisher.publish(
            self._settings.dispatch_topic, json.dumps({"reason": "retried", "job_id": job_id}).encode(), {}
        )
        return result.job

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
