"""on_dispatch and on_poll over real functions-framework HTTP handling, and the whole way through."""

from __future__ import annotations

import json
from collections.abc import Callable

from shared.jobs import JobState, job_id_for
from shared.ports import TuningRejected, TuningUnavailable
from tests.fakes import VALID_DATASET, Harness, make_harness
from tests.functional.support import Functions, load_golden

FINALIZE = load_golden("pubsub_gcs_finalize.json")
DISPATCH = load_golden("pubsub_dispatch.json")
TICK = load_golden("pubsub_poll_tick.json")


def queued_job(h: Harness, functions: Functions) -> str:
    """Upload the golden dataset through on_upload; returns the QUEUED job's id."""
    resource = FINALIZE.pubsub_data()
    h.blobs.put("ds", resource["name"], VALID_DATASET, generation=resource["generation"], metadata=resource["metadata"])
    assert FINALIZE.send(functions.upload).status_code == 200
    job_id = job_id_for("ds", resource["name"], resource["generation"])
    assert h.job(job_id).state is JobState.QUEUED
    return job_id


def test_golden_dispatch_and_tick_messages() -> None:
    assert DISPATCH.path == "/projects/demo/topics/tunedrop-dispatch"
    assert DISPATCH.pubsub_data() == {
        "reason": "queued",
        "job_id": job_id_for("ds", "incoming/a.jsonl", FINALIZE.pubsub_data()["generation"]),
    }
    assert TICK.path == "/projects/demo/topics/tunedrop-poll"
    assert TICK.pubsub_data()["tick"] == 1


def test_dispatch_submits_the_queued_job(world: Harness, functions: Functions) -> None:
    job_id = queued_job(world, functions)
    assert DISPATCH.send(functions.dispatch).status_code == 200
    job = world.job(job_id)
    assert job.state is JobState.RUNNING
    assert world.tuning.creates == 1
    assert world.tuning.requests[0].base_model == "gemini-2.0-flash-001"

    assert DISPATCH.send(functions.dispatch).status_code == 200  # redelivered: nothing more
    assert world.tuning.creates == 1


def test_a_poll_tick_also_wakes_the_dispatcher(world: Harness, functions: Functions) -> None:
    job_id = queued_job(world, functions)
    tick_for_dispatch = TICK.send(functions.dispatch)  # on_dispatch is subscribed to the poll topic too
    assert tick_for_dispatch.status_code == 200
    assert world.job(job_id).state is JobState.RUNNING


def test_vertex_unavailable_is_handled_and_acknowledged(world: Harness, functions: Functions) -> None:
    job_id = queued_job(world, functions)
    world.tuning.fail("create", TuningUnavailable("503 UNAVAILABLE"))
    assert DISPATCH.send(functions.dispatch).status_code == 200  # retried by the dispatcher itself
    job = world.job(job_id)
    assert (job.state, job.submit_errors) == (JobState.SUBMITTING, 1)
    world.clock.advance(5)
    assert DISPATCH.send(functions.dispatch).status_code == 200
    assert world.job(job_id).state is JobState.RUNNING


def test_a_rejected_submission_fails_the_job_and_is_acknowledged(world: Harness, functions: Functions) -> None:
    job_id = queued_job(world, functions)
    world.tuning.fail("create", TuningRejected("400 INVALID_ARGUMENT"))
    assert DISPATCH.send(functions.dispatch).status_code == 200
    assert world.job(job_id).state is JobState.FAILED
    (event,) = world.completions()
    assert event.attributes["ce-type"] == "tunedrop.job.v1.failed"


def test_an_unpublished_failure_event_is_a_5xx(world: Harness, functions: Functions) -> None:
    job_id = queued_job(world, functions)
    world.tuning.fail("create", TuningRejected("400 INVALID_ARGUMENT"))
    world.publisher.fail_next(topic=world.settings.completions_topic)
    assert DISPATCH.send(functions.dispatch).status_code == 500
    assert world.job(job_id).completion_pending
    world.clock.advance(60)
    assert TICK.send(functions.poll).status_code == 200  # the poller's safety net publishes it
    assert [e.attributes["ce-id"] for e in world.completions()] == [f"{job_id}/1/failed"]


