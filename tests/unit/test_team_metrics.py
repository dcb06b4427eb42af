"""Per-team gauges (issue 13, item 7): one "team gauges" line per team with work each poll tick, with its queue,
slots, the wait of its next job, this month's spend and its budget; bounded reads; never a failed tick."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import FakeClock
from shared.jobs import JobState
from shared.policy import Policies, TeamPolicy
from shared.ports import Charge, FairShareState, RunningSlot, SlotTable, TeamSpend
from shared.services import team_metrics
from shared.services.team_metrics import TeamGauge, TeamGauges
from tests.fakes import Harness, InMemoryJobStore, make_harness, queued_team_job

START = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
GAUGES_MESSAGE = "team gauges"
FIELDS = {"team", "queued", "running", "head_wait_seconds", "over_budget", "spend_usd", "budget_usd"}


def enqueue(store: InMemoryJobStore, job_id: str, team: str, at: datetime, priority: int = 0) -> None:
    store.put(queued_team_job(job_id, team, at, priority=priority))


def hold_slots(store: InMemoryJobStore, holders: dict[str, datetime], teams: dict[str, str]) -> None:
    assert store.write_slots(SlotTable(holders=holders, teams=teams), None)


def charge(store: InMemoryJobStore, team: str, month: str, **usd: float) -> None:
    spend = TeamSpend({f"{key}/1": Charge(estimated_usd=value) for key, value in usd.items()})
    assert store.write_spend(team, month, spend, store.read_spend(team, month).version)


def gauges(store: InMemoryJobStore, clock: FakeClock, policies: Policies | None = None) -> dict[str, TeamGauge]:
    read = TeamGauges(store, policies or Policies(), clock, "default").read()
    return {gauge.team: gauge for gauge in read}


def logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_each_team_with_work_gets_its_queue_slots_wait_spend_and_budget() -> None:
    store, clock = InMemoryJobStore(), FakeClock(START)
    enqueue(store, "s1", "search", START - timedelta(minutes=50))
    enqueue(store, "s2", "search", START - timedelta(minutes=20), priority=5)  # the head: highest priority
    enqueue(store, "s3", "search", START - timedelta(minutes=5))
    enqueue(store, "a1", "ads", START - timedelta(seconds=90))
    # kitchen holds two slots and queues nothing; one holder's team is known only to the fairness document.
    hold_slots(store, {"k1": START, "k2": START, "s0": START}, {"k1": "kitchen", "s0": "search"})
    assert store.write_fairness(FairShareState(running={"k2": RunningSlot("kitchen", START)}), None)
    charge(store, "search", "2026-03", s0=12.5, old=2.25)
    charge(store, "search", "2026-02", older=99.0)  # another month: not this one's spend
    policies = Policies(teams={"search": TeamPolicy(monthly_budget_usd=500.0)})

    found = gauges(store, clock, policies)

    assert found == {
        "ads": TeamGauge("ads", 1, 0, head_wait_seconds=90.0, over_budget=False, spend_usd=0.0, budget_usd=None),
        "kitchen": TeamGauge("kitchen", 0, 2, head_wait_seconds=0.0, over_budget=False, spend_usd=0.0, budget_usd=None),
        "search": TeamGauge(
            "search", 3, 1, head_wait_seconds=1200.0, over_budget=False, spend_usd=14.75, budget_usd=500.0
        ),
    }


def test_a_team_its_budget_holds_back_does_not_count_as_waiting_for_a_slot() -> None:
    store, clock = InMemoryJobStore(), FakeClock(START)
    held = queued_team_job("t1", "thrifty", START - timedelta(days=3))
    store.put(replace(held, waiting_reason="over_budget"))

    (gauge,) = gauges(store, clock).values()

    assert gauge.over_budget is True and gauge.head_wait_seconds == 0.0 and gauge.queued == 1


def test_the_month_is_the_clocks_month_in_utc() -> None:
    store, clock = InMemoryJobStore(), FakeClock(START)
    enqueue(store, "s1", "search", START)
    charge(store, "search", "2026-03", a=1.0)
    charge(store, "search", "2026-04", b=7.0)
    assert gauges(store, clock)["search"].spend_usd == 1.0
    clock.now = START + timedelta(hours=1)  # 2026-04-01 00:00 UTC
    assert gauges(store, clock)["search"].spend_usd == 7.0


def test_a_team_without_work_gets_no_line_and_an_idle_store_costs_two_reads() -> None:
    store, clock = InMemoryJobStore(), FakeClock(START)
    charge(store, "search", "2026-03", a=3.0)  # spend alone is not work
    store.reset_counters()
    assert gauges(store, clock) == {}
    assert store.reads == 2  # the slot table, and the queue-heads query that matched nothing


def test_reads_do_not_grow_with_the_queue() -> None:
    def reads(jobs_per_team: int) -> int:
        store, clock = InMemoryJobStore(), FakeClock(START)
        for team in ("ads", "kitchen", "search"):
            for n in range(jobs_per_team):
                enqueue(store, f"{team}-{n}", team, START - timedelta(minutes=n))
        hold_slots(store, {"x": START}, {"x": "ads"})
        store.reset_counters()
        read = gauges(store, clock)
        assert read["search"].queued == jobs_per_team
        return store.reads

    # 1 slot table + 3 heads + per team 1 count + 1 spend document; no fairness document (every holder's team
    # is on the slot table).
    assert reads(1) == reads(200) == 1 + 3 + 3 * 2


def test_at_most_max_teams_teams_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(team_metrics, "MAX_TEAMS", 2)
    store, clock = InMemoryJobStore(), FakeClock(START)
    for team in ("a", "b", "c", "d"):
        enqueue(store, f"{team}-1", team, START)
    store.reset_counters()
    assert sorted(gauges(store, clock)) == ["a", "b"]
    assert store.calls["count_queued_in_team"] == 2 and store.calls["read_spend"] == 2


def test_jobs_from_before_teams_are_the_default_teams() -> None:
    store, clock = InMemoryJobStore(), FakeClock(START)
    enqueue(store, "old", "", START - timedelta(seconds=30))
    (gauge,) = gauges(store, clock).values()
    assert (gauge.team, gauge.queued, gauge.head_wait_seconds) == ("default", 1, 30.0)


def test_emit_logs_one_line_per_team_with_exactly_the_gauge_fields(capsys: pytest.CaptureFixture[str]) -> None:
    store, clock = InMemoryJobStore(), FakeClock(START)
    enqueue(store, "s1", "search", START - timedelta(seconds=10))
    enqueue(store, "a1", "ads", START)
    capsys.readouterr()
    assert TeamGauges(store, Policies(), clock, "default").emit() == 2
    lines = [entry for entry in logged(capsys) if entry["message"] == GAUGES_MESSAGE]
    assert [entry["team"] for entry in lines] == ["ads", "search"]
    for entry in lines:
        assert entry["severity"] == "INFO"
        assert set(entry) - {"severity", "message", "time", "logger"} == FIELDS
    assert lines[1]["head_wait_seconds"] == 10.0 and lines[1]["budget_usd"] is None  # JSON null


def test_a_failure_is_a_warning_and_the_poll_goes_on(
    harness: Harness, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = harness.upload("a.jsonl")
    assert job_id in harness.app.dispatcher.dispatch()
    harness.tuning.succeed(harness.job(job_id).vertex_job_name)

    def broken(limit: int) -> list[object]:
        raise RuntimeError("index not ready")

    monkeypatch.setattr(harness.store, "queue_heads", broken)
    capsys.readouterr()
    harness.clock.advance(60)
    assert harness.app.poller.poll() == [job_id]
    assert harness.job(job_id).state is JobState.SUCCEEDED
    (warning,) = [entry for entry in logged(capsys) if str(entry["message"]).startswith("team gauges")]
    assert warning["severity"] == "WARNING" and warning["error"] == "index not ready"


def test_the_poll_tick_logs_the_gauges_with_the_deployed_policies(capsys: pytest.CaptureFixture[str]) -> None:
    policies = json.dumps({"teams": {"search": {"monthly_budget_usd": 250}}})
    h = make_harness({"TUNEDROP_TEAM_POLICIES": policies}, quota=1)
    enqueue(h.store, "s1", "search", h.clock())
    enqueue(h.store, "s2", "search", h.clock())
    enqueue(h.store, "k1", "kitchen", h.clock())
    capsys.readouterr()
    h.clock.advance(600)
    assert h.app.poller.poll() == []
    lines = {entry["team"]: entry for entry in logged(capsys) if entry["message"] == GAUGES_MESSAGE}
    assert {team: (line["queued"], line["head_wait_seconds"], line["budget_usd"]) for team, line in lines.items()} == {
        "kitchen": (1, 600.0, None),
        "search": (2, 600.0, 250.0),  # the composition root gave the poller the deployed policies
    }
