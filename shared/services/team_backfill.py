"""Jobs recorded before teams existed get the default team, so the fair share sees them.

Two kinds reach a release with teams: documents without a `team` field at all (Firestore leaves a document out
of every query ordered or filtered by a field it lacks, so such a QUEUED job would never be dispatched), and
documents whose team is "" (the default team's name before TUNEDROP_DEFAULT_TEAM; the fair share would treat
them as a team of their own). Both are rewritten with the default team, by compare-and-set:
- once, for every queued, submitting or running job (read page by page on state only, which finds documents
  without the field), remembered by a marker, so later passes cost one marker read (and an instance that saw it, none);
- and whenever a queue head of team "" shows up (it sorts first among the heads the fair share reads anyway),
  for that queue: a job recorded with "" by an instance of an older release during a rolling update.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared import logs
from shared.jobs import Job, JobState
from shared.ports import JobStore, Versioned
from shared.services.fairness import FairShare

MARKER = "teams-backfilled-v1"
# Not VALIDATING: such a job is its upload delivery's, which writes the whole document (team included) when it
# records the outcome; a rewrite meanwhile would fail that delivery's compare-and-set and force a redelivery, and
# would give an upload in a folder that is no team's (team "", about to be REJECTED) the default team.
ACTIVE_STATES = (JobState.QUEUED, JobState.SUBMITTING, JobState.RUNNING)
MAX_BACKFILLED = 5000  # jobs of one queue of team "" rewritten in one pass; more follow in the next passes


class TeamBackfill:
    def __init__(self, store: JobStore, default_team: str) -> None:
        self._store = store
        self._default_team = default_team
        self._done = False  # the marker was seen by this instance: no read any more

    def legacy_jobs(self) -> int:
        """Give every active job without a team the default team, once (all of them, page by page); returns how
        many were rewritten. The marker is written once the whole scan is done, so a pass that fails part way is
        started again by the next."""
        if self._done:
            return 0
        if self._store.read_marker(MARKER) == "done":
            self._done = True
            return 0
        rewritten = self._rewrite(self._store.each_in_states(ACTIVE_STATES))
        self._store.write_marker(MARKER, "done")
        self._done = True
        return rewritten

    def unnamed_queue(self, share: FairShare) -> bool:
        """When the fair share found a queue of team "", give its jobs the default team; True when it did."""
        if "" not in share.queues or not self._default_team:
            return False
        return self._rewrite(self._store.queued_in_team("", limit=MAX_BACKFILLED)) > 0

    def _rewrite(self, found: Iterable[Versioned[Job]]) -> int:
        rewritten = 0
        for current in found:
            if current.value.team or not self._default_team:
                continue
            if self._store.swap(current, lambda job: job.with_fields(team=self._default_team)) is not None:
                rewritten += 1
        if rewritten:
            logs.info("jobs recorded without a team given the default team", jobs=rewritten, team=self._default_team)
        return rewritten
