"""Lifecycle events: each step has its own ce-id, even two steps of one kind or of two attempts."""

from __future__ import annotations

from shared.ports import RemoteState
from tests.fakes import Harness, make_harness


def test_lifecycle_event_ids_differ_for_two_events_of_one_kind() -> None:
    h = make_harness(
        env={
            "TUNEDROP_EVENTS_TOPIC": "tunedrop-events",
            "TUNEDROP_STUCK_SECONDS": "60",
            "TUNEDROP_MAX_RUNNING_SECONDS": "120",
        }
    )
    job_id = h.upload("a.jsonl")
    h.app.dispatcher.dispatch()
    h.clock.advance(61)
    h.app.poller.poll()  # pending too long
    name = h.job(job_id).vertex_job_name
    h.tuning.set_state(name, RemoteState.RUNNING)
    h.clock.advance(200)
    h.app.poller.poll()  # running too long
    stuck = [p.attributes["ce-id"] for p in h.publisher.on("tunedrop-events") if p.attributes["kind"] == "stuck"]
    assert len(stuck) == 2 and len(set(stuck)) == 2
    assert h.job(job_id).warnings == ["stuck_pending", "running_too_long"]


def test_retry_announces_the_job_queued_again(make_app) -> None:  # type: ignore[no-untyped-def]
    h: Harness = make_app(env={"TUNEDROP_EVENTS_TOPIC": "tunedrop-events"})
    job_id = h.upload("a.jsonl")
    h.app.dispatcher.dispatch()
    h.tuning.set_state(h.job(job_id).vertex_job_name, RemoteState.FAILED, error_code=13, error_message="x")
    h.app.poller.poll()
    h.app.operations.retry(job_id)
    events = [p for p in h.publisher.on("tunedrop-events") if p.attributes["kind"] == "queued"]
    assert [p.attributes["ce-id"].split("/")[1] for p in events] == ["1", "2"]
    assert [p.json()["reason"] for p in events] == ["validation passed", "retried by an operator"]
