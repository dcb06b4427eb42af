"""How the dispatcher recovers what a crash, a lost lease or an unclear answer left behind, before it
submits anything new: slots nobody needs, claims whose submitter died, Vertex jobs whose Tunedrop job went
back to the queue."""

from __future__ import annotations

from datetime import timedelta

from shared import logs
from shared.jobs import Job, JobState
from shared.ports import RemoteJob, Versioned
from shared.services.base import JobContext, JobService
from shared.services.budgets import month_of
from shared.services.submission import Submitter


class Recovery(JobService):
    def __init__(self, context: JobContext, submitter: Submitter) -> None:
        super().__init__(context)
        self._submitter = submitter

    def sweep(self) -> None:
        """Free slots whose holder no longer needs one; resume submissions whose lease expired or whose
        retry is due; re-queue claims that never got a slot."""
        freed = self._ledger.sweep(self._holds_no_slot)
        if freed:
            logs.info("freed slots of jobs that no longer hold one", job_ids=freed)
        holders = self._ledger.holders()
        for stuck in self._store.in_states([JobState.SUBMITTING]):
            job = stuck.value
            if not self._due(job, job.job_id in holders):
                continue
            with logs.log_context(job_id=job.job_id):
                if job.job_id in holders:
                    self._resume(stuck)
                else:
                    logs.warning("re-queueing a claim that never got a slot")
                    self._submitter.requeue(job.job_id, "submission lease expired")

    def _holds_no_slot(self, job_id: str) -> bool:
        current = self._store.get(job_id)
        return current is None or not current.value.state.holds_slot

    def _lease_expired(self, job: Job) -> bool:
        lease = timedelta(seconds=self._settings.submit_lease_seconds)
        return self._clock() - (job.submit_claimed_at or job.updated_at) >= lease

    def _due(self, job: Job, holds_slot: bool) -> bool:
        """A claim is looked at again once its lease expired, or (holding a slot) once its retry is due."""
        retry_due = job.submit_retry_at is not None and self._clock() >= job.submit_retry_at
        return self._lease_expired(job) or (retry_due and holds_slot)

    def _resume(self, stuck: Versioned[Job]) -> None:
        """A submission that died or failed unclearly: claim it afresh and finish it (find first, so never
        twice). Another dispatcher resuming it at the same time loses the claim and leaves it alone."""
        job = stuck.value
        expired = self._lease_expired(job)
        now = self._clock()

        def reclaim(claimed: Job) -> Job:
            return claimed.with_fields(submit_claimed_at=now, submit_retry_at=None)

        if self._store.swap(stuck, reclaim) is not None:
            logs.warning("resuming a submission", lease_expired=expired, submit_errors=job.submit_errors)
            self._submitter.submit(job.job_id)

    def adopt(self, remote: RemoteJob) -> bool:
        """Take back a live Vertex job whose Tunedrop job went back to the queue (say, the create answered
        UNAVAILABLE yet went through). True when it is ours again."""
        if not remote.job_id:
            return False
        current = self._store.get(remote.job_id)
        if current is None or current.value.state is not JobState.QUEUED:
            return False
        if remote.attempt != current.value.attempt:
            return False
        now = self._clock()

        def claim(queued: Job) -> Job:
            return queued.moved_to(
                JobState.SUBMITTING,
                now,
                "its Vertex job is running",
                submit_claimed_at=now,
                budget_month=month_of(now),
                waiting_reason="",
            )

        claimed = self._store.swap(current, claim)
        if claimed is None:
            return False
        # The job holds a Vertex slot already, so neither its slot nor its cost may be refused.
        self._ledger.claim_for_team(remote.job_id, len(self._ledger.holders()) + 1, team=claimed.team, team_cap=None)
        self._budgets.charge(claimed)
        with logs.log_context(job_id=remote.job_id):
            logs.info("adopting a running Vertex job of a queued job", vertex_job=remote.name)
            self._submitter.record_running(remote.job_id, remote)
        return True
