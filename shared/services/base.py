"""What the dispatcher, the poller and the operator commands share: the ports they act through."""

from __future__ import annotations

from dataclasses import dataclass

from shared.clock import Clock
from shared.config import Settings
from shared.ports import JobStore, Publisher, TuningService
from shared.services.completions import CompletionNotifier
from shared.services.lifecycle import LifecycleEvents
from shared.services.slots import SlotLedger


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
        self._store = context.store
        self._tuning = context.tuning
        self._ledger = context.ledger
        self._completions = context.completions
        self._publisher = context.publisher
        self._lifecycle = context.lifecycle
        self._settings = context.settings
        self._clock = context.clock
