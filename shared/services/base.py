"""What the dispatcher, the poller and the operator commands share: the ports they act through."""

from __future__ import annotations

from dataclasses import dataclass

from shared import logs
from shared.clock import Clock
from shared.config import Settings
from shared.jobs import Job, JobState
from shared.ports import JobStore, Publisher, TuningService, Versioned
from shared.services.budgets import BudgetBook
from shared.services.completions import CompletionNotifier
from shared.services.effects import JobEffects
from shared.services.lifecycle import LifecycleEvents
from shared.services.slots import SlotLedger
from shared.validation.registry import ModelStatus, get_model


@dataclass(frozen=True)
class JobContext:
    store: JobStore
    tuning: TuningService
    ledger: SlotLedger
    completions: CompletionNotifier
    publisher: Publisher
    lifecycle: LifecycleEvents
    settings: Settings
    clock: Clock


class JobService:
    def __init__(self, context: JobContext) -> None:
        self._context = context
        self._store = context.store
        self._tuning = context.tuning
        self._ledger = context.ledger
        self._completions = context.completions
        self._publisher = context.publisher
        self._lifecycle = context.lifecycle
        self._settings = context.settings
        self._clock = context.clock
        self._budgets = BudgetBook(
            context.store, context.settings.team_policies, context.clock, context.settings.tuning_prices
        )
        self._effects = JobEffects(context.ledger, context.completions, context.lifecycle, self._budgets)

    def _fail_if_model_closed(self, current: Versioned[Job]) -> bool:
        """A QUEUED job whose base model can no longer be tuned is never submitted: it ends FAILED with the
        model's code (model_tuning_closed or model_retired) and its completion event. True when it did."""
        job = current.value
        spec = get_model(job.base_model)
        now = self._clock()
        if job.state is not JobState.QUEUED or spec is None:
            return False
        status = spec.status(now.date())
        if status is ModelStatus.AVAILABLE:
            return False
        message = spec.closed_message(now.date())
        error = {"code": status.error_code, "message": message}

        def fail(queued: Job) -> Job:
            return queued.moved_to(
                JobState.FAILED, now, f"base model {spec.name}: {status.value}", error=error, ended_at=now
            )

        failed = self._store.swap(current, fail)
        if failed is None:
            return False  # moved meanwhile (cancelled, claimed): whoever moved it decides
        with logs.log_context(job_id=job.job_id):
            logs.error("job finished", state=JobState.FAILED.value, error=message, code=status.error_code)
        self._effects.settle(failed)
        return True
