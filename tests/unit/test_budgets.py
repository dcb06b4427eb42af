"""Budgets per team and month: a job's estimate is reserved when it is submitted and replaced by its actual cost
when it ends; a job that would pass its team's budget waits QUEUED (over_budget) or is REJECTED by policy, while
other teams go on; the month turning or a raised budget lets it go. Also the slot cap held against another
dispatcher's claim, and jobs recorded before teams."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shared.cli import job_details
from shared.errors import ConfigError
from shared.jobs import Job, JobState
from shared.policy import Policies, TeamPolicy, violations
from shared.ports import Charge, QuotaExhausted, TeamSpend
from shared.services.budgets import OVER_BUDGET, BudgetBook, actual_cost, estimated_cost, month_of
from shared.services.slots import Claim
from shared.services.team_backfill import MARKER, TeamBackfill
from tests.fakes import (
    PAGE_SIZE,
    Harness,
    fair_dispatcher,
    make_harness,
    make_settings,
    queued_team_job,
    seed_job,
)

PRICED_MODEL = "gemini-3.1-flash-lite"  # $3 per million training tokens in the registry
_ids = itertools.count()


def costly_job(h: Harness, team: str, tokens: int, **changes: object) -> str:
    """A QUEUED job of `team` on a priced model whose validation estimated `tokens` billable tokens."""
    h.clock.advance(1)
    job_id = f"{team}-{next(_ids)}"
    job = queued_team_job(job_id, team, h.clock())
    job = replace(job, base_model=PRICED_MODEL, validation={"valid": True, "estimated_billable_tokens": tokens})
    h.store.put(replace(job, **changes))  # type: ignore[arg-type]
    return job_id


def budgets(**per_team: float) -> Policies:
    return Policies(teams={team: TeamPolicy(monthly_budget_usd=usd) for team, usd in per_team.items()})


def spend(h: Harness, team: str) -> TeamSpend:
    return h.store.read_spend(team, month_of(h.clock())).value


def lifecycle_waiting(h: Harness) -> list[dict[str, object]]:
    return [m.json() for m in h.publisher.on(h.settings.events_topic) if m.json()["kind"] == "waiting"]


def test_estimates_are_priced_from_the_validation_and_the_registry() -> None:
    h = make_harness()
    job = h.store.job(costly_job(h, "a", 2_000_000))
    assert estimated_cost(job) == pytest.approx(6.0)
    assert estimated_cost(replace(job, base_model="gemini-3.5-flash")) is None  # no recorded price
    assert estimated_cost(replace(job, validation={"valid": True})) is None
    ran = replace(job, vertex_job_name="v", tuning_stats={"billable_token_count": 1_000_000})
    assert actual_cost(ran) == pytest.approx(3.0)
    assert actual_cost(replace(ran, hyper_parameters={"epochs": 3})) == pytest.approx(9.0)  # the stricter reading
    assert actual_cost(replace(ran, vertex_job_name="")) == 0.0  # never ran on Vertex AI
    assert actual_cost(replace(ran, tuning_stats={})) is None  # no count: the estimate stands


def test_the_estimate_is_reserved_at_submission_and_replaced_by_the_actual_cost_at_the_end() -> None:
    h = make_harness(env={"TUNEDROP_EVENTS_TOPIC": "events"})
    dispatcher = fair_dispatcher(h, budgets(a=100))
    job_id = costly_job(h, "a", 2_000_000)

    assert dispatcher.dispatch() == [job_id]
    key = f"{job_id}/1"
    assert spend(h, "a").charges[key].estimated_usd == pytest.approx(6.0)
    assert spend(h, "a").charges[key].actual_usd is None
    assert h.job(job_id).budget_month == month_of(h.clock())

    name = h.job(job_id).vertex_job_name
    h.tuning.set_state(name, "JOB_STATE_SUCCEEDED", stats={"billable_token_count": 1_500_000})
    h.app.poller.poll()

    assert h.job(job_id).state is JobState.SUCCEEDED
    settled = spend(h, "a")
    assert key not in settled.charges  # folded into the month's settled total
    assert settled.settled_usd == pytest.approx(4.5) and settled.settled_count == 1
    assert settled.total_usd == pytest.approx(4.5)
    # A duplicate completion settles nothing twice.
    h.app.completions._budgets.settle(h.job(job_id))
    assert spend(h, "a") == settled


def test_a_job_over_its_teams_budget_waits_while_other_teams_go_on() -> None:
    h = make_harness(quota=3, env={"TUNEDROP_EVENTS_TOPIC": "events"})
    dispatcher = fair_dispatcher(h, budgets(thrifty=10))
    first = costly_job(h, "thrifty", 3_000_000)  # $9: fits
    second = costly_job(h, "thrifty", 1_000_000)  # $3 more: $12 > $10
    other = costly_job(h, "rich", 50_000_000)  # $150, no budget

    started = dispatcher.dispatch()

    assert sorted(started) == sorted([first, other])
    waiting = h.job(second)
    assert waiting.state is JobState.QUEUED and waiting.waiting_reason == OVER_BUDGET
    (event,) = lifecycle_waiting(h)
    assert event["job_id"] == second and event["reason"] == OVER_BUDGET
    assert event["budget_usd"] == 10 and event["spent_usd"] == pytest.approx(9.0)
    # Teams without a budget are counted too (for `tunedrop quota`).
    assert spend(h, "rich").total_usd == pytest.approx(150.0)

    # Passes later (slots free) it still waits, announced once only.
    h.clock.advance(60)
    assert dispatcher.dispatch() == []
    assert h.job(second).state is JobState.QUEUED
    assert len(lifecycle_waiting(h)) == 1


def test_the_waiting_job_goes_on_when_the_month_turns() -> None:
    h = make_harness(quota=2)
    h.clock.now = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    dispatcher = fair_dispatcher(h, budgets(a=10))
    costly_job(h, "a", 3_000_000)
    late = costly_job(h, "a", 3_000_000)
    dispatcher.dispatch()
    assert h.job(late).waiting_reason == OVER_BUDGET

    h.clock.now = datetime(2026, 12, 1, 0, 1, tzinfo=UTC)
    assert dispatcher.dispatch() == [late]
    assert h.job(late).waiting_reason == ""
    assert h.job(late).budget_month == "2026-12"
    assert h.store.read_spend("a", "2026-12").value.total_usd == pytest.approx(9.0)


def test_the_waiting_job_goes_on_when_an_operator_raises_the_budget() -> None:
    h = make_harness(quota=2)
    costly_job(h, "a", 3_000_000)
    late = costly_job(h, "a", 3_000_000)
    fair_dispatcher(h, budgets(a=10)).dispatch()
    assert h.job(late).state is JobState.QUEUED

    assert fair_dispatcher(h, budgets(a=20)).dispatch() == [late]  # the new policy, deployed


def test_a_rejecting_policy_rejects_the_job_naming_the_policy() -> None:
    h = make_harness(quota=2)
    policies = Policies(teams={"a": TeamPolicy(monthly_budget_usd=5, over_budget="reject")})
    dispatcher = fair_dispatcher(h, policies)
    big = costly_job(h, "a", 3_000_000)  # $9 > $5
    small = costly_job(h, "a", 1_000_000)  # $3 fits

    assert dispatcher.dispatch() == [small]

    rejected = h.job(big)
    assert rejected.state is JobState.REJECTED
    assert rejected.error is not None and rejected.error["code"] == "policy_over_budget"
    assert "team 'a' policy allows a monthly budget of $5.00" in rejected.error["message"]
    (completion,) = [m for m in h.completions() if m.json()["job_id"] == big]
    assert completion.json()["state"] == "REJECTED"


def test_a_job_back_in_the_queue_gives_its_reservation_back() -> None:
    h = make_harness(quota=1)
    dispatcher = fair_dispatcher(h, budgets(a=100))
    job_id = costly_job(h, "a", 1_000_000)
    h.tuning.fail("create", QuotaExhausted("quota"))

    assert dispatcher.dispatch() == []

    assert h.job(job_id).state is JobState.QUEUED
    assert spend(h, "a").charges == {}


def test_reservations_never_pass_the_budget_and_count_a_job_once() -> None:
    h = make_harness()
    book = BudgetBook(h.store, budgets(a=10), h.clock)
    month = month_of(h.clock())
    first = h.store.job(costly_job(h, "a", 3_000_000))
    second = h.store.job(costly_job(h, "a", 1_000_000))

    assert book.reserve(first, month) is None
    assert book.reserve(first, month) is None  # a duplicate delivery: counted once
    over = book.reserve(second, month)
    assert over is not None and over.spent_usd == pytest.approx(9.0) and over.estimate_usd == pytest.approx(3.0)
    assert book.spent("a") == pytest.approx(9.0)


def test_a_teams_cap_holds_against_a_slot_another_dispatcher_took() -> None:
    h = make_harness(quota=3)
    policies = Policies(teams={"a": TeamPolicy(max_slots=1)})
    dispatcher = fair_dispatcher(h, policies)
    a_job = costly_job(h, "a", 1)
    b_job = costly_job(h, "b", 1)
    # Another dispatcher claimed a job of team a and its slot a moment ago: this pass's fairness view has not
    # seen it.
    elsewhere = costly_job(h, "a", 1)
    seed_job(h.store, h.job(elsewhere), [JobState.SUBMITTING], h.clock(), submit_claimed_at=h.clock())
    assert h.app.ledger.claim_for_team(elsewhere, 3, team="a", team_cap=1) is Claim.TAKEN

    started = dispatcher.dispatch()

    assert started == [b_job]
    assert h.job(a_job).state is JobState.QUEUED
    assert h.app.ledger.claim_for_team("a-more", 3, team="a", team_cap=1) is Claim.TEAM_FULL
    assert h.app.ledger.claim_for_team("c-1", 2, team="c", team_cap=None) is Claim.QUOTA_FULL  # two held


def test_jobs_recorded_before_teams_join_the_default_team_and_are_dispatched() -> None:
    h = make_harness(quota=2)
    legacy: Job = queued_team_job("legacy", "", h.clock())
    document = legacy.to_document()
    del document["team"]  # written by a release before teams
    h.store.put_document(document)
    h.clock.advance(1)
    unnamed = queued_team_job("unnamed", "", h.clock())  # team "" from an older instance
    h.store.put(unnamed)

    started = h.app.dispatcher.dispatch()

    assert sorted(started) == ["legacy", "unnamed"]
    assert {h.job(job_id).team for job_id in started} == {h.settings.default_team}
    assert h.store.read_marker(MARKER) == "done"


def test_operators_prices_count_models_the_registry_has_no_price_for() -> None:
    h = make_harness(quota=2, env={"TUNEDROP_TUNING_PRICES": json.dumps({"gemini-3.5-flash": 5})})
    dispatcher = fair_dispatcher(h, budgets(a=12))
    first = costly_job(h, "a", 2_000_000, base_model="gemini-3.5-flash")  # $10 at the operators' price
    second = costly_job(h, "a", 1_000_000, base_model="gemini-3.5-flash")  # $5 more: $15 > $12

    assert dispatcher.dispatch() == [first]
    assert h.job(second).waiting_reason == OVER_BUDGET
    assert spend(h, "a").total_usd == pytest.approx(10.0)
    # The operators' price overrides the registry's too (a negotiated rate).
    job = h.job(first)
    assert estimated_cost(replace(job, base_model=PRICED_MODEL), {PRICED_MODEL: 1.0}) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"no-such-model": 5}', "names 'no-such-model', not a model the registry knows"),
        ('{"gemini-3.5-flash": -1}', "Expected `float` >= 0.0"),
        ('{"gemini-3.5-flash": true}', "Expected `float`, got `bool`"),
        ("[5]", "Expected `object`, got `array`"),
    ],
)
def test_operators_prices_are_checked_at_cold_start(document: str, message: str) -> None:
    with pytest.raises(ConfigError, match="TUNEDROP_TUNING_PRICES") as raised:
        make_settings(TUNEDROP_TUNING_PRICES=document)
    assert message in str(raised.value)


def test_a_budget_needs_a_price_for_the_model_at_upload() -> None:
    policy = TeamPolicy(monthly_budget_usd=10)
    asked = {"priority": 0, "epochs": None, "label_keys": ()}
    (unpriced,) = violations("a", policy, base_model="gemini-3.5-flash", **asked)  # type: ignore[arg-type]
    assert unpriced.code == "policy_budget_needs_price"
    assert "no tuning price is recorded for gemini-3.5-flash" in unpriced.message
    assert violations("a", policy, base_model=PRICED_MODEL, **asked) == []  # type: ignore[arg-type]
    priced = {"gemini-3.5-flash": 5.0}
    assert violations("a", policy, base_model="gemini-3.5-flash", prices=priced, **asked) == []  # type: ignore[arg-type]
    assert violations("a", TeamPolicy(), base_model="gemini-3.5-flash", **asked) == []  # type: ignore[arg-type]


def test_tunedrop_job_says_why_a_job_waits() -> None:
    h = make_harness(quota=2)
    costly_job(h, "a", 3_000_000)
    late = costly_job(h, "a", 3_000_000)
    fair_dispatcher(h, budgets(a=10)).dispatch()

    lines = job_details(h.job(late))

    assert any(line.strip().startswith("waiting      over_budget: its team's monthly budget") for line in lines)
    assert not any("waiting" in line for line in job_details(replace(h.job(late), waiting_reason="")))


def test_a_claim_resumed_after_its_lease_is_counted_too() -> None:
    # A dispatcher died holding the job's claim and its slot, before it reserved the cost.
    h = make_harness(quota=1)
    job_id = costly_job(h, "a", 1_000_000)
    month = month_of(h.clock())
    seed_job(h.store, h.job(job_id), [JobState.SUBMITTING], h.clock(), submit_claimed_at=h.clock(), budget_month=month)
    assert h.app.ledger.claim_for_team(job_id, 1, team="a", team_cap=None) is Claim.TAKEN
    h.clock.advance(h.settings.submit_lease_seconds + 1)

    fair_dispatcher(h, budgets(a=100)).dispatch()

    assert h.job(job_id).state is JobState.RUNNING
    assert spend(h, "a").charges[f"{job_id}/1"].estimated_usd == pytest.approx(3.0)


def test_a_reservation_left_in_an_earlier_month_is_given_back_when_the_job_is_claimed_again() -> None:
    h = make_harness(quota=1)
    h.clock.now = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)
    job_id = costly_job(h, "a", 1_000_000, budget_month="2026-11")
    h.store.write_spend("a", "2026-11", TeamSpend({f"{job_id}/1": Charge(3.0)}), None)

    assert fair_dispatcher(h, budgets(a=100)).dispatch() == [job_id]

    assert h.store.read_spend("a", "2026-11").value.total_usd == 0.0
    assert h.store.read_spend("a", "2026-12").value.total_usd == pytest.approx(3.0)


def test_the_backfill_reaches_every_page_of_jobs_recorded_before_teams() -> None:
    h = make_harness(quota=1)
    for n in range(PAGE_SIZE + 5):
        document = queued_team_job(f"legacy-{n:03d}", "", h.clock()).to_document()
        del document["team"]
        h.store.put_document(document)

    assert TeamBackfill(h.store, "default").legacy_jobs() == PAGE_SIZE + 5

    assert {job.team for job in h.store.jobs()} == {"default"}
    assert h.store.read_marker(MARKER) == "done"


def test_the_backfill_leaves_a_job_being_validated_to_its_upload_delivery() -> None:
    # An upload in a folder that is no team's is VALIDATING with team "" until it is REJECTED (bad_team_folder).
    h = make_harness(quota=1)
    validating = replace(queued_team_job("validating", "", h.clock()), state=JobState.VALIDATING)
    h.store.put_document(validating.to_document())
    before = h.store.get("validating")

    assert TeamBackfill(h.store, "default").legacy_jobs() == 0

    after = h.store.get("validating")
    assert before is not None and after is not None
    assert after.value.team == "" and after.version == before.version
