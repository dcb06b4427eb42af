"""Dispatcher: submit queued jobs, never beyond the quota, never twice: the team next in the fair share
(shared/services/fairness.py) first, and inside a team by priority then first in first out."""

from __future__ import annotations

from shared import logs
from shared.jobs import Job, JobState, TransitionRefused
from shared.policy import Policies
from shared.ports import TuningUnavailable, Versioned
from shared.services.base import JobContext, JobService
from shared.services.fairness import FairShare, FairShareBook
from shared.services.recovery import Recovery
from shared.services.submission import MAX_SUBMIT_ERRORS, Outcome, Submitter

__all__ = ["MAX_SUBMIT_ERRORS", "Dispatcher", "Outcome"]


class Dispatcher(JobService):
    def __init__(self, context: JobContext, policies: Policies | None = None) -> None:
        """`policies`: the teams' weights and slot caps (none: every team weight 1, no cap)."""
        super().__init__(context)
        self.submitter = Submitter(context)
        self.recovery = Recovery(context, self.submitter)
        self.fair_share = FairShareBook(context.store, policies, context.clock)

    def dispatch(self) -> list[str]:
        """Submit as many queued jobs as there are free slots; returns the submitted job ids."""
        self.recovery.sweep()
        table = self._ledger.table()  # read once: the backoff and the slot limit both come from it
        paused = self._ledger.paused_until(table)
        if paused is not None:
            logs.info("dispatch paused after RESOURCE_EXHAUSTED", until=paused.isoformat())
            return []
        if not self._store.queued(limit=1):
            return []  # nothing waits: no call to Vertex AI at all
        submitted: list[str] = []
        limit = self._slot_limit(set(table.holders), submitted)
        holders = self._ledger.holders()  # read again: _slot_limit may have adopted a job into a slot
        if len(holders) >= limit:
            return submitted  # no slot free: the fair share is not even read
        share = self.fair_share.plan(holders)
        try:
            self._fill(share, limit, submitted)
        finally:
            self.fair_share.save(share, self._ledger.holders)
        return submitted

    def _fill(self, share: FairShare, limit: int, submitted: list[str]) -> None:
        """Take the fair share's next job while slots are free; stop when Vertex AI or the slots say so."""
        while True:
            free = limit - len(self._ledger.holders())
            team = share.next_team() if free > 0 else None
            if team is None:
                return
            candidate = share.pop(team, refill=free)
            outcome = self._take(candidate, limit)
            if outcome in (Outcome.FULL, Outcome.STOP):
                return
            if outcome is Outcome.SUBMITTED:
                submitted.append(candidate.value.job_id)
                share.started(candidate.value)

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
            if self.recovery.adopt(job):
                adopted.append(job.job_id)
            else:
                foreign.append(job.name)
        if foreign:
            logs.info("active tuning jobs outside Tunedrop's slots take quota", jobs=foreign)
        return max(0, self._settings.quota - len(foreign))

    def _take(self, candidate: Versioned[Job], limit: int) -> Outcome:
        """Claim the job, then a slot, then submit."""
        job = candidate.value
        if self._fail_if_model_closed(candidate):
            return Outcome.FAILED
        now = self._clock()

        def claim(queued: Job) -> Job:
            return queued.moved_to(JobState.SUBMITTING, now, "slot free", submit_claimed_at=now)

        # The job first: once it is SUBMITTING no other dispatcher can take it.
        try:
            if self._store.swap(candidate, claim) is None:
                return Outcome.LOST
        except TransitionRefused:
            return Outcome.LOST
        if not self._ledger.claim(job.job_id, limit):
            self.submitter.requeue(job.job_id, "all slots taken by another dispatcher")
            return Outcome.FULL
        with logs.log_context(job_id=job.job_id):
            return self.submitter.submit(job.job_id)
