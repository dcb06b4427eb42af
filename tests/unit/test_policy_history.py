"""The team policies' history: each distinct version kept once, with who changed it and why (issue 13, item 6)."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime

import pytest

from shared.clock import FakeClock
from shared.errors import TransientError
from shared.policy import Policies
from shared.ports import PolicyRecord
from shared.services.policy_history import PolicyHistory
from tests.fakes import InMemoryJobStore

T0 = datetime(2026, 11, 30, 9, tzinfo=UTC)


def document(change: dict[str, str] | None = None, **teams: dict[str, object]) -> str:
    return json.dumps({"default": {"max_priority": 10}, "teams": teams, "change": change})


SEARCH_TWO_SLOTS = document({"changed_by": "alice@example.com", "reason": "launch"}, search={"max_slots": 2})
SEARCH_THREE_SLOTS = document({"changed_by": "bob@example.com", "reason": "more"}, search={"max_slots": 3})


def instance(store: InMemoryJobStore, text: str, clock: FakeClock | None = None) -> PolicyHistory:
    """One function instance's history service, running with the policies `text` declares."""
    return PolicyHistory(store, Policies.from_json(text), clock or FakeClock(T0))


def test_a_version_is_kept_once_with_who_changed_it_why_and_when() -> None:
    store = InMemoryJobStore()
    clock = FakeClock(T0)
    assert instance(store, SEARCH_TWO_SLOTS, clock).note_deployed() is True
    policies = Policies.from_json(SEARCH_TWO_SLOTS)
    assert store.policy_history(10) == [
        PolicyRecord(
            digest=hashlib.sha256(policies.canonical_json().encode()).hexdigest(),
            policies=policies.canonical_json(),
            changed_by="alice@example.com",
            reason="launch",
            seen_at=T0,
        )
    ]


def test_two_instances_of_the_same_deployment_keep_one_version() -> None:
    store = InMemoryJobStore()
    first, second = instance(store, SEARCH_TWO_SLOTS), instance(store, SEARCH_TWO_SLOTS)
    assert first.note_deployed() is True
    assert second.note_deployed() is False
    assert len(store.policy_history(10)) == 1


def test_instances_noting_at_once_keep_one_version() -> None:
    store = InMemoryJobStore()
    instances = [instance(store, SEARCH_TWO_SLOTS) for _ in range(8)]
    start = threading.Barrier(len(instances))
    kept: list[bool] = []

    def note(history: PolicyHistory) -> None:
        start.wait()
        kept.append(history.note_deployed())

    threads = [threading.Thread(target=note, args=(history,)) for history in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(kept) == [False] * 7 + [True]
    assert len(store.policy_history(10)) == 1


def test_an_instance_notes_its_policies_once() -> None:
    store = InMemoryJobStore()
    history = instance(store, SEARCH_TWO_SLOTS)
    assert [history.note_deployed() for _ in range(3)] == [True, False, False]
    assert store.calls["record_policy"] == 1


def test_a_changed_policy_is_a_second_version_listed_first() -> None:
    store = InMemoryJobStore()
    instance(store, SEARCH_TWO_SLOTS, FakeClock(T0)).note_deployed()
    later = FakeClock(datetime(2026, 12, 1, tzinfo=UTC))
    assert instance(store, SEARCH_THREE_SLOTS, later).note_deployed() is True
    history = instance(store, SEARCH_THREE_SLOTS)
    assert [(r.changed_by, r.reason) for r in history.history()] == [
        ("bob@example.com", "more"),
        ("alice@example.com", "launch"),
    ]
    current = history.current()
    assert current is not None and current.digest == Policies.from_json(SEARCH_THREE_SLOTS).digest


def test_a_new_change_note_on_the_same_policies_is_a_record_of_the_same_version() -> None:
    store = InMemoryJobStore()
    instance(store, SEARCH_TWO_SLOTS).note_deployed()
    renoted = document({"changed_by": "carol@example.com", "reason": "typo"}, search={"max_slots": 2})
    assert instance(store, renoted, FakeClock(T0.replace(hour=10))).note_deployed() is True
    newest, first = store.policy_history(10)
    assert newest.changed_by == "carol@example.com" and first.changed_by == "alice@example.com"
    assert newest.digest == first.digest  # the same policies


def test_going_back_to_an_earlier_version_is_recorded_and_is_the_current_one() -> None:
    store = InMemoryJobStore()
    clock = FakeClock()
    first = document({"changed_by": "alice@example.com", "reason": "launch"}, search={"max_slots": 2})
    second = document({"changed_by": "bob@example.com", "reason": "more"}, search={"max_slots": 4})
    back = document({"changed_by": "carol@example.com", "reason": "undo bob"}, search={"max_slots": 2})
    for text in (first, second, back):
        clock.advance(60)
        assert PolicyHistory(store, Policies.from_json(text), clock).note_deployed() is True
    current = PolicyHistory(store, Policies.from_json(back), clock).current()
    assert current is not None and (current.changed_by, current.reason) == ("carol@example.com", "undo bob")
    assert current.digest == Policies.from_json(first).digest


def test_nothing_configured_and_nobody_named_keeps_nothing() -> None:
    store = InMemoryJobStore()
    for text in ("", '{"default": {}, "teams": {}}'):
        assert instance(store, text).note_deployed() is False
    assert store.calls["record_policy"] == 0 and store.writes == 0


def test_going_back_to_the_built_in_policies_through_terraform_is_a_version() -> None:
    store = InMemoryJobStore()
    back = json.dumps({"default": {}, "teams": {}, "change": {"changed_by": "alice@example.com", "reason": "undo"}})
    assert instance(store, back).note_deployed() is True
    (record,) = store.policy_history(10)
    assert (record.digest, record.reason) == (Policies().digest, "undo")


def test_a_failed_write_is_tried_again_at_the_next_call(monkeypatch: pytest.MonkeyPatch) -> None:
    store = InMemoryJobStore()
    history = instance(store, SEARCH_TWO_SLOTS)
    real = store.record_policy

    def unavailable(record: PolicyRecord) -> bool:
        raise TransientError("Firestore is unavailable")

    monkeypatch.setattr(store, "record_policy", unavailable)
    assert history.note_deployed() is False
    monkeypatch.setattr(store, "record_policy", real)
    assert history.note_deployed() is True
    assert len(store.policy_history(10)) == 1


def test_no_version_kept_means_no_current_one() -> None:
    history = instance(InMemoryJobStore(), SEARCH_TWO_SLOTS)
    assert history.current() is None and history.history() == []
