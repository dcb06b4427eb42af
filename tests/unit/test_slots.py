"""The slot ledger: never more holders than the quota, even under concurrent claims."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shared.clock import FakeClock
from shared.ports import SlotTable, Versioned
from shared.services.slots import MAX_CAS_ATTEMPTS, SlotContention, SlotLedger
from tests.fakes import InMemoryJobStore


def ledger(store: InMemoryJobStore | None = None) -> SlotLedger:
    return SlotLedger(store or InMemoryJobStore(), FakeClock(), sleep=lambda _: None)


def test_claim_up_to_the_quota_then_refuse() -> None:
    store = InMemoryJobStore()
    slots = ledger(store)
    assert slots.claim("a", 2) is True
    assert slots.claim("b", 2) is True
    assert slots.claim("c", 2) is False
    assert set(store.slot_holders()) == {"a", "b"}


def test_a_holder_claiming_again_keeps_its_slot_and_moves_the_version() -> None:
    store = InMemoryJobStore()
    slots = ledger(store)
    slots.claim("a", 1)
    before = store.read_slots().version
    assert slots.claim("a", 1) is True  # already holds one: not refused at a full table
    assert store.read_slots().version != before
    assert list(store.slot_holders()) == ["a"]


def test_release_frees_the_slot() -> None:
    store = InMemoryJobStore()
    slots = ledger(store)
    slots.claim("a", 1)
    assert slots.release("a") is True
    assert slots.release("a") is False  # nothing to free
    assert slots.claim("b", 1) is True
    assert slots.holders().keys() == {"b"}


def test_claim_records_when() -> None:
    clock = FakeClock()
    slots = SlotLedger(InMemoryJobStore(), clock, sleep=lambda _: None)
    slots.claim("a", 1)
    assert slots.holders() == {"a": clock.now}


def test_sweep_frees_only_stale_holders() -> None:
    store = InMemoryJobStore()
    slots = ledger(store)
    for job_id in ("a", "b", "c"):
        slots.claim(job_id, 3)
    assert sorted(slots.sweep(lambda job_id: job_id != "b")) == ["a", "c"]
    assert list(store.slot_holders()) == ["b"]
    assert slots.sweep(lambda job_id: False) == []


def test_sweep_on_an_empty_table() -> None:
    assert ledger().sweep(lambda job_id: True) == []


class RacingStore(InMemoryJobStore):
    """Lets another writer change the slot table between a reader's read and its write."""

    def __init__(self, interloper_writes: int) -> None:
        super().__init__()
        self.interloper_writes = interloper_writes

    def read_slots(self) -> Versioned[SlotTable]:
        seen = super().read_slots()
        if self.interloper_writes > 0:
            self.interloper_writes -= 1
            holders = dict(seen.value.holders)
            holders[f"other-{self.interloper_writes}"] = FakeClock()()
            assert super().write_slots(SlotTable(holders), seen.version)
        return seen


def test_a_lost_race_rereads_and_respects_the_winner() -> None:
    store = RacingStore(interloper_writes=1)
    slots = ledger(store)
    # Our first read saw an empty table, but the interloper took the only slot first.
    assert slots.claim("mine", 1) is False
    assert list(store.slot_holders()) == ["other-0"]


def test_endless_contention_gives_up_with_a_transient_error() -> None:
    store = RacingStore(interloper_writes=10_000)
    sleeps: list[float] = []
    slots = SlotLedger(store, FakeClock(), sleep=sleeps.append)
    with pytest.raises(SlotContention):
        slots.claim("mine", 100_000)
    assert len(sleeps) == MAX_CAS_ATTEMPTS
    assert all(0 <= s <= 0.2 for s in sleeps)


class PausingStore(InMemoryJobStore):
    """Pauses after each slot-table read, so other threads read the same version meanwhile."""

    def read_slots(self) -> Versioned[SlotTable]:
        seen = super().read_slots()
        time.sleep(0.0005)
        return seen


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads very often, so read-then-write races really happen."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@pytest.mark.parametrize("quota", [1, 3, 7])
def test_concurrent_claims_never_exceed_the_quota(quota: int, busy_switching: None) -> None:
    store = PausingStore()
    slots = SlotLedger(store, FakeClock())  # real (tiny, jittered) back-off sleeps
    threads = 32
    barrier = threading.Barrier(threads)
    results: dict[str, Any] = {}
    overfull: list[int] = []

    def worker(n: int) -> None:
        job_id = f"job-{n}"
        barrier.wait()
        try:
            results[job_id] = slots.claim(job_id, quota)
        except SlotContention as exc:  # allowed (the delivery is retried), never an overfull table
            results[job_id] = exc
        held = len(store.slot_holders())
        if held > quota:
            overfull.append(held)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=20)
    assert not overfull
    winners = {job_id for job_id, granted in results.items() if granted is True}
    assert len(results) == threads
    assert set(store.slot_holders()) == winners
    assert len(winners) == quota  # with free slots and a retrying claim, every slot is taken


def test_concurrent_claims_and_releases_keep_the_table_consistent(busy_switching: None) -> None:
    store = PausingStore()
    slots = SlotLedger(store, FakeClock())
    quota = 2
    granted_at_once: list[int] = []
    lock = threading.Lock()
    holding: set[str] = set()

    def worker(n: int) -> None:
        for round_ in range(20):
            job_id = f"job-{n}-{round_}"
            if slots.claim(job_id, quota):
                with lock:
                    holding.add(job_id)
                    granted_at_once.append(len(holding))
                with lock:
                    holding.discard(job_id)
                assert slots.release(job_id)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=20)
    assert granted_at_once, "nobody ever got a slot"
    assert max(granted_at_once) <= quota
    assert store.slot_holders() == {}
