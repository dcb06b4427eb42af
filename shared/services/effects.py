"""What a job's move implies, in one place.

Services move a job only with Job.moved_to, which records the move on the job itself (its latest history
entry, Job.latest_move). Once the store holds the moved job, JobEffects.settle reads it and does what the move
implies: a job that ended frees the slot it held and announces its completion (which also settles its cost
and emits the lifecycle "finished" step); a claim going back to the queue gives its budget reservation back;
some other moves are announced on the lifecycle topic. No service does these by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.jobs import Job, JobState
from shared.services.budgets import BudgetBook
from shared.services.completions import CompletionNotifier
from shared.services.lifecycle import LifecycleEvents
from shared.services.slots import SlotLedger


@dataclass(frozen=True)
class Announcement:
    """The lifecycle step a move is announced as."""

    kind: str
    reason: str = ""
    with_vertex_state: bool = False


# Moves announced on the lifecycle topic when they happen. A move that ends a job is announced by its
# completion instead; a claim going back to the queue (SUBMITTING -> QUEUED) is not announced.
ANNOUNCED: Mapping[tuple[JobState, JobState], Announcement] = {
    (JobState.VALIDATING, JobState.QUEUED): Announcement("queued", "validation passed"),
    (JobState.FAILED, JobState.QUEUED): Announcement("queued", "retried by an operator"),
    (JobState.SUBMITTING, JobState.RUNNING): Announcement("submitted", with_vertex_state=True),
}


class JobEffects:
    def __init__(
        self,
        ledger: SlotLedger,
        completions: CompletionNotifier,
        lifecycle: LifecycleEvents,
        budgets: BudgetBook | None = None,
    ) -> None:
        """`budgets`: where a claim going back to the queue gives its reservation back (only services that
        claim jobs need it)."""
        self._ledger = ledger
        self._completions = completions
        self._lifecycle = lifecycle
        self._budgets = budgets

    def settle(self, moved: Job) -> None:
        """Do what the job's latest move implies. Call it once, with the job the store now holds, right after
        the write that recorded the move (never after a write that only changed fields)."""
        source, _ = moved.latest_move
        if moved.state.terminal:
            if source is not None and source.holds_slot:
                self._ledger.release(moved.job_id)
            self._completions.publish(moved)
            return
        if (source, moved.state) == (JobState.SUBMITTING, JobState.QUEUED) and self._budgets is not None:
            self._budgets.give_back(moved)
        announcement = ANNOUNCED.get((source, moved.state)) if source is not None else None
        if announcement is None:
            return
        details = {"vertex_state": moved.vertex_state} if announcement.with_vertex_state else {}
        self._lifecycle.emit(moved, announcement.kind, reason=announcement.reason, **details)
