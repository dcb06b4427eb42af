"""One contract for the in-memory store and FirestoreJobStore on the emulator: the queries and markers
the daily model-lifecycle check relies on (jobs by state and base model, read page by page; named markers), and
the fair share's (each team's queue head, a team's queue, the fairness document)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import msgspec
import pytest

from shared.adapters.firestore_store import FirestoreJobStore
from shared.aliases import Alias, Announcement, Champion
from shared.jobs import JobState, new_job
from shared.ports import (
    Charge,
    DocumentRefused,
    FairShareState,
    JobStore,
    PolicyRecord,
    RunningSlot,
    SlotTable,
    TeamSpend,
    TeamUsage,
)
from tests.fakes import InMemoryJobStore

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["in-memory", "firestore"])
def store(request: pytest.FixtureRequest) -> JobStore:
    if request.param == "in-memory":
        return InMemoryJobStore()
    emulated: FirestoreJobStore = request.getfixturevalue("firestore_store")
    return emulated


def _put(store: JobStore, job_id: str, model: str, state: JobState) -> None:
    job = new_job(
        job_id=job_id, bucket="b", object_name=f"incoming/{job_id}.jsonl", generation="1", base_model=model, now=T0
    )
    path = {
        JobState.QUEUED: [JobState.QUEUED],
        JobState.SUCCEEDED: [JobState.QUEUED, JobState.SUBMITTING, JobState.RUNNING, JobState.SUCCEEDED],
        JobState.REJECTED: [JobState.REJECTED],
    }[state]
    for step in path:
        job = job.moved_to(step, T0, "seeded")
    assert store.create(job)


def test_jobs_by_state_and_model_across_pages(store: JobStore) -> None:
    # More than one Firestore page (300) of matches, with non-matching jobs on every side.
    for n in range(310):
        _put(store, f"old-{n:03d}", "gemini-2.5-flash" if n % 2 else "gemini-2.5-pro", JobState.SUCCEEDED)
    _put(store, "other-model", "gemini-3.5-flash", JobState.SUCCEEDED)
    _put(store, "other-state", "gemini-2.5-flash", JobState.QUEUED)
    found = [v.value.job_id for v in store.on_models(JobState.SUCCEEDED, ["gemini-2.5-flash", "gemini-2.5-pro"])]
    assert sorted(found) == [f"old-{n:03d}" for n in range(310)]
    assert len(set(found)) == len(found)
    queued = [v.value.job_id for v in store.on_models(JobState.QUEUED, ["gemini-2.5-flash"])]
    assert queued == ["other-state"]
    assert list(store.on_models(JobState.REJECTED, ["gemini-2.5-flash"])) == []
    # Each result carries the version a conditional write must match.
    first = next(iter(store.on_models(JobState.QUEUED, ["gemini-2.5-flash"])))
    assert store.replace(replace(first.value, priority=1), first.version) is True
    assert store.replace(replace(first.value, priority=2), first.version) is False


def test_each_in_states_reads_every_page(store: JobStore) -> None:
    for n in range(305):
        _put(store, f"q-{n:03d}", "m", JobState.QUEUED)
    _put(store, "done", "m", JobState.SUCCEEDED)
    found = [v.value.job_id for v in store.each_in_states([JobState.QUEUED, JobState.RUNNING])]
    assert found == [f"q-{n:03d}" for n in range(305)]
    assert list(store.each_in_states([JobState.CANCELLED])) == []


def test_list_jobs_of_one_state_or_of_any_in_job_id_order(store: JobStore) -> None:
    for job_id, state in [("c", JobState.QUEUED), ("a", JobState.SUCCEEDED), ("b", JobState.QUEUED)]:
        _put(store, job_id, "gemini-2.5-flash", state)
    assert [j.job_id for j in store.list_jobs(None, 10)] == ["a", "b", "c"]
    assert [j.job_id for j in store.list_jobs(None, 2)] == ["a", "b"]
    assert [j.job_id for j in store.list_jobs(JobState.QUEUED, 10)] == ["b", "c"]
    assert [j.state for j in store.list_jobs(JobState.SUCCEEDED, 10)] == [JobState.SUCCEEDED]
    assert store.list_jobs(JobState.REJECTED, 10) == []


def test_more_than_thirty_models_in_one_query_is_refused(store: JobStore) -> None:
    names = [f"gemini-{n}" for n in range(31)]
    with pytest.raises(Exception):  # noqa: B017 - Firestore raises its own error type, the fake a ValueError
        list(store.on_models(JobState.SUCCEEDED, names))


def test_markers_round_trip(store: JobStore) -> None:
    assert store.read_marker("model-lifecycle-checked-on") is None
    store.write_marker("model-lifecycle-checked-on", "2026-11-29")
    assert store.read_marker("model-lifecycle-checked-on") == "2026-11-29"
    store.write_marker("model-lifecycle-checked-on", "2026-11-30")
    assert store.read_marker("model-lifecycle-checked-on") == "2026-11-30"
    assert store.read_marker("another") is None


# ---- what Firestore refuses, the fake refuses too


def _refused_jobs() -> list[tuple[str, dict[str, object]]]:
    return [
        ("reserved field name", {"labels": {"__name__": "x"}}),
        ("array in an array", {"hyper_parameters": {"epochs": [[1]]}}),
        ("integer beyond 64 bits", {"hyper_parameters": {"epochs": 2**64}}),
        ("document over 1 MiB", {"display_name": "x" * 1_100_000}),
        ("empty field name", {"labels": {"": "x"}}),
    ]


@pytest.mark.parametrize(("why", "changes"), _refused_jobs(), ids=[w for w, _ in _refused_jobs()])
def test_what_firestore_refuses_the_fake_refuses(store: JobStore, why: str, changes: dict[str, object]) -> None:
    job = new_job(
        job_id=f"refused-{abs(hash(why))}",
        bucket="b",
        object_name="incoming/r.jsonl",
        generation="1",
        base_model="m",
        now=T0,
    )
    assert store.create(job)
    current = store.get(job.job_id)
    assert current is not None
    with pytest.raises(DocumentRefused):
        store.replace(replace(current.value, **changes), current.version)  # type: ignore[arg-type]
    with pytest.raises(DocumentRefused):
        store.create(replace(job, job_id=job.job_id + "-new", **changes))  # type: ignore[arg-type]
    # A document just under the limits is stored by both.
    assert store.replace(replace(current.value, display_name="y" * 900_000), current.version)


# ---- documents a newer release wrote


def test_a_job_in_a_state_this_release_does_not_know_is_skipped_not_a_crash(store: JobStore) -> None:
    known = new_job(job_id="known", bucket="b", object_name="incoming/k.jsonl", generation="1", base_model="m", now=T0)
    assert store.create(known.moved_to(JobState.QUEUED, T0, "x", enqueued_at=T0))
    future = {
        **known.to_document(),
        "job_id": "from-the-future",
        "state": "AWAITING_EVALUATION",  # a state a later release might add
        "evaluation": {"verdict": "pending"},  # and fields it might add
        "schema_version": 2,
    }
    if isinstance(store, InMemoryJobStore):
        store.put_document(future)
    else:
        assert isinstance(store, FirestoreJobStore)
        store._jobs.document("from-the-future").set(future)
    assert store.get("from-the-future") is None
    assert [v.value.job_id for v in store.in_states([JobState.QUEUED])] == ["known"]
    assert [v.value.job_id for v in store.queued(10)] == ["known"]
    stored = store.get("known")
    assert stored is not None and stored.value.schema_version == 1


def _queue(store: JobStore, job_id: str, team: str, priority: int, minute: int) -> None:
    at = T0.replace(minute=minute)
    job = new_job(
        job_id=job_id, bucket="b", object_name=f"incoming/{job_id}.jsonl", generation="1", base_model="m", now=at
    )
    assert store.create(replace(job, team=team, priority=priority).moved_to(JobState.QUEUED, at, "q", enqueued_at=at))


def test_queue_heads_and_a_teams_queue(store: JobStore) -> None:
    # The default team "" sorts first; each team's head is its highest priority, then its oldest job.
    _queue(store, "d-1", "", 0, 1)
    _queue(store, "a-old", "a", 0, 2)
    _queue(store, "a-urgent", "a", 5, 3)
    _queue(store, "a-late", "a", 0, 4)
    _queue(store, "b-1", "b", 0, 5)
    _put(store, "a-done", "m", JobState.SUCCEEDED)

    assert [v.value.job_id for v in store.queue_heads(limit=10)] == ["d-1", "a-urgent", "b-1"]
    assert [v.value.job_id for v in store.queue_heads(limit=2)] == ["d-1", "a-urgent"]
    assert [v.value.job_id for v in store.queued_in_team("a", limit=10)] == ["a-urgent", "a-old", "a-late"]
    assert [v.value.job_id for v in store.queued_in_team("a", limit=1)] == ["a-urgent"]
    assert store.queued_in_team("c", limit=5) == []


def test_fairness_document_round_trip_and_compare_and_set(store: JobStore) -> None:
    empty = store.read_fairness()
    assert empty.value == FairShareState() and empty.version is None
    state = FairShareState(
        teams={"": TeamUsage(12.5, True), "a": TeamUsage(3.0, False)},
        running={"job-1": RunningSlot("a", T0)},
    )
    assert store.write_fairness(state, None) is True
    assert store.write_fairness(state, None) is False  # created once only
    stored = store.read_fairness()
    assert stored.value == state
    assert store.write_fairness(FairShareState(), stored.version) is True
    assert store.write_fairness(state, stored.version) is False  # someone wrote meanwhile
    assert store.read_fairness().value == FairShareState()


def test_a_document_without_a_team_field_is_not_in_the_team_queries(store: JobStore) -> None:
    # Written by a release before teams: Firestore leaves a document out of a query on a field it lacks.
    _queue(store, "a-1", "a", 0, 1)
    legacy = new_job(
        job_id="legacy", bucket="b", object_name="incoming/l.jsonl", generation="1", base_model="m", now=T0
    )
    document = legacy.moved_to(JobState.QUEUED, T0, "q", enqueued_at=T0).to_document()
    del document["team"]
    if isinstance(store, InMemoryJobStore):
        store.put_document(document)
    else:
        assert isinstance(store, FirestoreJobStore)
        store._jobs.document("legacy").set(document)
    assert [v.value.job_id for v in store.queue_heads(limit=10)] == ["a-1"]
    assert store.queued_in_team("", limit=10) == []
    assert store.count_queued_in_team("") == 0
    # The priority-ordered queue, on fields the document has, still finds it (the backfill reads it there).
    assert sorted(v.value.job_id for v in store.queued(10)) == ["a-1", "legacy"]


def test_count_queued_in_team(store: JobStore) -> None:
    for n in range(3):
        _queue(store, f"a-{n}", "a", 0, n)
    _queue(store, "b-0", "b", 0, 5)
    _put(store, "a-done", "m", JobState.SUCCEEDED)
    assert store.count_queued_in_team("a") == 3
    assert store.count_queued_in_team("b") == 1
    assert store.count_queued_in_team("c") == 0


def test_spend_document_round_trip_and_compare_and_set(store: JobStore) -> None:
    empty = store.read_spend("a", "2026-11")
    assert empty.value == TeamSpend() and empty.version is None
    spend = TeamSpend({"job-1/1": Charge(12.5), "job-2/1": Charge(4.0, 3.25)}, settled_usd=100.5, settled_count=7)
    assert store.write_spend("a", "2026-11", spend, None) is True
    assert store.write_spend("a", "2026-11", spend, None) is False  # created once only
    stored = store.read_spend("a", "2026-11")
    assert stored.value == spend and stored.value.total_usd == 116.25
    assert store.read_spend("a", "2026-12").version is None  # another month, another document
    assert store.read_spend("b", "2026-11").version is None  # another team too
    assert store.write_spend("a", "2026-11", TeamSpend(), stored.version) is True
    assert store.write_spend("a", "2026-11", spend, stored.version) is False  # someone wrote meanwhile
    assert store.read_spend("a", "2026-11").value == TeamSpend()


def test_policy_records_are_kept_once_newest_first(store: JobStore) -> None:
    first = PolicyRecord("d1", '{"teams":{}}', "ops@example.com", "initial", T0)
    later = PolicyRecord("d2", '{"teams":{"a":{}}}', "sa@example.iam.gserviceaccount.com", "add a", T0.replace(day=2))
    assert store.record_policy(first) is True
    assert store.record_policy(later) is True
    # Another instance noting the same deployment later: kept once, with the first seen_at.
    assert store.record_policy(replace(first, seen_at=T0.replace(day=3))) is False
    history = store.policy_history(limit=10)
    assert [r.digest for r in history] == ["d2", "d1"]
    assert history[1].reason == "initial" and history[1].changed_by == "ops@example.com"
    assert [r.digest for r in store.policy_history(limit=1)] == ["d2"]
    # Going back to the first policies, with a change note of its own: a record of its own, the newest.
    back = replace(first, reason="back to the first", seen_at=T0.replace(day=4))
    assert store.record_policy(back) is True
    assert [(r.digest, r.reason) for r in store.policy_history(limit=1)] == [("d1", "back to the first")]


def test_slot_table_keeps_the_holders_teams(store: JobStore) -> None:
    table = SlotTable(holders={"job-1": T0, "job-2": T0}, teams={"job-1": "a"})
    assert store.write_slots(table, None) is True
    stored = store.read_slots()
    assert stored.value.teams == {"job-1": "a"} and set(stored.value.holders) == {"job-1", "job-2"}


def test_the_job_that_made_a_tuned_model_is_found_by_its_name(store: JobStore) -> None:
    model = "projects/p/locations/us-central1/models/123@2"
    _put(store, "made-it", "gemini-3.5-flash", JobState.SUCCEEDED)
    _put(store, "another", "gemini-3.5-flash", JobState.SUCCEEDED)
    made = store.get("made-it")
    assert made is not None
    assert store.replace(replace(made.value, tuned_model=model), made.version)

    found = store.with_tuned_model(model)
    assert found is not None and found.value.job_id == "made-it"
    assert store.replace(replace(found.value, priority=3), found.version)  # its version is current
    assert store.with_tuned_model("projects/p/locations/us-central1/models/123") is None  # exactly as recorded
    assert store.with_tuned_model("projects/p/locations/us-central1/models/123@1") is None


def test_an_alias_round_trips_and_moves_by_compare_and_set(store: JobStore) -> None:
    assert store.read_alias("support-bot") is None
    first = Champion(
        "job-1", "projects/p/locations/us-central1/models/1@1", "projects/p/locations/us-central1/endpoints/1", T0
    )
    assert store.write_alias(Alias("support-bot", "support").promoted(first), None)
    assert not store.write_alias(Alias("support-bot", "support"), None)  # exists already
    read = store.read_alias("support-bot")
    assert read is not None and read.value.champion == first
    second = Champion("job-2", "m2", "e2", T0, checkpoint_id="3", actor="ops@example.com", reason="better")
    moved = read.value.promoted(second)
    assert store.write_alias(moved, read.version)
    assert not store.write_alias(moved.rolled_back(), read.version)  # it changed since that read
    now = store.read_alias("support-bot")
    assert now is not None and now.value == moved and now.value.history == (first,)
    # An operator's rollback, written with its announcement: every field comes back as written.
    announcement = Announcement("support-bot/1", "rollback", "ops@example.com", "users report worse answers")
    back = msgspec.structs.replace(now.value.rolled_back(), revision=1, pending=announcement)
    assert back.retired == ("job-2",)
    assert store.write_alias(back, now.version)
    pending = store.read_alias("support-bot")
    assert pending is not None and pending.value == back
    assert store.write_alias(msgspec.structs.replace(back, pending=None), pending.version)
    cleared = store.read_alias("support-bot")
    assert cleared is not None and cleared.value.pending is None and cleared.value.retired == ("job-2",)
    assert [a.champion.job_id for a in store.list_aliases(10) if a.champion] == ["job-1"]
