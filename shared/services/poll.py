"""Poller: read active jobs' states from Vertex AI, record them, announce outcomes, free slots."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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

WAITING_FOR_QUOTA = RemoteJob.WAITING_FOR_QUOTA
# Vertex AI states of a job accepted but not started: a job in one of them, with no start_time, while another job of
# the project has started, is taken to wait for quota (see _detail_state).
NOT_STARTED = frozenset({RemoteState.PENDING, RemoteState.QUEUED})


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
            started = _started_names(listed)
            with ThreadPoolExecutor(max_workers=min(POLL_CONCURRENCY, len(active))) as pool:
                # Every job is polled even when another one fails (Executor.map would cancel the rest).
                for future in [pool.submit(self._poll_one, job, listed, started) for job in active]:
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

    def _poll_one(
        self,
        current: Versioned[Job],
        listed: Mapping[str, RemoteJob] | None = None,
        started: frozenset[str] | None = None,
    ) -> str | None:
        """Record what Vertex AI says of one RUNNING job. `listed`: the active jobs this tick's list returned; a
        job it holds is answered by it, and only a job it does not hold (ended since, or in no listed region) is
        read with GetTuningJob, so calls per tick stay flat as jobs grow and an end is still seen this tick.
        `started`: the names of the listed jobs that have started (None without a list: nothing is inferred)."""
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
                self._record_progress(current, remote, started)
                return None
            reason = f"Vertex AI reports {remote.state}"
            now = self._clock()
            finished = self._store.swap(
                current, lambda running: running.moved_to(outcome, now, reason, **_results(remote, running, now))
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

    def _record_progress(
        self, current: Versioned[Job], remote: RemoteJob, started: frozenset[str] | None = None
    ) -> None:
        """Note a new Vertex state or detail state (and when tuning started), and warn once when a job waits or
        runs far too long. A tick that learns nothing new writes nothing."""
        job = current.value
        now = self._clock()
        seen = _observe(job, remote, started, now, self._settings.quota)
        warning, since = self._overdue(job, remote, seen, now)
        new_warning = bool(warning) and warning not in job.warnings
        changes = seen.changes(job, remote)
        if not changes and not new_warning:
            return
        if new_warning:
            changes["warnings"] = [*job.warnings, warning]
        updated = self._store.swap(current, lambda read: read.with_fields(**changes))
        if updated is None:
            return  # another poller recorded it; it emits the events
        if "detail_state" in changes:
            inferred = bool(seen.detail) and not remote.detail_state
            logs.info("vertex detail state", detail_state=seen.detail or "unknown", inferred=inferred)
        if seen.tuning(remote) and not _was_tuning(job):
            self._lifecycle.emit(updated, "running", vertex_state=remote.state)
        if new_warning:
            logs.warning("job stuck", warning=warning, vertex_state=remote.state, since=since.isoformat())
            self._lifecycle.emit(updated, "stuck", reason=warning, vertex_state=remote.state)

    def _overdue(self, job: Job, remote: RemoteJob, seen: Observation, now: datetime) -> tuple[str, datetime]:
        """The warning a job has earned by running (or waiting to run) far too long ("" when none), and since
        when it has been running (or waiting). Time waiting for quota never counts."""
        if seen.waiting:
            return "", seen.detail_since or now
        if remote.state == RemoteState.RUNNING:
            since = seen.started_at or remote.start_time or job.updated_at
            late = (now - since).total_seconds() > self._settings.max_running_seconds
            return ("running_too_long" if late else ""), since
        since = remote.create_time or job.started_at or job.updated_at
        if seen.detail_since and seen.detail_since > since:
            # Its detail state changed since it was created: on a job not running the only one recorded is
            # WAITING_FOR_QUOTA (the service documents the others while it runs), so this is when it stopped
            # waiting, and the stuck clock starts there.
            since = seen.detail_since
        late = (now - since).total_seconds() > self._settings.stuck_seconds
        return ("stuck_pending" if late else ""), since


@dataclass(frozen=True)
class Observation:
    """What one tick learns of a running job beyond its Vertex AI state: its detail state (the service's, or
    inferred), since when, and when its tuning started."""

    detail: str
    detail_since: datetime | None
    started_at: datetime | None

    @property
    def waiting(self) -> bool:
        return self.detail == WAITING_FOR_QUOTA

    def tuning(self, remote: RemoteJob) -> bool:
        """Running and past waiting for quota: "running" for events, timings and warnings."""
        return remote.state == RemoteState.RUNNING and not self.waiting

    def changes(self, job: Job, remote: RemoteJob) -> dict[str, object]:
        """The job's fields this observation changes (none: nothing to write)."""
        changes: dict[str, object] = {}
        if remote.state != job.vertex_state:
            changes["vertex_state"] = remote.state
        if self.detail != job.detail_state:
            changes.update(detail_state=self.detail, detail_since=self.detail_since)
        if self.started_at != job.started_at:
            changes["started_at"] = self.started_at
        # Checkpoints and their evaluation while the job tunes (how one knows a checkpoint is good before the end):
        # written when Vertex AI gives new ones, which is once a checkpoint, not once a tick.
        checkpoints = [dict(c) for c in remote.checkpoints]
        if checkpoints and checkpoints != job.checkpoints:
            changes["checkpoints"] = checkpoints
        evaluations = [dict(e) for e in remote.evaluations]
        if evaluations and evaluations != job.evaluations:
            changes["evaluations"] = evaluations
        return changes