def test_poll_records_success_and_announces_it_once(world: Harness, functions: Functions) -> None:
    job_id = queued_job(world, functions)
    DISPATCH.send(functions.dispatch)
    world.tuning.succeed(world.job(job_id).vertex_job_name)
    world.clock.advance(60)
    world.publisher.clear()

    assert TICK.send(functions.poll).status_code == 200
    job = world.job(job_id)
    assert job.state is JobState.SUCCEEDED
    assert job.tuned_model and job.endpoint
    (event,) = world.completions()
    assert event.attributes["ce-id"] == f"{job_id}/1/succeeded"
    assert event.json()["tuned_model"] == job.tuned_model
    assert [m.json()["job_ids"] for m in world.dispatch_messages()] == [[job_id]]

    world.clock.advance(60)
    assert TICK.send(functions.poll).status_code == 200  # the next tick
    assert len(world.completions()) == 1
    assert len(world.dispatch_messages()) == 1


def test_a_crash_while_publishing_is_a_5xx_and_the_next_tick_publishes_once(
    world: Harness, functions: Functions
) -> None:
    job_id = queued_job(world, functions)
    DISPATCH.send(functions.dispatch)
    world.tuning.succeed(world.job(job_id).vertex_job_name)
    world.publisher.fail_next(topic=world.settings.completions_topic, after_send=True)
    world.clock.advance(60)

    assert TICK.send(functions.poll).status_code == 500  # recorded; the publish "failed": redelivered
    assert world.job(job_id).state is JobState.SUCCEEDED
    world.clock.advance(60)
    assert TICK.send(functions.poll).status_code == 200
    world.clock.advance(60)
    assert TICK.send(functions.poll).status_code == 200
    events = world.completions()
    assert {e.attributes["ce-id"] for e in events} == {f"{job_id}/1/succeeded"}
    assert len({e.data for e in events}) == 1
    assert not world.job(job_id).completion_pending


def test_poll_when_vertex_is_unavailable_is_acknowledged(world: Harness, functions: Functions) -> None:
    job_id = queued_job(world, functions)
    DISPATCH.send(functions.dispatch)
    world.tuning.fail("get", TuningUnavailable("503"))
    assert TICK.send(functions.poll).status_code == 200
    assert world.job(job_id).state is JobState.RUNNING


def test_the_whole_way_with_a_queue(install: Callable[[Harness], Harness], functions: Functions) -> None:
    """Two uploads, quota 1: the second waits, then runs once the first finishes."""
    h = install(make_harness(quota=1))
    first = queued_job(h, functions)
    second_resource = {**FINALIZE.pubsub_data(), "name": "incoming/second.jsonl", "generation": "1795266321404700"}
    h.blobs.put("ds", second_resource["name"], VALID_DATASET, generation=second_resource["generation"])
    second_upload = FINALIZE.with_pubsub_data(
        json.dumps(second_resource).encode(),
        objectId=second_resource["name"],
        objectGeneration=second_resource["generation"],
    ).with_message_id("13254875362510800")
    assert second_upload.send(functions.upload).status_code == 200
    second = job_id_for("ds", second_resource["name"], second_resource["generation"])

    assert DISPATCH.send(functions.dispatch).status_code == 200
    # The golden upload carries priority 5, so it goes first.
    assert (h.job(first).state, h.job(second).state) == (JobState.RUNNING, JobState.QUEUED)

    h.tuning.succeed(h.job(first).vertex_job_name)
    h.clock.advance(60)
    assert TICK.send(functions.poll).status_code == 200
    assert TICK.send(functions.dispatch).status_code == 200
    assert (h.job(first).state, h.job(second).state) == (JobState.SUCCEEDED, JobState.RUNNING)

    h.tuning.succeed(h.job(second).vertex_job_name)
    h.clock.advance(60)
    assert TICK.send(functions.poll).status_code == 200
    assert h.job(second).state is JobState.SUCCEEDED
    assert sorted(e.attributes["ce-subject"] for e in h.completions()) == sorted([first, second])
    assert h.tuning.creates == 2
    assert h.store.slot_holders() == {}
