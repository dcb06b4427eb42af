"""Slot accounting for the global concurrent tuning-job quota.

One small document lists the jobs holding a slot. Every change is a compare-and-set on its
update time, so concurrent dispatchers never together hold more slots than the quota; this
works on Firestore and on its emulator, whose transactions time out under contention.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from shared.clock import Clock
from shared.errors import TransientError
from shared.ports import JobStore, SlotTable, contention_pause

MAX_CAS_ATTEMPTS = 50


class SlotContention(TransientError):
    """Too many concurrent writers on the slot table; the delivery is retried."""


class Claim(StrEnum):
    """What a slot claim came to."""

    TAKEN = "taken"  # the job holds a slot (or held one already)
    QUOTA_FULL = "quota_full"  # `limit` slots are held
    TEAM_FULL = "team_full"  # the job's team holds its cap of slots


@dataclass
class _Draft:
    """A mutable copy of the slot table that one compare-and-set attempt edits."""

    holders: dict[str, datetime]
    backoff_until: datetime | None
    backoff_level: int
    teams: dict[str, str]

    def table(self) -> SlotTable:
        teams = {job_id: team for job_id, team in self.teams.items() if job_id in self.holders}
        return SlotTable(dict(self.holders), self.backoff_until, self.backoff_level, teams)

    def held_by(self, team: str) -> int:
        return sum(1 for job_id in self.holders if self.teams.get(job_id) == team)


@dataclass(frozen=True)
class Backoff:
    """How long dispatch pauses after Vertex AI says the quota is full: base * 2**(n-1), capped."""

    base: timedelta = field(default=timedelta(seconds=5))
    cap: timedelta = field(default=timedelta(minutes=5))

    def pause(self, level: int) -> timedelta:
        return min(self.cap, self.base * int(2 ** max(0, level - 1)))


class SlotLedger:
    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._backoff = backoff or Backoff()

    def table(self) -> SlotTable:
        return self._store.read_slots().value

    def holders(self) -> dict[str, datetime]:
        return dict(self.table().holders)

    def _update(self, change: Callable[[_Draft], bool]) -> bool:
        """Apply `change` to the table with compare-and-set; `change` returns False to give up."""
        for attempt in range(MAX_CAS_ATTEMPTS):
            current = self._store.read_slots()
            table = current.value
            draft = _Draft(dict(table.holders), table.backoff_until, table.backoff_level, dict(table.teams))
            if not change(draft):
                return False
            if self._store.write_slots(draft.table(), current.version):
                return True
            # Lost the race: back off a little, with jitter, and read again.
            self._sleep(contention_pause(attempt, self._rng))
        raise SlotContention("could not update the slot table: too much contention")

    def claim(self, job_id: str, limit: int) -> bool:
        """Take a slot for the job, of no team's cap; False when `limit` slots are held already."""
        return self.claim_for_team(job_id, limit, team="", team_cap=None) is Claim.TAKEN

    def claim_for_team(self, job_id: str, limit: int, *, team: str, team_cap: int | None) -> Claim:
        """Take a slot for a job of `team`, which may hold at most `team_cap` (None: no cap but the quota).
        Both bounds are checked in the same compare-and-set, so concurrent dispatchers exceed neither.

        A claim by a job already holding a slot still rewrites the table, which moves its
        version: a concurrent sweep that read the old table then fails its conditional write.
        """
        now = self._clock()
        refused: list[Claim] = []

        def add(draft: _Draft) -> bool:
            refused.clear()
            if job_id not in draft.holders:
                if len(draft.holders) >= limit:
                    refused.append(Claim.QUOTA_FULL)
                elif team_cap is not None and draft.held_by(team) >= team_cap:
                    refused.append(Claim.TEAM_FULL)
                if refused:
                    return False
            draft.holders[job_id] = now
            if team:
                draft.teams[job_id] = team
            return True

        return Claim.TAKEN if self._update(add) else refused[0]

    def release(self, job_id: str) -> bool:
        def remove(draft: _Draft) -> bool:
            return draft.holders.pop(job_id, None) is not None

        return self._update(remove)

    def sweep(self, is_stale: Callable[[str], bool]) -> list[str]:
        """Free the slots of holders that no longer hold one (e.g. after a crash)."""
        freed: list[str] = []

        def drop(draft: _Draft) -> bool:
            freed.clear()
            freed.extend(job_id for job_id in draft.holders if is_stale(job_id))
            for job_id in freed:
                del draft.holders[job_id]
            return bool(freed)

        return freed if self._update(drop) else []

    def back_off(self) -> datetime:
        """Record one more RESOURCE_EXHAUSTED: pause dispatch, longer each time; returns until when."""
        until: list[datetime] = []

        def pause(draft: _Draft) -> bool:
            draft.backoff_level += 1
            draft.backoff_until = self._clock() + self._backoff.pause(draft.backoff_level)
            until[:] = [draft.backoff_until]
            return True

        self._update(pause)
        return until[0]

    def clear_backoff(self) -> None:
        def reset(draft: _Draft) -> bool:
            if draft.backoff_level == 0 and draft.backoff_until is None:
                return False
            draft.backoff_level, draft.backoff_until = 0, None
            return True

        self._update(reset)

    def paused_until(self, table: SlotTable | None = None) -> datetime | None:
        """Until when dispatch pauses after RESOURCE_EXHAUSTED (None: it does not); reads the table
        unless the caller has just read it."""
        until = (table or self.table()).backoff_until
        return until if until is not None and until > self._clock() else None
