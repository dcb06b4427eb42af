"""Poller: read active jobs' states from Vertex AI, record them, announce outcomes, free slots."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from shared import logs
from shared.errors import TransientError
from shared.jobs import Job, JobState
from shared.policy import Policies
from shared.ports import (
    RemoteJob,
    RemoteState,
    TuningJobMissing,
    TuningRejected,
    TuningUnavailable,
    Versioned,
)
from shared.services.base import JobContext, JobService
from shared.services.reconcile import Reconciler
from shared.services.retirement import RetirementWatch
from shared.services.team_metrics import TeamGauges

POLL_CONCURRENCY = 8
STALLED_PER_TICK = 100


class Poller(JobService):
    def __init__(
        self, context: JobContext, reconciler: Reconciler | None = None, policies: Policies | None = None
    ) -> None:
        super().__init__(context)
        self.retirement = RetirementWatch(context)
        self.reconciler = reconciler
        # The policies give the gauges each team's budget; without them every team has none.
        self.team_gauges = TeamGauges(
            context.store, policies or Policies(), context.clock, context.settings.default_team
        )

    def poll(self) -> list[str]:
        """One tick; returns the ids of jobs that reached a terminal state."""
        self._completions.flush_pending()
        self._settle_stalled_validations()
        # The side checks never stop the tick: the jobs are polled whatever they do, and each runs again next tick.
        try:
            self.retirement.daily()
        except Exception as exc:
            logs.error("model lifecycle check failed; it runs again on the next tick", error=str(exc))
        if self.reconciler is not None and self._settings.reconcile_page:
            try:
                self.reconciler.tick()
            except Exception as exc:
                logs.error("looking for uploads without a job failed; it runs again on the next tick", error=str(exc))
        active = self._store.in_states([JobState.RUNNING])
        finished: list[str] = []
        errors: list[Exception] = []
        if active:
            listed = self._listed_active()
            with ThreadPoolExecutor(max_workers=min(POLL_CONCURRENCY, len(active))) as pool:
                # Every job is polled even when another one fails (Executor.map would cancel the rest).
                for future in [pool.submit(self._poll_one, job, listed) for job in active]:
                    try:
                        job_id = future.result()
                    except Exception as exc:
                        errors.append(exc)
                        continue
                    if job_id:
                        finished.append(job_id)
        if finished:
            self._publisher.publish(
                self._settings.dispatch_topic,
                json.dumps({"reason": "slot freed", "job_ids": finished}).encode(),
                {},
            )
        # Per-team queue depth, wait and spend for the dashboard and alerts; it never raises.
        self.team_gauges.emit()
        if errors:
            raise errors[0]
        return finished

    def _settle_stalled_validations(self) -> None:
        """A job VALIDATING for longer than any redelivery can last will never finish by itself (each delivery
        crashed, or the notification was dead-lettered): it ends FAILED `validation_incomplete`, announced."""
        now = self._clock()
        bound = timedelta(seconds=self._settings.validation_timeout_seconds)
        for current in self._store.in_states([JobState.VALIDATING], limit=STALLED_PER_TICK):
            job = current.value
            if now - job.updated_at < bound:
                continue
            error = {
                "code": "validation_incomplete",
                "message": f"Validation did not finish within {bound}: every attempt failed or was lost. Upload the "
                "file again; if it fails the same way, tell the Tunedrop operators (the upload function's logs "
                "name the error).",
            }
            with logs.log_context(job_id=job.job_id):
                try:
                    failed = self._store.swap(current, _ended(JobState.FAILED, now, "validation never finished", error))
                    if failed is None:
                        continue  # validation finished meanwhile
                    logs.error("job finished", state=JobState.FAILED.value, code="validation_incomplete")
                    self._effects.settle(failed)
                except Exception as exc:  # one job's trouble never stops the tick; it is tried again next tick
                    logs.error("could not settle a stalled validation", error=str(exc))

    def _listed_active(self) -> Mapping[str, RemoteJob] | None:
        """Every active Vertex job by name, from one ListTuningJobs per quota region (the dispatcher's list);
        None when it cannot be read (each job is then read on its own)."""
        try:
            return {remote.name: remote for remote in self._tuning.active_jobs()}
        except (TransientError, TuningRejected) as exc:
            # Unavailable, rate-limited, or refused in one of the quota regions: the jobs are still polled.
            logs.warning("could not list active tuning jobs; reading each job instead", error=str(exc))
            return None

    def _poll_one(self, current: Versioned[Job], listed: Mapping[str, RemoteJob] | None = None) -> str | None:
        """Record what Vertex AI says of one RUNNING job. `listed`: the active jobs this tick's list returned; a
        job it holds is answered by it, and only a job it does not hold (ended since, or in no listed region) is
        read with GetTuningJob, so calls per tick stay flat as jobs grow and an end is still seen this tick."""
        job = current.value
        with logs.log_context(job_id=job.job_id):
            try:
                remote = (listed or {}).get(job.vertex_job_name) or self._tuning.get(job.vertex_job_name)
            except TuningUnavailable as exc:
                logs.warning("could not read the tuning job; will try next tick", error=str(exc))
                return None
            except TuningJobMissing as exc:
                # The Vertex job is gone: the job can never finish, so it fails (and frees its slot).
                return self._finish_missing(current, str(exc))
            except TuningRejected as exc:
                # Not this job's problem alone to stop the tick: the other jobs are polled on.
                logs.error("Vertex AI refuses to read the tuning job", error=str(exc), vertex_job=job.vertex_job_name)
                return None
            outcome = remote.terminal_state
            if outcome is None and job.cancel_requested and remote.state != RemoteState.CANCELLING:
                # Asked for while the job was being submitted: cancel it now that it runs.
                try:
                    self._tuning.cancel(remote.name)
                    logs.info("cancelled on Vertex AI as an operator asked", vertex_job=remote.name)
                except (TuningUnavailable, TuningRejected) as exc:
                    logs.warning("cancel on Vertex AI failed; will try next tick", error=str(exc))
            if outcome is None:
                self._record_progress(current, remote)
                return None
            reason = f"Vertex AI reports {remote.state}"
            results = _results(remote)
            finished = self._store.swap(
                current, lambda running: running.moved_to(outcome, self._clock(), reason, **results)
            )
            if finished is None:
                return None  # another poller recorded it first and publishes its event
            logs.info("job finished", state=outcome.value, vertex_job=remote.name)
            self._effects.settle(finished)
            return job.job_id

    def _finish_missing(self, current: Versioned[Job], message: str) -> str | None:
        job = current.value
        now = self._clock()
        error = {"code": "VERTEX_JOB_NOT_FOUND", "message": f"{job.vertex_job_name} no longer exists: {message}"}
        failed = self._store.swap(current, _ended(JobState.FAILED, now, "its Vertex AI job no longer exists", error))
        if failed is None:
            return None
        logs.error("job finished", state=JobState.FAILED.value, vertex_job=job.vertex_job_name, error=message)
        self._effects.settle(failed)
        return job.job_id

    def _record_progress(self, current: Versioned[Job], remote: RemoteJob) -> None:
        """Note a new Vertex state, and warn once when a job waits or runs far too long."""
        job = current.value
        warning, since = self._overdue(job, remote)
        new_warning = bool(warning) and warning not in job.warnings
        if remote.state == job.vertex_state and not new_warning:
            return
        changes: dict[str, object] = {"vertex_state": remote.state}
        if remote.start_time and not job.started_at:
            changes["started_at"] = remote.start_time
        if new_warning:
            changes["warnings"] = [*job.warnings, warning]
        updated = self._store.swap(current, lambda read: read.with_fields(**changes))
        if updated is None:
            return  # another poller recorded it; it emits the events
        if remote.state == RemoteState.RUNNING and job.vertex_state != remote.state:
            self._lifecycle.emit(updated, "running", vertex_state=remote.state)
        if new_warning:
            logs.warning("job stuck", warning=warning, vertex_state=remote.state, since=since.isoformat())
            self._lifecycle.emit(updated, "stuck", reason=warning, vertex_state=remote.state)

    def _overdue(self, job: Job, remote: RemoteJob) -> tuple[str, datetime]:
        """The warning a job has earned by running (or waiting to run) far too long ("" when none), and since
        when it has been running (or waiting)."""
        now = self._clock()
        if remote.state == RemoteState.RUNNING:
            since = remote.start_time or job.started_at or job.updated_at
            late = (now - since).total_seconds() > self._settings.max_running_seconds
            return ("running_too_long" if late else ""), since
        since = remote.create_time or job.started_at or job.updated_at
        late = (now - since).total_seconds() > self._settings.stuck_seconds
        return ("stuck_pending" if late else ""), since


def _ended(state: JobState, now: datetime, reason: str, error: dict[str, str]) -> Callable[[Job], Job]:
    """The change that ends a job without a result from Vertex AI."""
    return lambda job: job.moved_to(state, now, reason, error=error, ended_at=now)


def _results(remote: RemoteJob) -> dict[str, Any]:
    results: dict[str, Any] = {
        "vertex_state": remote.state,
        "ended_at": remote.end_time,
        "tuned_model": remote.tuned_model,
        "endpoint": remote.endpoint,
    }
    if remote.start_time:
        results["started_at"] = remote.start_time
    if remote.error_code or remote.error_message:
        results["error"] = {"code": remote.error_code, "message": remote.error_message}
    if remote.stats:
        results["tuning_stats"] = dict(remote.stats)
    if remote.checkpoints:
        results["checkpoints"] = [dict(c) for c in remote.checkpoints]
    if remote.evaluations:
        results["evaluations"] = [dict(e) for e in remote.evaluations]
    if remote.experiment:
        results["experiment"] = remote.experiment
    return results
