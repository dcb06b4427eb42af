"""Submitting one claimed job to Vertex AI, and the moves that follow: RUNNING, back to the queue, or ended."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from shared import logs
from shared.jobs import Job, JobState
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
    TEAM_FULL = "team_full"  # its team holds its cap of slots: pass the team over for the rest of this pass
    WAITING = "waiting"  # its team's monthly budget holds it back: pass the team over for the rest of this pass
    STOP = "stop"  # Vertex AI refused or did not answer: stop this pass, try again later
    FAILED = "failed"  # the job ended without a Vertex job (refused, its model closed): its slot is free again


def request_for(job: Job) -> TuningRequest:
    """The Vertex AI request of the job's current attempt."""
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
        description=job.description,
        export_last_checkpoint_only=job.export_last_checkpoint_only,
        service_account=job.service_account,
        encryption_key=job.encryption_key,
        pre_tuned_model=job.pre_tuned_model,
        pre_tuned_checkpoint=job.pre_tuned_checkpoint,
        evaluation=job.evaluation,
    )


class Submitter(JobService):
    def submit(self, job_id: str) -> Outcome:
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
        # Counted before Vertex AI is asked: the dispatcher reserved it already (then this is a read), but a
        # claim resumed after its lease was not.
        self._budgets.charge(job)
        try:
            remote = self._find_or_create(job)
        except QuotaExhausted as exc:
            until = self._ledger.back_off()
            logs.warning(
                "Vertex AI quota full; job goes back to the head of the queue",
                error=str(exc),
                paused_until=until.isoformat(),
            )
            self.requeue(job.job_id, "Vertex AI answered RESOURCE_EXHAUSTED", release=True)
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
            self.finish(job.job_id, JobState.FAILED, str(exc), {"code": "SUBMIT_REJECTED", "message": str(exc)})
            return Outcome.FAILED
        if remote is None:
            return Outcome.FAILED
        self._ledger.clear_backoff()
        self.record_running(job.job_id, remote)
        return Outcome.SUBMITTED

    def _find_or_create(self, job: Job) -> RemoteJob | None:
        """The attempt's Vertex job, found (an earlier try went through) or created; None when the job ended
        instead (cancelled before submission, or Vertex AI kept failing to create it)."""
        remote = self._tuning.find(job.job_id, job.attempt)
        if remote is not None:
            logs.info("tuning job found from an earlier attempt", vertex_job=remote.name)
            return remote
        if job.cancel_requested:
            self.finish(job.job_id, JobState.CANCELLED, "cancelled by an operator before submission")
            return None
        if job.submit_errors >= MAX_SUBMIT_ERRORS:
            # Vertex AI answered the find: nothing was created, and it kept failing to create.
            self.finish(
                job.job_id,
                JobState.FAILED,
                "Vertex AI kept failing to create the job",
                {"code": "SUBMIT_UNAVAILABLE", "message": job.last_submit_error or "unavailable"},
            )
            return None
        remote = self._tuning.create(request_for(job))
        # team and waited_seconds feed the per-team wait-time metric (deploy/terraform/modules/tunedrop).
        waited = (self._clock() - (job.enqueued_at or job.created_at)).total_seconds()
        logs.info(
            "tuning job created",
            vertex_job=remote.name,
            base_model=job.base_model,
            team=job.team,
            waited_seconds=round(max(0.0, waited), 3),
        )
        return remote

    def _note_submit_error(self, current: Versioned[Job], errors: int, message: str) -> None:
        """Count an unclear failure on the claim; the recovery sweep schedules the next try from it."""
        now = self._clock()

        def note(job: Job) -> Job:
            pause = min(timedelta(minutes=5), timedelta(seconds=5 * 2 ** (errors - 1)))
            return job.with_fields(
                submit_errors=errors, last_submit_error=message[:500], submit_retry_at=now + pause, updated_at=now
            )

        if self._store.swap(current, note) is None:
            # Moved meanwhile (another dispatcher resumed it, an operator cancelled it): that write decides.
            logs.info("submit error not noted: the job changed meanwhile", submit_errors=errors)

    def record_running(self, job_id: str, remote: RemoteJob) -> None:
        """Record the job RUNNING on `remote`; a second Vertex job for the same attempt is cancelled."""
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
                # None until Vertex AI starts it: time held PENDING (waiting for quota) is not running.
                started_at=remote.start_time,
            )

        result = self._store.update(job_id, run)
        if result is None:
            return
        if result.written:
            self._effects.settle(result.job)
            return
        recorded = result.job.vertex_job_name
        if recorded and recorded != remote.name:
            # A slow submitter lost its lease and another one created the job too: undo ours.
            logs.error("cancelling a second Vertex job for one attempt", vertex_job=remote.name, recorded=recorded)
            try:
                self._tuning.cancel(remote.name)
            except (TuningUnavailable, TuningRejected) as exc:
                logs.error("could not cancel the second Vertex job", vertex_job=remote.name, error=str(exc))

    def requeue(self, job_id: str, reason: str, *, release: bool = False) -> None:
        """Back to the queue (keeping its place), or CANCELLED if an operator asked for that meanwhile.

        `release`: the claim held a slot. Only the caller knows: a claim that never got one must not free
        a slot that a dispatcher claiming the job again may hold by then."""
        now = self._clock()

        def requeue(job: Job) -> Job | None:
            if job.state is not JobState.SUBMITTING or job.cancel_requested:
                return None
            return job.moved_to(JobState.QUEUED, now, reason, submit_claimed_at=None)

        result = self._store.update(job_id, requeue)
        if result is not None and not result.written and result.job.state is JobState.SUBMITTING:
            self.finish(job_id, JobState.CANCELLED, "cancelled by an operator before submission")
            return
        if result is not None and result.written:
            self._effects.settle(result.job)
        if release:
            self._ledger.release(job_id)

    def finish(self, job_id: str, state: JobState, reason: str, error: dict[str, str] | None = None) -> None:
        """End a SUBMITTING job that never got a Vertex job: record it, then settle (free the slot, announce)."""
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
        self._effects.settle(result.job)
