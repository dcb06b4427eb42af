"""The fakes keep the ports' contracts: the service tests are only as good as these."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.clock import FakeClock
from shared.errors import TransientError
from shared.jobs import Job, JobState, new_job
from shared.ports import ObjectMissing, QuotaExhausted, RemoteState, SlotTable, TuningRequest
from tests.fakes import (
    ATTEMPT_LABEL,
    JOB_LABEL,
    FakeTuningService,
    InMemoryBlobStore,
    InMemoryJobStore,
    RecordingPublisher,
    seed_job,
)

CLOCK = FakeClock()


def _job(job_id: str = "a-1") -> Job:
    return new_job(
        job_id=job_id, bucket="ds", object_name=f"incoming/{job_id}.jsonl", generation="1", base_model="m", now=CLOCK()
    )


def test_create_refuses_an_existing_id() -> None:
    store = InMemoryJobStore()
    assert store.create(_job()) is True
    assert store.create(_job()) is False
    assert len(store.jobs()) == 1


def test_replace_is_compare_and_set_on_an_int_version() -> None:
    store = InMemoryJobStore()
    store.create(_job())
    first = store.get("a-1")
    assert first is not None and isinstance(first.version, int)
    queued = first.value.moved_to(JobState.QUEUED, CLOCK(), "ok")
    assert store.replace(queued, first.version) is True
    # A second writer that read the same version loses.
    assert store.replace(first.value.moved_to(JobState.REJECTED, CLOCK(), "late"), first.version) is False
    assert store.job("a-1").state is JobState.QUEUED
    second = store.get("a-1")
    assert second is not None and second.version != first.version


def test_replace_of_a_missing_job_is_refused() -> None:
    assert InMemoryJobStore().replace(_job(), 1) is False


def test_reads_are_copies() -> None:
    store = InMemoryJobStore()
    store.create(_job())
    got = store.get("a-1")
    assert got is not None
    got.value.labels["x"] = "y"
    assert store.job("a-1").labels == {}


def test_queued_orders_by_priority_then_fifo_and_limits() -> None:
    store = InMemoryJobStore()
    t0 = CLOCK()
    specs = [("old-low", 0, 0), ("new-high", 5, 30), ("old-high", 5, 10), ("new-low", 0, 20)]
    for job_id, priority, offset in specs:
        seed_job(
            store, _job(job_id), [JobState.QUEUED], t0, priority=priority, enqueued_at=t0 + timedelta(seconds=offset)
        )
    seed_job(store, _job("rejected"), [JobState.REJECTED], t0)
    assert [v.value.job_id for v in store.queued(10)] == ["old-high", "new-high", "old-low", "new-low"]
    assert [v.value.job_id for v in store.queued(2)] == ["old-high", "new-high"]


def test_in_states_and_completion_pending() -> None:
    store = InMemoryJobStore()
    seed_job(store, _job("q"), [JobState.QUEUED], CLOCK())
    seed_job(store, _job("r"), [JobState.REJECTED], CLOCK())
    assert [v.value.job_id for v in store.in_states([JobState.QUEUED, JobState.VALIDATING])] == ["q"]
    assert [v.value.job_id for v in store.completion_pending()] == ["r"]


def test_slot_table_create_once_then_compare_and_set() -> None:
    store = InMemoryJobStore()
    empty = store.read_slots()
    assert empty.version is None and dict(empty.value.holders) == {}
    assert store.write_slots(SlotTable({"a": CLOCK()}), None) is True
    assert store.write_slots(SlotTable({"b": CLOCK()}), None) is False  # exists now
    current = store.read_slots()
    assert set(current.value.holders) == {"a"}
    assert store.write_slots(SlotTable({}), current.version) is True
    assert store.write_slots(SlotTable({"c": CLOCK()}), current.version) is False  # stale
    assert store.slot_holders() == {}


def test_store_counts_reads() -> None:
    store = InMemoryJobStore()
    store.create(_job())
    store.reset_counters()
    store.get("a-1")
    store.queued(5)  # matches nothing: still one read
    assert store.reads == 2
    assert store.calls["get"] == 1 and store.calls["queued"] == 1


def test_publisher_records_and_injects_failures() -> None:
    publisher = RecordingPublisher()
    assert publisher.publish("t", b"1", {"k": "v"}) == "1"
    publisher.fail_next(topic="other")
    publisher.publish("t", b"2", {})
    with pytest.raises(TransientError):
        publisher.publish("other", b"lost", {})
    publisher.fail_next(after_send=True)
    with pytest.raises(TransientError):
        publisher.publish("t", b"sent", {})
    assert [(m.topic, m.data) for m in publisher.messages] == [("t", b"1"), ("t", b"2"), ("t", b"sent")]
    assert publisher.messages[0].attributes == {"k": "v"}
    assert publisher.attempts == 4


def test_tuning_quota_labels_and_scripts() -> None:
    clock = FakeClock()
    tuning = FakeTuningService(quota=1, clock=clock)
    request = TuningRequest(
        job_id="a-1", attempt=1, base_model="m", training_dataset_uri="gs://ds/a", labels={"k": "v"}
    )
    remote = tuning.create(request)
    assert remote.labels == {"k": "v", JOB_LABEL: "a-1", ATTEMPT_LABEL: "1"}
    with pytest.raises(QuotaExhausted):
        tuning.create(request)
    assert tuning.find("a-1", 1) == remote
    assert tuning.find("a-1", 2) is None
    tuning.script(remote.name, "JOB_STATE_RUNNING", RemoteState.SUCCEEDED)
    assert tuning.get(remote.name).state == "JOB_STATE_RUNNING"
    assert tuning.get(remote.name).terminal_state is JobState.SUCCEEDED
    assert tuning.get(remote.name).state == RemoteState.SUCCEEDED  # script exhausted: stays
    tuning.create(request)  # the slot is free again
    assert tuning.creates == 2


def test_blob_store_generations_and_missing_objects() -> None:
    blobs = InMemoryBlobStore()
    first = blobs.put("ds", "incoming/a.jsonl", b"line1\nline2\n", metadata={"priority": "3"})
    with blobs.open("ds", "incoming/a.jsonl", first.generation) as reader:
        assert list(reader) == [b"line1\n", b"line2\n"]
    second = blobs.put("ds", "incoming/a.jsonl", b"new\n")
    assert second.generation != first.generation
    with pytest.raises(ObjectMissing):
        blobs.open("ds", "incoming/a.jsonl", first.generation)
    with pytest.raises(ObjectMissing):
        blobs.open("ds", "incoming/none.jsonl")
    assert blobs.write("ds", "reports/x.json", b"{}", "application/json") == "gs://ds/reports/x.json"
    assert blobs.read("ds", "reports/x.json") == b"{}"
    assert first.resource()["id"] == f"ds/incoming/a.jsonl#{first.generation}"
