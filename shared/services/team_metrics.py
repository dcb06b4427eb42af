"""Per-team gauges for the fairness dashboard and alerts: one "team gauges" log line per team, each poll tick.

Cloud Logging keeps each line's fields under ``jsonPayload``; the log-based metrics of
``deploy/terraform/modules/tunedrop/fairness_monitoring.tf`` extract ``queued``, ``head_wait_seconds`` and
``spend_usd`` from these lines, labelled by ``team`` (tests/unit/deploy/test_fairness_monitoring.py keeps the
field names here and the Terraform's extractors equal). Fields of a line:

* ``team``: the team (jobs from before teams existed count as the default team);
* ``queued``: its QUEUED jobs (a count aggregation, not a read of each);
* ``running``: the slots it holds now (the slot table);
* ``head_wait_seconds``: how long its next job (the head of its queue) has waited for a slot; 0 with nothing
  queued, and 0 while its team's budget holds it back (it waits by design then: the over-budget alert covers it,
  and the waiting alert would fire for the rest of the month);
* ``over_budget``: whether its next job waits for the budget (``waiting_reason``), not for a slot;
* ``spend_usd``: what this month (UTC) counts against it so far: estimates of running jobs, costs of ended ones;
* ``budget_usd``: its policy's monthly budget, or null without one.

Which teams: those with queued work (``JobStore.queue_heads``, at most ``fairness.MAX_TEAMS``) and those holding
a slot (the slot table's holders; a holder claimed without its team on the slot table is looked up in the
fairness document). A team with neither gets no line, so a chart or an alert sees no data rather than zeros.

Reads per tick, bounded whatever the queue holds: the slot table (1); the fairness document (1, only when a
holder's team is not on the slot table); the queue heads (one per team with queued work, at most MAX_TEAMS, and
1 when there is none); then for each reported team (at most MAX_TEAMS) its spend document for the month (1)
and, for a team with queued work, one count aggregation (billed one read per 1,000 queued jobs). An idle
deployment pays 2 reads a tick; twenty busy teams about 62.

Telemetry never stops the poll: a failure is logged as a warning and the gauges are read again next tick.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from shared import logs
from shared.clock import Clock
from shared.jobs import Job
from shared.policy import Policies
from shared.ports import JobStore
from shared.services.budgets import OVER_BUDGET
from shared.services.fairness import MAX_TEAMS


@dataclass(frozen=True)
class TeamGauge:
    """One team's figures at one tick (see the module docstring for each field)."""

    team: str
    queued: int
    running: int
    head_wait_seconds: float
    over_budget: bool
    spend_usd: float
    budget_usd: float | None


class TeamGauges:
    """Reads the per-team figures and logs them, once per poll tick."""

    def __init__(self, store: JobStore, policies: Policies, clock: Clock, default_team: str) -> None:
        self._store = store
        self._policies = policies
        self._clock = clock
        self._default_team = default_team

    def emit(self) -> int:
        """Log one "team gauges" line per team with work; how many were logged. Never raises."""
        try:
            gauges = self.read()
        except Exception as exc:  # telemetry: the tick's real work is done whatever happens here
            logs.warning("team gauges could not be read; they are read again next tick", error=str(exc))
            return 0
        for gauge in gauges:
            # The message is written out: the monitoring tests find the lines a log filter names by their literal.
            logs.info(
                "team gauges",
                team=gauge.team,
                queued=gauge.queued,
                running=gauge.running,
                head_wait_seconds=gauge.head_wait_seconds,
                over_budget=gauge.over_budget,
                spend_usd=gauge.spend_usd,
                budget_usd=gauge.budget_usd,
            )
        return len(gauges)

    def read(self) -> list[TeamGauge]:
        """The figures of every team with queued work or a slot, in team order, at most MAX_TEAMS teams."""
        now = self._clock()
        heads = {head.value.team: head.value for head in self._store.queue_heads(limit=MAX_TEAMS)}
        running = self._running_per_team()
        teams = sorted(set(heads) | set(running))[:MAX_TEAMS]
        month = f"{now:%Y-%m}"
        return [self._gauge(team, heads.get(team), running[team], now, month) for team in teams]

    def _running_per_team(self) -> Counter[str]:
        slots = self._store.read_slots().value
        teams = dict(slots.teams)
        unknown = [holder for holder in slots.holders if holder not in teams]
        if unknown:
            # Claimed without its team on the slot table: the fair share recorded it when it saw the claim.
            recorded = self._store.read_fairness().value.running
            teams.update({holder: recorded[holder].team for holder in unknown if holder in recorded})
        return Counter(teams[holder] for holder in slots.holders if holder in teams)

    def _gauge(self, team: str, head: Job | None, running: int, now: datetime, month: str) -> TeamGauge:
        held_back = head is not None and head.waiting_reason == OVER_BUDGET
        waited = 0.0 if head is None or held_back else (now - (head.enqueued_at or head.created_at)).total_seconds()
        return TeamGauge(
            # A job from before teams has team "": people know it as the default team's. Its spend and policy
            # stay keyed as the budgets keep them (by the job's own team).
            team=team or self._default_team,
            queued=0 if head is None else self._store.count_queued_in_team(team),
            running=running,
            head_wait_seconds=round(max(0.0, waited), 3),
            over_budget=held_back,
            spend_usd=round(self._store.read_spend(team, month).value.total_usd, 6),
            budget_usd=self._policies.for_team(team).monthly_budget_usd,
        )
