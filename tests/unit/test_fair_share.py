"""Fair share: the quota split among teams with queued work by weight, priority only inside a team, slot caps,
no starvation, jobs outside Tunedrop first; one team alone is dispatched as before."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

from shared import bootstrap, cli
from shared.bootstrap import assemble
from shared.jobs import JobState
from shared.policy import Policies, TeamPolicy
from shared.ports import Charge, RemoteJob, RemoteState, TeamSpend
from shared.services.budgets import month_of
from shared.services.dispatch import Dispatcher
from shared.services.fairness import MIN_CHARGE_SECONDS
from tests.fakes import Harness, fair_dispatcher, make_harness, make_settings, queued_team_job

_ids = itertools.count()


def enqueue(h: Harness, team: str, priority: int = 0) -> str:
    """A QUEUED job of `team`, enqueued one second after the previous one."""
    h.clock.advance(1)
    now = h.clock()
    job_id = f"{team or 'default'}-{next(_ids)}"
    h.store.put(queued_team_job(job_id, team, now, priority=priority))
    return job_id


def weighted(**weights: int) -> Policies:
    return Policies(teams={team: TeamPolicy(weight=weight) for team, weight in weights.items()})


def end_all_running(h: Harness) -> None:
    for job in h.store.jobs():
        if job.state is JobState.RUNNING:
            h.tuning.succeed(job.vertex_job_name)
    h.app.poller.poll()


def rounds(h: Harness, dispatcher: Dispatcher, count: int, seconds: float = 3600) -> list[str]:
    """`count` times: dispatch, let the jobs run `seconds`, end them; the teams of the started jobs in order."""
    started = []
    for _ in range(count):
        started += [h.job(job_id).team for job_id in dispatcher.dispatch()]
        h.clock.advance(seconds)
        end_all_running(h)
    return started


def test_slot_time_follows_the_weights_over_many_rounds() -> None:
    h = make_harness(quota=1)
    dispatcher = fair_dispatcher(h, weighted(a=3, b=2, c=1))
    for team in ("a", "b", "c"):
        for _ in range(40):
            enqueue(h, team)

    got = Counter(rounds(h, dispatcher, 60))

    assert got == {"a": 30, "b": 20, "c": 10}


def test_equal_weights_without_policies_alternate() -> None:
    h = make_harness(quota=1)
    for team in ("a", "b"):
        for _ in range(4):
            enqueue(h, team)

    started = rounds(h, h.app.dispatcher, 6)

    assert Counter(started) == {"a": 3, "b": 3}
    assert all(first != second for first, second in itertools.pairwise(started))


def test_a_team_never_holds_more_slots_than_its_cap() -> None:
    h = make_harness(quota=3)
    policies = Policies(teams={"a": TeamPolicy(max_slots=1)})
    dispatcher = fair_dispatcher(h, policies)
    a_jobs = [enqueue(h, "a") for _ in range(3)]
    b_job = enqueue(h, "b")

    assert sorted(dispatcher.dispatch()) == sorted([a_jobs[0], b_job])
    assert dispatcher.dispatch() == []  # a slot is free, yet a is at its cap and b has nothing queued
    assert [h.job(j).state for j in a_jobs] == [JobState.RUNNING, JobState.QUEUED, JobState.QUEUED]


def test_priority_orders_jobs_only_inside_a_team() -> None:
    h = make_harness(quota=1)
    dispatcher = fair_dispatcher(h, weighted(a=1, b=1))
    a_low = enqueue(h, "a", priority=0)
    b_low = enqueue(h, "b", priority=0)
    b_urgent = enqueue(h, "b", priority=9)
    a_later = enqueue(h, "a", priority=0)

    order = []
    for _ in range(4):
        order += dispatcher.dispatch()
        h.clock.advance(600)
        end_all_running(h)

    # b's urgent job goes before b's older one, but not before a's turn (a's head waited longest); then the
    # teams are level again, and b's older job waited longer than a's later one.
    assert order == [a_low, b_urgent, b_low, a_later]


def test_jobs_started_outside_tunedrop_take_slots_first() -> None:
    h = make_harness(quota=2)
    dispatcher = fair_dispatcher(h, weighted(a=5))
    h.tuning.add(RemoteJob(name="projects/demo/locations/us-central1/tuningJobs/by-hand", state=RemoteState.RUNNING))
    first, second = enqueue(h, "a"), enqueue(h, "b")

    assert dispatcher.dispatch() == [first]
    assert h.job(second).state is JobState.QUEUED


def test_a_weight_1_team_among_weight_10_teams_is_not_starved() -> None:
    h = make_harness(quota=1)
    dispatcher = fair_dispatcher(h, weighted(big1=10, big2=10, big3=10, small=1))
    for team in ("big1", "big2", "big3", "small"):
        for _ in range(40):
            enqueue(h, team)

    started = rounds(h, dispatcher, 93)

    # 1/31 of the slot-time: a job in every 31, give or take one.
    assert started.count("small") == 3
    gaps = [n for n, team in enumerate(started) if team == "small"]
    assert all(later - earlier <= 32 for earlier, later in itertools.pairwise([-1, *gaps]))


def test_a_team_arriving_with_one_job_takes_the_next_free_slot() -> None:
    h = make_harness(quota=1)
    dispatcher = fair_dispatcher(h, weighted(busy=10))
    for _ in range(10):
        enqueue(h, "busy")
    rounds(h, dispatcher, 5)
    newcomer = enqueue(h, "newcomer")

    assert dispatcher.dispatch() == [newcomer]


def test_a_team_whose_job_ran_long_waits_until_the_others_caught_up() -> None:
    h = make_harness(quota=1)
    dispatcher = fair_dispatcher(h, weighted(a=1, b=1))
    for team in ("a", "b"):
        for _ in range(12):
            enqueue(h, team)
    assert rounds(h, dispatcher, 1, seconds=10 * 3600) == ["a"]  # a's head waited longest: a ten-hour job

    # b then gets ten one-hour jobs before a's turn comes again (level, and a's head waited longer).
    assert rounds(h, dispatcher, 11) == ["b"] * 10 + ["a"]


@pytest.mark.parametrize("policies", [None, weighted(a=7)], ids=["no policies", "weighted"])
def test_one_team_alone_is_dispatched_by_priority_then_fifo_as_before(policies: Policies | None) -> None:
    h = make_harness(quota=1)
    dispatcher = fair_dispatcher(h, policies) if policies else h.app.dispatcher
    low_early = enqueue(h, "a", 0)
    high_late = enqueue(h, "a", 5)
    low_late = enqueue(h, "a", 0)
    urgent = enqueue(h, "a", 9)
    order = []
    for _ in range(4):
        order += dispatcher.dispatch()
        h.clock.advance(60)
        end_all_running(h)
    assert order == [urgent, high_late, low_early, low_late]


def test_the_fairness_document_charges_ended_slots_and_stays_off_the_slot_table() -> None:
    h = make_harness(quota=2)
    dispatcher = fair_dispatcher(h, weighted(a=2, b=1))
    a_job, b_job = enqueue(h, "a"), enqueue(h, "b")
    enqueue(h, "a")
    assert sorted(dispatcher.dispatch()) == sorted([a_job, b_job])
    running = h.store.read_fairness().value.running
    assert {job_id: slot.team for job_id, slot in running.items()} == {a_job: "a", b_job: "b"}
    slot_writes = h.store.calls["write_slots"]

    h.clock.advance(7200)
    h.tuning.succeed(h.job(a_job).vertex_job_name)
    h.app.poller.poll()
    dispatcher.dispatch()

    state = h.store.read_fairness().value
    assert state.teams["a"].vtime == 7200 / 2  # two hours on one slot, weight 2
    assert a_job not in state.running and b_job in state.running
    assert h.store.calls["write_slots"] - slot_writes == 2  # a's release and the next claim: nothing more


def test_a_job_ending_at_once_still_costs_the_minimum_charge() -> None:
    h = make_harness(quota=1)
    dispatcher = fair_dispatcher(h, weighted(a=1))
    job_id = enqueue(h, "a")
    enqueue(h, "a")
    dispatcher.dispatch()
    h.tuning.succeed(h.job(job_id).vertex_job_name)
    h.app.poller.poll()
    dispatcher.dispatch()

    assert h.store.read_fairness().value.teams["a"].vtime == MIN_CHARGE_SECONDS


def test_tunedrop_quota_shows_each_team(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    document = {"teams": {"a": {"weight": 3, "max_slots": 2}, "b": {"weight": 1, "monthly_budget_usd": 50}}}
    h = make_harness({"TUNEDROP_TEAM_POLICIES": json.dumps(document)}, quota=2)
    # Spend counted this month (an ended job's actual cost), and last month's, which is not shown.
    h.store.write_spend("a", month_of(h.clock()), TeamSpend({"done/1": Charge(20.0, 12.345)}), None)
    h.store.write_spend("a", "2025-12", TeamSpend({"old/1": Charge(99.0)}), None)
    running = enqueue(h, "a")
    for _ in range(2):
        enqueue(h, "a")
    enqueue(h, "b")
    h.tuning.add(RemoteJob(name="projects/demo/locations/us-central1/tuningJobs/by-hand", state=RemoteState.RUNNING))
    assert fair_dispatcher(h, h.app.policies).dispatch() == [running]
    bootstrap.set_app(h.app)
    try:
        capsys.readouterr()
        with pytest.raises(SystemExit):
            cli.main(["quota", "--json"])
        rows = json.loads(capsys.readouterr().out)["teams"]
        with pytest.raises(SystemExit):
            cli.main(["quota"])
        text = capsys.readouterr().out
    finally:
        bootstrap.set_app(None)

    # One slot is left after the job started by hand: a's weight 3 of 4 gives it 0.75 of it.
    assert rows == [
        {
            "team": "a",
            "weight": 3,
            "max_slots": 2,
            "running": 1,
            "queued": 2,
            "share": 0.75,
            "spend_usd": 12.35,
            "budget_usd": None,
        },
        {
            "team": "b",
            "weight": 1,
            "max_slots": None,
            "running": 0,
            "queued": 1,
            "share": 0.25,
            "spend_usd": 0.0,
            "budget_usd": 50,
        },
    ]
    lines = text.splitlines()
    assert "          a                         3    2       1      2   0.75  $12.35" in lines
    assert "          b                         1    -       0      1   0.25  $0.00 of $50.00" in lines


def test_the_apps_dispatcher_shares_by_the_configured_policies() -> None:
    # The composition root hands the settings' policies to the dispatcher: a team's cap holds through h.app.
    document = {"teams": {"a": {"max_slots": 1}}}
    h = make_harness({"TUNEDROP_TEAM_POLICIES": json.dumps(document)}, quota=3)
    first = enqueue(h, "a")
    enqueue(h, "a")
    other = enqueue(h, "b")
    assert sorted(h.app.dispatcher.dispatch()) == sorted([first, other])


def test_a_slot_another_dispatcher_takes_while_one_saves_is_not_charged_as_given_back() -> None:
    h = make_harness(quota=2)
    first, second = fair_dispatcher(h, Policies()), fair_dispatcher(h, Policies())
    enqueue(h, "a")
    read_fairness = h.store.read_fairness
    interleaved: list[str] = []

    def read_then_let_the_other_dispatch():  # type: ignore[no-untyped-def]
        # The first dispatcher is saving: the second takes a slot before the first reads the document.
        nonlocal saving
        if saving:
            saving = False  # once; the second dispatcher reads the same store
            enqueue(h, "b")
            interleaved.extend(second.dispatch())
        return read_fairness()

    saving = False
    original_save = first.fair_share.save

    def save(share, read_holders):  # type: ignore[no-untyped-def]
        nonlocal saving
        saving = True
        return original_save(share, read_holders)

    h.store.read_fairness = read_then_let_the_other_dispatch  # type: ignore[method-assign]
    first.fair_share.save = save  # type: ignore[method-assign]
    assert len(first.dispatch()) == 1 and len(interleaved) == 1

    state = read_fairness().value
    assert set(state.running) == {j.job_id for j in h.store.jobs() if j.state is JobState.RUNNING}
    assert state.teams["b"].vtime == 0.0  # still running: nothing charged yet


def test_tunedrop_quota_reads_the_deployed_policies_not_the_callers_shell(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    deployed = {"teams": {"a": {"weight": 3, "monthly_budget_usd": 40}}, "change": {"changed_by": "x", "reason": "y"}}
    functions = make_harness({"TUNEDROP_TEAM_POLICIES": json.dumps(deployed)})
    assert functions.app.policy_history.note_deployed()  # what the dispatcher does at its first pass
    # The operator's shell sets no policies; the store is the deployment's.
    shell = assemble(
        make_settings(),
        store=functions.store,
        publisher=functions.publisher,
        blobs=functions.blobs,
        tuning=functions.tuning,
        clock=functions.clock,
    )
    enqueue(functions, "a")
    bootstrap.set_app(shell)
    capsys.readouterr()
    try:
        with pytest.raises(SystemExit):
            cli.main(["quota", "--json"])
        (row,) = json.loads(capsys.readouterr().out)["teams"]
    finally:
        bootstrap.set_app(None)

    assert (row["team"], row["weight"], row["budget_usd"]) == ("a", 3, 40)