def _started_names(listed: Mapping[str, RemoteJob] | None) -> frozenset[str] | None:
    """The listed jobs that have started (RUNNING with a start_time); None when there is no list."""
    if listed is None:
        return None
    return frozenset(
        name for name, remote in listed.items() if remote.state == RemoteState.RUNNING and remote.start_time
    )


def _detail_state(remote: RemoteJob, started: frozenset[str] | None, quota: int) -> str:
    """The detail state to record: the service's when it gives one; else WAITING_FOR_QUOTA inferred for a job
    accepted but not started while other jobs of the project that have started fill the quota (the list covers
    every quota region, and the quota is global); else "" (unknown). A job pending while the quota has room is
    not waiting for it: it may be stuck, and the stuck warning is for that.

    Inferred because aiplatform_v1 2.7 cannot carry the service's detail state (documented only in the Gen AI SDKs,
    "while the overall JobState is running": googleapis.github.io/js-genai/release_docs/enums/types.TuningJobState
    .html, read 2026-11-30), and a job Vertex AI accepts beyond the concurrent-job quota waits, not started, behind
    the ones that run (the emulator's wait mode). Without this tick's list (None) nothing is inferred: a wait
    inferred earlier ends there as far as Tunedrop can tell, and the stuck clock runs from then (as it did before
    detail states; the list is back next tick)."""
    if remote.detail_state:
        return remote.detail_state
    not_started = remote.state in NOT_STARTED and remote.start_time is None
    if not_started and started is not None and len(started - {remote.name}) >= quota:
        return WAITING_FOR_QUOTA
    return ""


def inferred_wait(job: Job) -> bool:
    """The job's WAITING_FOR_QUOTA is Tunedrop's inference (see _detail_state): on a job accepted but not started,
    as the service documents its own detail state only while the job is running."""
    return job.detail_state == WAITING_FOR_QUOTA and job.vertex_state in NOT_STARTED


def _was_tuning(job: Job) -> bool:
    """The job was last seen running past waiting for quota."""
    return job.vertex_state == RemoteState.RUNNING and job.detail_state != WAITING_FOR_QUOTA


def _observe(job: Job, remote: RemoteJob, started: frozenset[str] | None, now: datetime, quota: int) -> Observation:
    detail = _detail_state(remote, started, quota)
    since = job.detail_since if detail == job.detail_state else now
    seen = Observation(detail, since, job.started_at)
    if not seen.tuning(remote):
        return seen
    if job.vertex_state == RemoteState.RUNNING and job.detail_state == WAITING_FOR_QUOTA:
        # Past waiting for quota, first seen now: Vertex AI's start_time ("the first time entered the
        # JOB_STATE_RUNNING state", aiplatform_v1 TuningJob) would count the wait.
        return Observation(detail, since, now)
    if job.vertex_state != RemoteState.RUNNING:
        # First seen running: since Vertex AI's start_time (the submitter may have recorded only the create time).
        return Observation(detail, since, remote.start_time or job.started_at)
    return seen


def _ended(state: JobState, now: datetime, reason: str, error: dict[str, str]) -> Callable[[Job], Job]:
    """The change that ends a job without a result from Vertex AI."""
    return lambda job: job.moved_to(state, now, reason, error=error, ended_at=now)


def _results(remote: RemoteJob, job: Job, now: datetime) -> dict[str, Any]:
    """The fields an ended Vertex job gives the job."""
    results: dict[str, Any] = {
        "vertex_state": remote.state,
        "ended_at": remote.end_time,
        "tuned_model": remote.tuned_model,
        "endpoint": remote.endpoint,
    }
    if remote.detail_state and remote.detail_state != job.detail_state:
        # None given (as ever over aiplatform_v1 2.7, and the service documents it only while the job runs): the
        # last one recorded while the job was active stays, for `tunedrop job` and the completion event.
        results.update(detail_state=remote.detail_state, detail_since=now)
    if _was_tuning(job) and job.started_at:
        # Seen running past any wait for quota: its start is recorded already (Vertex's would count the wait).
        results["started_at"] = job.started_at
    elif remote.start_time:
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
