"""The daily model-lifecycle check, run from the poll tick.

Base models retire on dates Google announces, and every model tuned from one stops serving with it.
Once a day this check (1) ends QUEUED jobs whose base model closed for tuning, so they never wait for a
slot they cannot use, and (2) announces each succeeded job's tuned model as retiring once at each
threshold of TUNEDROP_RETIREMENT_NOTICE_DAYS, recording the threshold on the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared import logs
from shared.jobs import Job, JobState
from shared.ports import Versioned
from shared.services.base import JobService
from shared.validation.registry import ModelSpec, ModelStatus, registry

CHECKED_MARKER = "model-lifecycle-checked-on"
MAX_IN_VALUES = 30  # Firestore's limit on the values of one 'in' filter


@dataclass(frozen=True)
class RetirementCheck:
    """What one daily check did."""

    ran: bool
    failed_queued: tuple[str, ...] = ()
    notified: tuple[tuple[str, int], ...] = ()  # (job id, threshold in days)


class RetirementWatch(JobService):
    def daily(self) -> RetirementCheck:
        """Run the check unless it already ran today (UTC); the day is marked only once it finished, so a
        check cut short runs again on the next tick (recording each notice on its job keeps them single)."""
        today = self._clock().date()
        if self._store.read_marker(CHECKED_MARKER) == today.isoformat():
            return RetirementCheck(ran=False)
        failed = self._fail_closed_queued(today)
        notified = self._announce_retiring(today)
        self._store.write_marker(CHECKED_MARKER, today.isoformat())
        if failed or notified:
            logs.info("model lifecycle check", failed_queued=list(failed), retirement_notices=len(notified))
        return RetirementCheck(ran=True, failed_queued=failed, notified=notified)

    def _fail_closed_queued(self, today: date) -> tuple[str, ...]:
        closed = [spec for spec in registry().models.values() if spec.status(today) is not ModelStatus.AVAILABLE]
        failed: list[str] = []
        for names in _name_chunks(closed):
            for current in self._store.on_models(JobState.QUEUED, names):
                if self._fail_if_model_closed(current):
                    failed.append(current.value.job_id)
        return tuple(failed)

    def _announce_retiring(self, today: date) -> tuple[tuple[str, int], ...]:
        thresholds = self._settings.retirement_notice_days
        if not thresholds:
            return ()
        retiring = [
            spec
            for spec in registry().models.values()
            if (days := spec.lifecycle.days_until_retirement(today)) is not None and 0 < days <= max(thresholds)
        ]
        notified: list[tuple[str, int]] = []
        for names in _name_chunks(retiring):
            for current in self._store.on_models(JobState.SUCCEEDED, names):
                notice = self._notice(current, today)
                if notice is not None:
                    notified.append(notice)
        return tuple(notified)

    def _notice(self, current: Versioned[Job], today: date) -> tuple[str, int] | None:
        """Announce and record the thresholds this job's tuned model has passed; (job id, tightest one)."""
        job = current.value
        spec = registry().resolve(job.base_model)
        days = spec.lifecycle.days_until_retirement(today) if spec else None
        if spec is None or days is None:
            return None
        due = sorted(t for t in self._settings.retirement_notice_days if days <= t and t not in job.retirement_notices)
        if not due:
            return None
        now = self._clock()
        notices = sorted({*job.retirement_notices, *due}, reverse=True)
        # Published first, recorded after: a failed publish is tried again the next day, and a publish whose
        # record is lost repeats with the same ce-id, which subscribers de-duplicate on.
        if not self._emit(job.with_fields(retirement_notices=notices, updated_at=now), spec, days, due[0]):
            return None

        def record(stored: Job) -> Job | None:
            if set(due) <= set(stored.retirement_notices):
                return None
            merged = sorted({*stored.retirement_notices, *due}, reverse=True)
            return stored.with_fields(retirement_notices=merged, updated_at=now)

        self._store.update(job.job_id, record)
        return job.job_id, due[0]

    def _emit(self, job: Job, spec: ModelSpec, days: int, threshold: int) -> bool:
        life = spec.lifecycle
        successor = registry().successor(spec, self._clock().date())
        replacement = successor.name if successor else None
        with logs.log_context(job_id=job.job_id):
            logs.warning(
                "tuned model retires with its base model",
                base_model=spec.name,
                retires=str(life.retires),
                days_left=days,
                tuned_model=job.tuned_model,
            )
        return self._lifecycle.emit(
            job,
            "model_retiring",
            reason=f"{spec.name} retires on {life.retires}, in {days} days",
            event_key=f"model_retiring/{threshold}",
            base_model=spec.name,
            tuned_model=job.tuned_model or None,
            endpoint=job.endpoint or None,
            retires=str(life.retires),
            days_left=days,
            threshold_days=threshold,
            replacement=replacement,
            retune_command=f"tunedrop retune {job.job_id}"
            + (f" --model {replacement}" if replacement else "")
            + ' --reason "its base model retires"',
        )


def _name_chunks(specs: list[ModelSpec]) -> list[list[str]]:
    """The names jobs may carry for these models (ids and aliases), in chunks one 'in' filter takes."""
    names = sorted({name for spec in specs for name in (spec.name, *spec.aliases)})
    return [names[i : i + MAX_IN_VALUES] for i in range(0, len(names), MAX_IN_VALUES)]
