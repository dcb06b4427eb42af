"""Slot accounting for the global concurrent tuning-job quota.

One small document lists the jobs holding a slot. Every change is a compare-and-set on its
update time, so concurrent dispatchers never together hold more slots than the quota; this
works on Firestore and on its emulator, whose transactions time out under contention.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime

from shared.clock import Clock
from shared.errors import TransientError
from shared.ports import JobStore, SlotTable

MAX_CAS_ATTEMPTS = 50


class SlotContention(TransientError):
    """Too many concurrent writers on the slot table; the delivery is retried."""


class SlotLedger:
    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()

    def holders(self) -> dict[str, datetime]:
        return dict(self._store.read_slots().value.holders)

    def _update(self, change: Callable[[dict[str, datetime]], bool]) -> bool:
        """Apply `change` to the holders with compare-and-set; `change` returns False to give up."""
        for attempt in range(MAX_CAS_ATTEMPTS):
            current = self._store.read_slots()
            holders = dict(current.value.holders)
            if not change(holders):
                return False
            if self._store.write_slots(SlotTable(holders=holders), current.version):
                return True
            # Lost the race: back off a little, with jitter, and read again.
            self._sleep(min(0.2, 0.005 * (2 ** min(attempt, 6))) * self._rng.random())
        raise SlotContention("could not update the slot table: too much contention")

    def claim(self, job_id: str, quota: int) -> bool:
        """Take a slot for the job; False when all slots are held.

        A claim by a job already holding a slot still rewrites the table, which moves its
        version: a concurrent sweep that read the old table then fails its conditional write.
        """
        now = self._clock()

        def add(holders: dict[str, datetime]) -> bool:
            if job_id not in holders and len(holders) >= quota:
                return False
            holders[job_id] = now
            return True

        return self._update(add)

    def release(self, job_id: str) -> bool:
        def remove(holders: dict[str, datetime]) -> bool:
            return holders.pop(job_id, None) is not None

        return self._update(remove)

    def sweep(self, is_stale: Callable[[str], bool]) -> list[str]:
        """Free the slots of holders that no longer hold one (e.g. after a crash)."""
        freed: list[str] = []

        def drop(holders: dict[str, datetime]) -> bool:
            freed.clear()
            freed.extend(job_id for job_id in holders if is_stale(job_id))
            for job_id in freed:
                del holders[job_id]
            return bool(freed)

        return freed if self._update(drop) else []
