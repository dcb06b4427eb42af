"""Fair share of the global quota among teams: which queued job the dispatcher takes next.

The rule: among teams with queued work and below their slot cap (``TeamPolicy.max_slots``), take the head
(highest priority, then oldest) of the team with the least *virtual time*, i.e. slot-seconds used divided by
the team's weight. A team's virtual time is what its ended slots were charged (kept in a small fairness
document) plus the seconds its running jobs have held their slots so far (from the slot table's claim times),
both divided by its weight. Priority therefore orders jobs only inside a team.

Why a separate document: the slot table is the hottest document (about a write a second at most); the
fairness document is written only when the dispatcher sees a slot taken or given back, or a team start or
stop having work, and never holds up a claim. It is rebuilt from the slot table on every pass, so a crash
between a submission and its write loses nothing: a holder it does not know yet is added with its claim time.
A slot given back is charged from its claim time to the job's end (or, without one, to the pass that notices
it), at least MIN_CHARGE_SECONDS so that jobs failing at once still cost.

Reads per pass: the fairness document, one queued job per team with queued work (JobStore.queue_heads, at most
MAX_TEAMS), and a picked team's next few jobs; never the whole queue. Concurrent dispatchers write the document
by compare-and-set, each re-applying its view of the slot table to what is stored, so a charge is made once.

Idle teams bank no credit: a team that starts having work again (queued or running after neither) has its
virtual time lifted to the least virtual time of the teams that had work already (start-time fair queuing).
A lead it built (its last job ran longer than its share) is kept: while it was idle the others caught up at
the rate the quota gives them, so after an idle time as long as its lead it starts level again. Had the lead
been forgiven, a team sending one job at a time would take a slot every time, far beyond its weight.
So a team arriving with one job after such an idle time starts just below the team next in line
(NEWCOMER_LEAD) and takes the next slot that frees, unless another newcomer came first.

Why nobody starves: a waiting team's virtual time does not move, while every job another team runs raises
that team's virtual time by at least MIN_CHARGE_SECONDS / weight (far more than NEWCOMER_LEAD); a team
arriving later starts no lower than just below the least of those with work, so it can go before a waiting
team once, and then is ahead of it until that team is served. So only finitely many jobs of finitely many
teams can go before the waiting team's head, whatever the weights (a weight-1 team among weight-10 teams waits at
most about ten of their jobs' worth of slot-time per slot). Jobs started outside Tunedrop are outside this:
they take slots of the quota first (see Dispatcher._slot_limit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from shared.clock import Clock
from shared.jobs import Job
from shared.policy import Policies
from shared.ports import FairShareState, JobStore, RunningSlot, TeamUsage, Versioned
from shared.services.slots import MAX_CAS_ATTEMPTS, SlotContention

MIN_CHARGE_SECONDS = 60.0
NEWCOMER_LEAD = 1e-3  # virtual seconds: far below any charge, so it only breaks ties
MAX_TEAMS = 1000  # teams with queued work read per pass (one document each)


def _seconds(later: datetime, earlier: datetime) -> float:
    return max(0.0, (later - earlier).total_seconds())


def _held(now: datetime, since: datetime) -> float:
    """What a running job counts so far: at least the minimum charge its slot will cost when it ends, so a team
    that has just started jobs is not the least served at once again (which sent freed slots to one team in
    runs when jobs are short)."""
    return max(MIN_CHARGE_SECONDS, _seconds(now, since))


@dataclass
class FairShare:
    """The fairness state of one dispatch pass: the teams with work, their heads and what they used."""

    store: JobStore
    policies: Policies
    now: datetime
    state: FairShareState = field(default_factory=FairShareState)
    queues: dict[str, list[Versioned[Job]]] = field(default_factory=dict)
    exhausted: set[str] = field(default_factory=set)  # teams whose whole queue is in `queues`
    passed_over: set[str] = field(default_factory=set)  # teams that take no more slots in this pass
    held_back: set[str] = field(default_factory=set)  # of those, teams whose budget holds their queue back

    def weight(self, team: str) -> float:
        return float(max(1, self.policies.for_team(team).weight))

    def running(self, team: str) -> int:
        return sum(1 for slot in self.state.running.values() if slot.team == team)

    def virtual_time(self, team: str) -> float:
        """Slot-seconds used per unit of weight: ended slots as charged, running ones up to now."""
        held = sum(_held(self.now, slot.since) for slot in self.state.running.values() if slot.team == team)
        return self.state.teams.get(team, TeamUsage()).vtime + held / self.weight(team)

    def _below_cap(self, team: str) -> bool:
        cap = self.policies.for_team(team).max_slots
        return cap is None or self.running(team) < cap

    def next_team(self) -> str | None:
        """The team whose head goes next: least virtual time, then fewest slots for its weight, then the
        head that waited longest; None when no team below its cap has queued work."""
        eligible = [
            team
            for team, queue in self.queues.items()
            if queue and team not in self.passed_over and self._below_cap(team)
        ]
        if not eligible:
            return None

        def key(team: str) -> tuple[float, float, datetime, str]:
            head = self.queues[team][0].value
            waited_since = head.enqueued_at or head.created_at
            return (self.virtual_time(team), self.running(team) / self.weight(team), waited_since, team)

        return min(eligible, key=key)

    def pop(self, team: str, refill: int) -> Versioned[Job]:
        """The team's head, taken off its queue (read further, `refill` jobs, once only its head is known)."""
        queue = self.queues[team]
        if len(queue) == 1 and team not in self.exhausted:
            more = self.store.queued_in_team(team, limit=max(2, refill + 1))
            if len(more) < max(2, refill + 1):
                self.exhausted.add(team)
            seen = queue[0].value.job_id
            queue.extend(found for found in more if found.value.job_id != seen)
        return queue.pop(0)

    def pass_over(self, team: str, *, held_back: bool = False) -> None:
        """The team takes no more slots in this pass: it holds its cap (another dispatcher's claim, unseen
        here) or, `held_back`, its monthly budget holds its queue back. A held-back team does not count as
        having queued work, so it banks no fair-share credit while it waits."""
        self.passed_over.add(team)
        if held_back:
            self.held_back.add(team)

    @property
    def teams_with_queued_work(self) -> set[str]:
        return set(self.queues) - self.held_back

    def started(self, job: Job) -> None:
        """The job holds a slot now: its team is charged from now on."""
        running = dict(self.state.running)
        running[job.job_id] = RunningSlot(job.team, self.now)
        self.state = replace(self.state, running=running)


