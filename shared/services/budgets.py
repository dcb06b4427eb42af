"""Monthly budgets per team: what a job costs counts against its team's month.

When the dispatcher submits a job it *reserves* the job's estimated cost (the validation's billable-token
estimate at the model's tuning price) in the team's spend document for the current month (UTC), in a
compare-and-set that refuses to go past the team's ``monthly_budget_usd``: concurrent dispatchers cannot
together overspend. When the job ends, the estimate is replaced by the actual cost, Vertex AI's billable
token count at the same price (nothing, when Vertex AI never ran it); a job that goes back to the queue
without a Vertex job gives its reservation back.

A job that would take its team past the budget is not submitted. With the policy's ``over_budget: wait`` (the
default) it stays QUEUED with ``waiting_reason = "over_budget"`` (recorded once, with a lifecycle event
``waiting`` and a WARNING log "team over budget" that the alert counts), and its team is passed over for the
rest of the dispatch pass, so other teams' jobs go on. It goes on by itself when the month turns (a new spend
document) or an operator raises the budget. With ``over_budget: reject`` it is REJECTED naming the policy.

Spend is kept off the slot table (the hottest document): one document per team and month, written when a job
is submitted and when it ends; the charges of running jobs are keyed by ``<job_id>/<attempt>``, so a duplicate
delivery charges nothing twice, and an ended job's is folded into the month's settled total (the document
stays small however busy the month). Teams without a budget are charged too, for `tunedrop quota` and the
spend metric.
Prices are the registry's, or the operators' (TUNEDROP_TUNING_PRICES) where they set one. A team with a budget
may tune only models with a price (policy_budget_needs_price at upload): the cost of any other could not be
counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from shared import logs
from shared.clock import Clock
from shared.jobs import Job
from shared.policy import Policies
from shared.ports import Charge, JobStore, TeamSpend
from shared.services.slots import MAX_CAS_ATTEMPTS, SlotContention
from shared.validation.registry import get_model

OVER_BUDGET = "over_budget"  # Job.waiting_reason, the lifecycle event's reason and the rejection's code stem
_TOLERANCE_USD = 1e-9  # float sums: a reservation exactly at the budget fits


def month_of(at: datetime) -> str:
    """The budget month of an instant: ``YYYY-MM`` in UTC."""
    return f"{at.astimezone(UTC):%Y-%m}"


def charge_key(job: Job) -> str:
    return f"{job.job_id}/{job.attempt}"


def price_per_million(model: str, prices: Mapping[str, float] | None = None) -> float | None:
    """The model's tuning price in USD per million training tokens: the operators' (TUNEDROP_TUNING_PRICES,
    by registry name) where they set one, else the registry's; None when neither records one."""
    spec = get_model(model)
    if spec is None:
        return None
    return (prices or {}).get(spec.name, spec.price_per_million_tokens_usd)


def _price_per_token(job: Job, prices: Mapping[str, float] | None) -> float | None:
    price = price_per_million(job.base_model, prices)
    return None if price is None else price / 1e6


def estimated_cost(job: Job, prices: Mapping[str, float] | None = None) -> float | None:
    """The validation's billable tokens at the model's tuning price (unrounded); None when either is unknown."""
    tokens = (job.validation or {}).get("estimated_billable_tokens")
    price = _price_per_token(job, prices)
    return None if tokens is None or price is None else float(tokens) * price


def actual_cost(job: Job, prices: Mapping[str, float] | None = None) -> float | None:
    """What the ended attempt cost: Vertex AI's billable tokens times the epochs, at the price; 0 without a
    Vertex job; None when Vertex AI ran it but reported no count (the estimate then stands).

    Times the epochs: the API reference describes `total_billable_token_count` as the "number of billable tokens
    in the tuning dataset" (aiplatform v1 SupervisedTuningDataStats, e.g.
    https://www.rubydoc.info/gems/google-cloud-ai_platform-v1/0.47.0/Google/Cloud/AIPlatform/V1/SupervisedTuningDataStats,
    read 2026-11-30), while tuning is billed per token trained, each epoch again. Whether the count already
    includes the epochs is not stated; counting them again is the stricter reading for a budget."""
    if not job.vertex_job_name:
        return 0.0
    tokens = (job.tuning_stats or {}).get("billable_token_count")
    price = _price_per_token(job, prices)
    if not tokens or price is None:  # unset reads as 0 in the proto: no count, not a free job
        return None
    epochs = job.hyper_parameters.get("epochs")
    return float(tokens) * price * (epochs if isinstance(epochs, int) and epochs > 0 else 1)


