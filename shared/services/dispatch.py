"""Dispatcher: submit queued jobs, never beyond the quota, never twice: the team next in the fair share
(shared/services/fairness.py) first, and inside a team by priority then first in first out; never beyond a
team's slot cap or its monthly budget (shared/services/budgets.py)."""

from __future__ import annotations

from shared import logs
from shared.jobs import Job, JobState, TransitionRefused
from shared.policy import Policies
from shared.ports import TuningUnavailable, Versioned
from shared.services.base import JobContext, JobService
from shared.services.budgets import OVER_BUDGET, BudgetBook, OverBudget, month_of
from shared.services.fairness import FairShare, FairShareBook
from shared.services.recovery import Recovery
from shared.services.slots import Claim
from shared.services.submission import MAX_SUBMIT_ERRORS, Outcome, Submitter
from shared.services.team_backfill import TeamBackfill

__all__ = ["MAX_SUBMIT_ERRORS", "Dispatcher", "Outcome"]


class Dispatcher(JobService):
    def __init__(self, context: JobContext, policies: Policies | None = None) -> None:
        """`policies`: the teams' weights, slot caps and budgets (None: the settings' team policies)."""
        super().__init__(context)
        self._policies = context.settings.team_policies if policies is None else policies
        self.submitter = Submitter(context)
        self.recovery = Recovery(context, self.submitter)
        self.fair_share = FairShareBook(context.store, self._policies, context.clock)
        self.budgets = BudgetBook(context.store, self._policies, context.clock, context.settings.tuning_prices)
        self.backfill = TeamBackfill(context.store, context.settings.default_team)

    def dispatch(self) -> list[str]:
        """Submit as many queued jobs as there are free slots; returns the submitted job ids."""
        self.recovery.sweep()
        self.backfill.legacy_jobs()
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
        if self.backfill.unnamed_queue(share):
            share = self.fair_share.plan(holders)  # the default team's queue has its team now
        try:
            self._fill(share, limit, submitted)
        finally:
            self.fair_share.save(share, self._ledger.holders)
        return submitted

    def _fill(self, share: FairShare, limit: int, submitted: list[str]) -> None:
        """Take the fair share's next job while slots are free; stop when Vertex AI or the slots say so."""
        month = month_of(share.now)
        while True:
            free = limit - len(self._ledger.holders())
            team = share.next_team() if free > 0 else None
            if team is None:
                return
            candidate = share.pop(team, refill=free)
            outcome = self._take(candidate, limit, month)
            if outcome in (Outcome.FULL, Outcome.STOP):
                return
            if outcome is Outcome.TEAM_FULL:
                share.pass_over(team)
            elif outcome is Outcome.WAITING:
                share.pass_over(team, held_back=True)
            elif outcome is Outcome.SUBMITTED:
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

    def _take(self, candidate: Versioned[Job], limit: int, month: str) -> Outcome:
        """Check the budget, claim the job, then a slot, reserve its cost, then submit.

        The reservation comes last before the submission: a reservation is then only ever held by a job that
        holds a slot, so another dispatcher's budget check never counts a claim that is about to be undone."""
        job = candidate.value
        if self._fail_if_model_closed(candidate):
            return Outcome.FAILED
        over = self.budgets.check(job, month) if self.budgets.budget(job.team) is not None else None
        if over is not None:
            return self._over_budget(candidate, over)
        now = self._clock()

        def claim(queued: Job) -> Job:
            return queued.moved_to(
                JobState.SUBMITTING, now, "slot free", submit_claimed_at=now, budget_month=month, waiting_reason=""
            )

        # The job first: once it is SUBMITTING no other dispatcher can take it.
        try:
            claimed = self._store.swap(candidate, claim)
        except TransitionRefused:
            return Outcome.LOST
        if claimed is None:
            return Outcome.LOST
        if job.budget_month and job.budget_month != month:
            self.budgets.give_back(job)  # a reservation of an earlier month its requeue could not give back
        slot = self._ledger.claim_for_team(
            job.job_id, limit, team=job.team, team_cap=self._policies.for_team(job.team).max_slots
        )
        if slot is Claim.QUOTA_FULL:
            self.submitter.requeue(job.job_id, "all slots taken by another dispatcher")
            return Outcome.FULL
        if slot is Claim.TEAM_FULL:
            self.submitter.requeue(job.job_id, "its team holds its cap of slots")
            return Outcome.TEAM_FULL
        if self.budgets.reserve(claimed, month) is not None:
            # Another dispatcher's reservation came first: the next pass records why it waits.
            self.submitter.requeue(job.job_id, "over its team's monthly budget", release=True)
            return Outcome.WAITING
        with logs.log_context(job_id=job.job_id):
            return self.submitter.submit(job.job_id)

    def _over_budget(self, candidate: Versioned[Job], over: OverBudget) -> Outcome:
        """The job would take its team past the month's budget: REJECTED when its policy says so, else it waits
        QUEUED with the reason (recorded, announced and logged once, when it starts waiting)."""
        now = self._clock()
        with logs.log_context(job_id=candidate.value.job_id):
            if self.budgets.rejects(over.team):
                message = f"{over.sentence()}: ask an operator to raise the budget, or upload again next month."
                error = {"code": f"policy_{OVER_BUDGET}", "message": message}

                def reject(queued: Job) -> Job:
                    return queued.moved_to(JobState.REJECTED, now, message, error=error, ended_at=now)

                rejected = self._store.swap(candidate, reject)
                if rejected is not None:
                    logs.warning("job rejected over budget", team=over.team, month=over.month)
                    self._effects.settle(rejected)
                return Outcome.FAILED  # ended without a Vertex job; the team's next job may fit
            if candidate.value.waiting_reason != OVER_BUDGET:
                waiting = self._store.swap(
                    candidate, lambda queued: queued.with_fields(waiting_reason=OVER_BUDGET, updated_at=now)
                )
                if waiting is not None:
                    logs.warning(
                        "team over budget",
                        team=over.team,
                        month=over.month,
                        spent_usd=round(over.spent_usd, 6),
                        estimate_usd=round(over.estimate_usd, 6),
                        budget_usd=over.budget_usd,
                    )
                    self._lifecycle.emit(
                        waiting,
                        "waiting",
                        reason=OVER_BUDGET,
                        event_key=f"waiting/{OVER_BUDGET}/{over.month}",
                        month=over.month,
                        spent_usd=over.spent_usd,
                        estimate_usd=over.estimate_usd,
                        budget_usd=over.budget_usd,
                    )
        return Outcome.WAITING