class FairShareBook:
    """Reads and writes the fairness document around a dispatch pass (compare-and-set, like the slot table)."""

    def __init__(self, store: JobStore, policies: Policies | None, clock: Clock) -> None:
        self._store = store
        self._policies = policies or Policies()
        self._clock = clock

    def plan(self, holders: Mapping[str, datetime]) -> FairShare:
        """The pass's view: the current document brought up to date with the slot table and the queue."""
        heads = self._store.queue_heads(limit=MAX_TEAMS)
        share = FairShare(self._store, self._policies, self._clock())
        share.queues = {head.value.team: [head] for head in heads}
        share.state = self.reconcile(self._store.read_fairness().value, holders, set(share.queues), share.now, {})
        return share

    def save(self, share: FairShare, read_holders: Callable[[], Mapping[str, datetime]]) -> None:
        """Write what the pass saw (slots taken and given back, teams starting or stopping having work).

        The slot holders are read in each compare-and-set attempt, after the fairness document: a slot another
        dispatcher took and recorded there is then among them, so it is never charged as given back."""
        started = {job_id: slot.team for job_id, slot in share.state.running.items()}
        queued = share.teams_with_queued_work
        self._update(lambda state: self.reconcile(state, read_holders(), queued, share.now, started))

    def _update(self, change: Callable[[FairShareState], FairShareState]) -> None:
        for _ in range(MAX_CAS_ATTEMPTS):
            current = self._store.read_fairness()
            changed = change(current.value)
            if changed == current.value or self._store.write_fairness(changed, current.version):
                return
        raise SlotContention("could not update the fairness document: too much contention")

    def reconcile(
        self,
        state: FairShareState,
        holders: Mapping[str, datetime],
        queued_teams: set[str],
        now: datetime,
        known_teams: Mapping[str, str],
    ) -> FairShareState:
        """`state` made to agree with the slot table: ended slots charged, new holders added, teams that start
        having work lifted to the least virtual time of those that had work already."""
        teams = dict(state.teams)
        running: dict[str, RunningSlot] = {}
        for job_id, slot in state.running.items():
            if job_id in holders:
                running[job_id] = slot
                continue
            usage = teams.get(slot.team, TeamUsage())
            charged = max(MIN_CHARGE_SECONDS, _seconds(self._ended_at(job_id, now), slot.since))
            teams[slot.team] = replace(usage, vtime=usage.vtime + charged / self._weight(slot.team))
        for job_id, since in holders.items():
            if job_id not in running:
                team = self._team_of(job_id, known_teams)
                if team is not None:
                    running[job_id] = RunningSlot(team, since)
        active = queued_teams | {slot.team for slot in running.values()}
        return FairShareState(self._lift(teams, active, self._running_so_far(running, now)), running)

    def _weight(self, team: str) -> float:
        return float(max(1, self._policies.for_team(team).weight))

    def _running_so_far(self, running: Mapping[str, RunningSlot], now: datetime) -> dict[str, float]:
        """What each team's running jobs add to its virtual time up to now."""
        so_far: dict[str, float] = {}
        for slot in running.values():
            so_far[slot.team] = so_far.get(slot.team, 0.0) + _held(now, slot.since) / self._weight(slot.team)
        return so_far

    def _ended_at(self, job_id: str, now: datetime) -> datetime:
        """When the job gave its slot back: its end, or (still ending, or gone) now."""
        current = self._store.get(job_id)
        ended = None if current is None else current.value.ended_at
        return min(ended, now) if ended is not None else now

    def _team_of(self, job_id: str, known_teams: Mapping[str, str]) -> str | None:
        if job_id in known_teams:
            return known_teams[job_id]
        current = self._store.get(job_id)
        return None if current is None else current.value.team

    @staticmethod
    def _lift(teams: dict[str, TeamUsage], active: set[str], held: Mapping[str, float]) -> dict[str, TeamUsage]:
        """Mark which teams have work; a team that starts having work is lifted to the least virtual time of
        the teams that had work already (or of the newcomers, when none had): idle time banks no credit. A team
        that got more than its share (a long job) keeps that lead until the others catch up, so submitting one
        job at a time cannot take more than its weight."""
        # `held`: what the running jobs add to each team's virtual time so far.
        had_work = [
            usage.vtime + held.get(team, 0.0) for team, usage in teams.items() if usage.backlogged and team in active
        ]
        newcomers = [team for team in active if not teams.get(team, TeamUsage()).backlogged]
        floor = min(had_work or [teams.get(team, TeamUsage()).vtime for team in newcomers], default=0.0)
        lifted = {team: replace(usage, backlogged=team in active) for team, usage in teams.items()}
        for team in newcomers:
            # Just below the floor: the newcomer goes before the team it is level with (see the module docstring).
            start = floor - NEWCOMER_LEAD
            lifted[team] = TeamUsage(vtime=max(start, teams.get(team, TeamUsage()).vtime), backlogged=True)
        return lifted