@dataclass(frozen=True)
class OverBudget:
    """Why a job was not reserved: its team's month would go past the budget."""

    team: str
    month: str
    spent_usd: float
    estimate_usd: float
    budget_usd: float

    def sentence(self) -> str:
        return (
            f"team {self.team!r} policy allows a monthly budget of ${self.budget_usd:,.2f}; {self.month} has "
            f"${self.spent_usd:,.2f} counted and this job is estimated at ${self.estimate_usd:,.2f}"
        )


class BudgetBook:
    """Reserves, gives back and settles jobs' costs in their teams' spend documents (compare-and-set)."""

    def __init__(
        self, store: JobStore, policies: Policies | None, clock: Clock, prices: Mapping[str, float] | None = None
    ) -> None:
        """`prices`: the operators' tuning prices by registry name (TUNEDROP_TUNING_PRICES)."""
        self._store = store
        self._policies = policies or Policies()
        self._clock = clock
        self._prices = dict(prices or {})

    def budget(self, team: str) -> float | None:
        return self._policies.for_team(team).monthly_budget_usd

    def rejects(self, team: str) -> bool:
        return self._policies.for_team(team).over_budget == "reject"

    def check(self, job: Job, month: str) -> OverBudget | None:
        """Whether the job would go past its team's budget in `month`, by one read (no reservation)."""
        spend = self._store.read_spend(job.team, month).value
        return self._beyond(job, month, spend)

    def _beyond(self, job: Job, month: str, spend: TeamSpend) -> OverBudget | None:
        budget = self.budget(job.team)
        if budget is None or charge_key(job) in spend.charges:
            return None
        estimate = estimated_cost(job, self._prices) or 0.0
        if spend.total_usd + estimate <= budget + _TOLERANCE_USD:
            return None
        return OverBudget(job.team, month, spend.total_usd, estimate, budget)

    def reserve(self, job: Job, month: str) -> OverBudget | None:
        """Count the job's estimate against its team's month; the refusal when that would pass the budget.
        Idempotent: a job already counted in the month is not counted again."""
        refusal: list[OverBudget] = []

        def add(spend: TeamSpend) -> TeamSpend | None:
            refusal[:] = [found for found in [self._beyond(job, month, spend)] if found is not None]
            if refusal or charge_key(job) in spend.charges:
                return None
            charges = {**spend.charges, charge_key(job): Charge(estimated_cost(job, self._prices) or 0.0)}
            return replace(spend, charges=charges)

        self._update(job.team, month, add)
        return refusal[0] if refusal else None

    def charge(self, job: Job) -> None:
        """Count the job in its month whatever the budget (it is being submitted, or runs already); a job counted
        already is not counted again. For submissions that did not pass through the dispatcher's reservation:
        a claim resumed after its lease, a running Vertex job taken back."""
        month = job.budget_month or month_of(self._clock())

        def add(spend: TeamSpend) -> TeamSpend | None:
            if charge_key(job) in spend.charges:
                return None
            return replace(
                spend, charges={**spend.charges, charge_key(job): Charge(estimated_cost(job, self._prices) or 0.0)}
            )

        self._update(job.team, month, add)

    def give_back(self, job: Job) -> None:
        """The job went back to the queue without a Vertex job: its reservation is no longer counted."""
        if not job.budget_month:
            return

        def remove(spend: TeamSpend) -> TeamSpend | None:
            if charge_key(job) not in spend.charges:
                return None
            return replace(spend, charges={key: c for key, c in spend.charges.items() if key != charge_key(job)})

        self._update(job.team, job.budget_month, remove)

    def settle(self, job: Job) -> None:
        """The job ended: its estimate is replaced by what it actually cost, folded into the month's settled
        total (so the document holds only the charges of jobs still running, however busy the month)."""
        if not job.budget_month:
            return  # never reserved (ended before submission)
        cost = actual_cost(job, self._prices)

        def settle(spend: TeamSpend) -> TeamSpend | None:
            current = spend.charges.get(charge_key(job))
            if current is None:
                return None  # settled already (or never charged)
            final = current.estimated_usd if cost is None else cost
            charges = {key: c for key, c in spend.charges.items() if key != charge_key(job)}
            return TeamSpend(charges, settled_usd=spend.settled_usd + final, settled_count=spend.settled_count + 1)

        self._update(job.team, job.budget_month, settle)
        if cost is None:
            logs.warning("no billable token count reported: the estimate stays counted", month=job.budget_month)

    def spent(self, team: str, month: str | None = None) -> float:
        """The team's counted spend in the month (this month by default)."""
        return self._store.read_spend(team, month or month_of(self._clock())).value.total_usd

    def _update(self, team: str, month: str, change: Callable[[TeamSpend], TeamSpend | None]) -> None:
        for _ in range(MAX_CAS_ATTEMPTS):
            current = self._store.read_spend(team, month)
            changed = change(current.value)
            if changed is None or self._store.write_spend(team, month, changed, current.version):
                return
        raise SlotContention(f"could not update the spend of team {team!r} for {month}: too much contention")
