"""Base models retire: uploads, dispatch, the daily check, retune and cold start follow the registry's dates.

Every test runs on an injected clock. The dates are the registry's own (gemini-2.5-flash: new tuning
closes 2026-09-16, retires 2026-10-16; the seeds' models are long retired), so the tests read them
from the registry rather than repeating them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.clock import FakeClock
from shared.errors import ConfigError, NotAllowed
from shared.jobs import JobState
from shared.services.retirement import CHECKED_MARKER
from shared.validation.registry import get_model, registry
from tests.eventschema import assert_valid_completion
from tests.fakes import (
    Harness,
    make_harness,
)

EVENTS = {"TUNEDROP_EVENTS_TOPIC": "tunedrop-events"}
RETIRING = "gemini-2.5-flash"


def lifecycle_of(name: str) -> tuple[date, date]:
    spec = get_model(name)
    assert spec is not None and spec.lifecycle.tuning_closes and spec.lifecycle.retires
    return spec.lifecycle.tuning_closes, spec.lifecycle.retires


def at(day: date, hour: int = 12) -> FakeClock:
    return FakeClock(datetime(day.year, day.month, day.day, hour, tzinfo=UTC))


def to_day(h: Harness, day: date, hour: int = 12) -> None:
    h.clock.now = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def events(h: Harness, kind: str) -> list[dict[str, object]]:
    return [m.json() for m in h.publisher.on(EVENTS["TUNEDROP_EVENTS_TOPIC"]) if m.attributes["kind"] == kind]


# ---- uploads


@pytest.mark.parametrize(
    "model", ["gemini-1.0-pro-002", "gemini-1.5-pro-002", "gemini-1.5-flash-002", "gemini-2.0-flash-001"]
)
def test_an_upload_naming_a_retired_model_is_rejected_naming_its_successor(model: str) -> None:
    h = make_harness(clock=at(date(2026, 11, 29)))
    job_id = h.upload(metadata={"base_model": model})
    job = h.job(job_id)
    assert job.state is JobState.REJECTED
    assert job.error is not None and job.error["code"] == "model_retired"
    spec = get_model(model)
    assert spec is not None
    successor = registry().successor(spec, date(2026, 11, 29))
    assert successor is not None and f"Use {successor.name} instead" in job.error["message"]
    # The data was still checked against the retired model's rules: the report names it, not the default.
    assert job.validation["model"] == spec.name
    assert h.tuning.calls["create"] == 0
    (event,) = h.completions()
    assert_valid_completion(event.attributes, event.json())
    assert event.json()["error"]["code"] == "model_retired"


def test_an_upload_while_tuning_is_closed_is_rejected_model_tuning_closed() -> None:
    closes, retires = lifecycle_of(RETIRING)
    h = make_harness(clock=at(closes + timedelta(days=3)))
    job = h.job(h.upload(metadata={"base_model": RETIRING}))
    assert job.state is JobState.REJECTED
    assert job.error is not None and job.error["code"] == "model_tuning_closed"
    assert str(retires) in job.error["message"]


def test_a_model_closing_within_the_setting_warns_in_the_report_and_the_event() -> None:
    closes, _ = lifecycle_of(RETIRING)
    h = make_harness(clock=at(closes - timedelta(days=10)))
    job_id = h.upload(metadata={"base_model": RETIRING})
    job = h.job(job_id)
    assert job.state is JobState.QUEUED and job.warnings == ["model_retiring"]
    report = h.blobs.read(h.settings.bucket, f"reports/{job.team}/{job_id}.json")
    assert b'"model_retiring"' in report
    # Outside the window (the setting is 5 days here) there is no warning.
    quiet = make_harness({"TUNEDROP_MODEL_RETIRING_DAYS": "5"}, clock=at(closes - timedelta(days=10)))
    assert quiet.job(quiet.upload(metadata={"base_model": RETIRING})).warnings == []
    # The warning travels to the completion event, which still validates against the schema.
    h.app.dispatcher.dispatch()
    h.tuning.succeed(h.job(job_id).vertex_job_name)
    h.app.poller.poll()
    (event,) = h.completions()
    assert event.json()["warnings"] == ["model_retiring"]
    assert_valid_completion(event.attributes, event.json())


def test_an_alias_is_recorded_and_sent_as_the_registry_id() -> None:
    h = make_harness(clock=at(date(2026, 1, 10)))
    job = h.job(h.upload(metadata={"base_model": "GEMINI-2.0-FLASH"}))
    assert job.state is JobState.QUEUED and job.base_model == "gemini-2.0-flash-001"


# ---- dispatch


def test_a_job_queued_before_its_model_closes_and_dispatched_after_ends_failed_unsubmitted() -> None:
    closes, _ = lifecycle_of(RETIRING)
    h = make_harness(clock=at(closes - timedelta(days=1), hour=23))
    first = h.upload("first.jsonl", metadata={"base_model": RETIRING})
    waiting = h.upload("waiting.jsonl", metadata={"base_model": RETIRING})
    assert h.app.dispatcher.dispatch() == [first]  # quota 1: the second one waits
    to_day(h, closes, hour=0)
    h.tuning.succeed(h.job(first).vertex_job_name)
    h.app.poller.poll()  # frees the slot; the daily check also runs
    assert h.app.dispatcher.dispatch() == []
    job = h.job(waiting)
    assert job.state is JobState.FAILED and job.vertex_job_name == ""
    assert job.error is not None and job.error["code"] == "model_tuning_closed"
    assert h.tuning.calls["create"] == 1 and list(h.store.slot_holders()) == []
    failed = [e for e in h.completions() if e.json()["job_id"] == waiting]
    assert len(failed) == 1 and failed[0].json()["error"]["code"] == "model_tuning_closed"
    assert_valid_completion(failed[0].attributes, failed[0].json())


def test_the_dispatcher_fails_a_closed_job_at_the_head_and_submits_the_next() -> None:
    closes, _ = lifecycle_of(RETIRING)
    h = make_harness(clock=at(closes - timedelta(days=1)))
    old = h.upload("old.jsonl", metadata={"base_model": RETIRING, "priority": "9"})
    to_day(h, closes)
    current = h.upload("current.jsonl", metadata={"base_model": "gemini-3.5-flash"})
    assert h.app.dispatcher.dispatch() == [current]
    assert h.job(old).state is JobState.FAILED


def test_the_daily_check_fails_queued_jobs_of_a_closed_model_while_the_quota_is_full() -> None:
    closes, _ = lifecycle_of(RETIRING)
    h = make_harness(clock=at(closes - timedelta(days=1)))
    running = h.upload("running.jsonl", metadata={"base_model": "gemini-3.5-flash"})
    h.app.dispatcher.dispatch()
    waiting = h.upload("waiting.jsonl", metadata={"base_model": RETIRING})
    to_day(h, closes)
    h.app.poller.poll()
    assert h.job(waiting).state is JobState.FAILED
    assert h.job(running).state is JobState.RUNNING


# ---- tuned models retiring with their base model


def succeeded_job(h: Harness, model: str = RETIRING) -> str:
    job_id = h.upload(metadata={"base_model": model})
    h.app.dispatcher.dispatch()
    h.tuning.succeed(h.job(job_id).vertex_job_name)
    h.app.poller.poll()
    assert h.job(job_id).state is JobState.SUCCEEDED
    return job_id


def test_each_retirement_threshold_is_announced_once_and_recorded() -> None:
    _, retires = lifecycle_of(RETIRING)
    h = make_harness(EVENTS, clock=at(retires - timedelta(days=60)))
    job_id = succeeded_job(h)
    other = succeeded_job(h, "gemini-3.5-flash")  # its base model has no retirement date
    for day in range(60, 0, -1):  # every day, many ticks a day
        to_day(h, retires - timedelta(days=day), hour=1)
        h.app.poller.poll()
        h.clock.advance(3600)
        h.app.poller.poll()
    notices = events(h, "model_retiring")
    assert [(n["job_id"], n["threshold_days"], n["days_left"]) for n in notices] == [(job_id, 30, 30), (job_id, 7, 7)]
    assert h.job(job_id).retirement_notices == [30, 7] and h.job(other).retirement_notices == []
    first = notices[0]
    assert first["retires"] == str(retires) and first["tuned_model"] == h.job(job_id).tuned_model
    assert first["replacement"] == "gemini-3.5-flash-lite"
    assert first["retune_command"] == (
        f'tunedrop retune {job_id} --model gemini-3.5-flash-lite --reason "its base model retires"'
    )
    ids = [m.attributes["ce-id"] for m in h.publisher.on("tunedrop-events") if m.attributes["kind"] == "model_retiring"]
    assert ids == [f"{job_id}/1/model_retiring/30", f"{job_id}/1/model_retiring/7"]
    assert all(
        m.attributes["ce-type"] == "tunedrop.job.v1.lifecycle.model_retiring"
        for m in h.publisher.on("tunedrop-events")
        if m.attributes["kind"] == "model_retiring"
    )


def test_a_check_started_late_announces_the_tightest_threshold_once() -> None:
    _, retires = lifecycle_of(RETIRING)
    h = make_harness(EVENTS, clock=at(retires - timedelta(days=40)))
    job_id = succeeded_job(h)
    to_day(h, retires - timedelta(days=5))
    h.app.poller.poll()
    notices = events(h, "model_retiring")
    assert [(n["job_id"], n["threshold_days"]) for n in notices] == [(job_id, 7)]
    assert h.job(job_id).retirement_notices == [30, 7]


def test_the_check_runs_once_a_day_and_again_when_cut_short(monkeypatch: pytest.MonkeyPatch) -> None:
    _, retires = lifecycle_of(RETIRING)
    h = make_harness(EVENTS, clock=at(retires - timedelta(days=31)))
    job_id = succeeded_job(h)
    to_day(h, retires - timedelta(days=30))
    h.app.poller.poll()
    watch = h.app.poller.retirement
    assert h.store.read_marker(CHECKED_MARKER) == str(retires - timedelta(days=30))
    assert not watch.daily().ran  # already done today
    # A check that fails part-way does not mark the day, so the next tick runs it again.
    to_day(h, retires - timedelta(days=7))
    calls = {"n": 0}
    original = h.store.on_models

    def flaky(state: JobState, models: list[str]):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("Firestore went away")
        return original(state, models)

    monkeypatch.setattr(h.store, "on_models", flaky)
    h.app.poller.poll()  # the tick itself goes on
    assert h.store.read_marker(CHECKED_MARKER) != str(retires - timedelta(days=7))
    h.app.poller.poll()
    assert h.store.read_marker(CHECKED_MARKER) == str(retires - timedelta(days=7))
    assert [n["threshold_days"] for n in events(h, "model_retiring") if n["job_id"] == job_id] == [30, 7]


# ---- retune


def test_retune_makes_a_linked_job_on_the_successor_validated_afresh() -> None:
    _, retires = lifecycle_of(RETIRING)
    h = make_harness(clock=at(retires - timedelta(days=40)))
    original = succeeded_job(h)
    h.clock.advance(86_400)
    retuned = h.app.uploads.retune(original)
    assert retuned.retuned_from == original and retuned.job_id != original
    assert retuned.base_model == "gemini-3.5-flash-lite" and retuned.state is JobState.QUEUED
    assert retuned.validation["model"] == "gemini-3.5-flash-lite"
    assert (retuned.dataset_uri, retuned.generation) == (h.job(original).dataset_uri, h.job(original).generation)
    assert h.app.uploads.retune(original).job_id == retuned.job_id  # asking twice is one job
    h.clock.advance(60)
    assert h.app.uploads.retune(original, "gemini-3.1-flash-lite").job_id != retuned.job_id
    h.app.dispatcher.dispatch()
    (request,) = [r for r in h.tuning.requests if r.job_id == retuned.job_id]
    assert request.base_model == "gemini-3.5-flash-lite"


def test_retune_refuses_active_jobs_and_unknown_models() -> None:
    h = make_harness(clock=at(date(2026, 11, 29)))
    job_id = h.upload()
    with pytest.raises(NotAllowed, match="QUEUED"):
        h.app.uploads.retune(job_id)
    rejected = h.upload("old.jsonl", metadata={"base_model": "gemini-1.5-pro-002"})
    with pytest.raises(NotAllowed, match="gemini-9"):
        h.app.uploads.retune(rejected, "gemini-9")
    again = h.app.uploads.retune(rejected)  # a rejection for a retired model is retuned on its successor
    assert again.state is JobState.QUEUED and again.base_model == "gemini-3.5-flash-lite"


def test_retune_on_a_model_whose_rules_the_data_breaks_is_rejected() -> None:
    h = make_harness(clock=at(date(2026, 1, 10)))
    original = succeeded_job(h, "gemini-2.5-flash")
    job = h.app.uploads.retune(original, "gemini-1.0-pro-002")  # legacy `messages` format, long retired
    assert job.state is JobState.REJECTED and job.error is not None
    assert job.error["code"] == "model_retired"
    assert "missing_messages" in job.validation["error_counts"] or job.validation["error_count"] > 1


# ---- cold start


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-9"])
def test_a_default_model_that_cannot_be_tuned_stops_the_upload_function(model: str) -> None:
    h = make_harness({"TUNEDROP_BASE_MODEL": model}, clock=at(date(2026, 11, 29)))
    obj = h.put_dataset("a.jsonl")
    with pytest.raises(ConfigError, match="TUNEDROP_BASE_MODEL") as info:
        h.app.uploads.handle(obj)
    assert str(info.value).count("\n") == 0  # one message
    if model == "gemini-2.5-flash":
        assert "gemini-3.5-flash-lite" in str(info.value)
    assert h.store.jobs() == []  # nothing was recorded: the notification is delivered again once it is fixed
    # The poller and the dispatcher, which never use the default, keep working.
    assert h.app.poller.poll() == [] and h.app.dispatcher.dispatch() == []


def test_a_job_failed_for_its_model_is_not_retried_but_pointed_to_retune() -> None:
    closes, _ = lifecycle_of(RETIRING)
    h = make_harness(clock=at(closes - timedelta(days=1)))
    job_id = h.upload(metadata={"base_model": RETIRING})
    to_day(h, closes)
    h.app.dispatcher.dispatch()
    assert h.job(job_id).state is JobState.FAILED
    with pytest.raises(NotAllowed, match=f"tunedrop retune {job_id}"):
        h.app.operations.retry(job_id)
    assert h.job(job_id).state is JobState.FAILED


def test_a_retirement_notice_that_could_not_be_published_is_tried_again_the_next_day() -> None:
    _, retires = lifecycle_of(RETIRING)
    h = make_harness(EVENTS, clock=at(retires - timedelta(days=31)))
    job_id = succeeded_job(h)
    to_day(h, retires - timedelta(days=30))
    h.publisher.fail_next(topic=EVENTS["TUNEDROP_EVENTS_TOPIC"])
    h.app.poller.poll()
    assert events(h, "model_retiring") == [] and h.job(job_id).retirement_notices == []
    to_day(h, retires - timedelta(days=29))
    h.app.poller.poll()
    assert [n["threshold_days"] for n in events(h, "model_retiring")] == [30]
    assert h.job(job_id).retirement_notices == [30]