@dataclass(frozen=True)
class TeamShare:
    """One row of `tunedrop quota`: a team's slots now, its queue, its share of the quota's slots, and its spend
    this month against its budget."""

    team: str
    weight: int
    max_slots: int | None
    running: int
    queued: int
    share: float  # slots its weight entitles it to among the teams with work now (0 without work)
    spend_usd: float  # counted this month: estimates of running jobs, actual costs of ended ones
    budget_usd: float | None


def team_shares(
    book: FairShareBook, holders: Mapping[str, datetime], slots: int, spent: Callable[[str], float]
) -> list[TeamShare]:
    """Every team with work or a fair-share record, in name order; `slots` is the quota less others' jobs;
    `spent(team)` is its spend this month."""
    share = book.plan(holders)
    teams = sorted(set(share.state.teams) | set(share.queues) | {s.team for s in share.state.running.values()})
    queued = {team: share.store.count_queued_in_team(team) for team in share.queues}
    with_work = [team for team in teams if queued.get(team) or share.running(team)]
    total_weight = sum(share.weight(team) for team in with_work)
    rows = []
    for team in teams:
        policy = share.policies.for_team(team)
        entitled = slots * share.weight(team) / total_weight if team in with_work else 0.0
        rows.append(
            TeamShare(
                team,
                policy.weight,
                policy.max_slots,
                share.running(team),
                queued.get(team, 0),
                entitled,
                spent(team),
                policy.monthly_budget_usd,
            )
        )
    return rows
