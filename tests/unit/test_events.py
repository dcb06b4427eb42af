"""Completion events: CloudEvents Pub/Sub binding, binary mode, reproducible byte for byte."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cloudevents.http import CloudEvent, from_http

from shared.events import EVENT_TYPES, completion_cloud_event, completion_data, completion_event, to_pubsub
from shared.jobs import Job, JobState, new_job
from shared.services.lifecycle import LifecycleEvents
from tests.eventschema import assert_valid_completion
from tests.fakes import InMemoryJobStore, RecordingPublisher, make_settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def succeeded_job() -> Job:
    job = new_job(
        job_id="a-0123456789ab",
        bucket="ds",
        object_name="incoming/a.jsonl",
        generation="42",
        base_model="gemini-2.5-flash",
        now=T0,
        priority=3,
        labels={"team": "search"},
    )
    job = job.moved_to(JobState.QUEUED, T0 + timedelta(seconds=1), "valid", enqueued_at=T0 + timedelta(seconds=1))
    job = job.moved_to(JobState.SUBMITTING, T0 + timedelta(seconds=2), "slot")
    job = job.moved_to(
        JobState.RUNNING,
        T0 + timedelta(seconds=3),
        "submitted",
        vertex_job_name="projects/demo/locations/us-central1/tuningJobs/1",
        started_at=T0 + timedelta(seconds=3),
    )
    return job.moved_to(
        JobState.SUCCEEDED,
        T0 + timedelta(minutes=10),
        "done",
        tuned_model="projects/demo/locations/us-central1/models/9@1",
        endpoint="projects/demo/locations/us-central1/endpoints/9",
        ended_at=T0 + timedelta(minutes=9, seconds=3),
    )


def test_binary_mode_attributes() -> None:
    event = completion_event(succeeded_job(), project="demo")
    assert event.attributes == {
        "ce-specversion": "1.0",
        "ce-id": "a-0123456789ab/1/succeeded",
        "ce-source": "//tunedrop/projects/demo",
        "ce-type": "tunedrop.job.v1.succeeded",
        "ce-time": "2026-01-01T00:10:00Z",
        "ce-subject": "a-0123456789ab",
        "ce-dataschema": "https://github.com/tunedrop/tunedrop/schemas/completion-event-data.v1.json",
        "content-type": "application/json",
        "state": "SUCCEEDED",
        "job_id": "a-0123456789ab",
    }


def test_data_carries_the_outcome() -> None:
    event = completion_event(succeeded_job(), project="demo")
    data = json.loads(event.data)
    assert data["state"] == "SUCCEEDED"
    assert data["tuned_model"] == "projects/demo/locations/us-central1/models/9@1"
    assert data["endpoint"] == "projects/demo/locations/us-central1/endpoints/9"
    assert data["dataset_uri"] == "gs://ds/incoming/a.jsonl"
    assert data["labels"] == {"team": "search"}
    assert data["started_at"] == "2026-01-01T00:00:03Z"
    assert data["ended_at"] == "2026-01-01T00:09:03Z"
    assert data["duration_seconds"] == 540.0
    assert data["error"] is None and data["report_uri"] is None
    assert (data["job_id"], data["attempt"], data["base_model"]) == ("a-0123456789ab", 1, "gemini-2.5-flash")
    assert data == completion_data(succeeded_job())


def test_same_job_gives_identical_bytes_and_id() -> None:
    first = completion_event(succeeded_job(), project="demo")
    second = completion_event(succeeded_job(), project="demo")
    assert first.data == second.data
    assert first.attributes == second.attributes


def test_identical_after_a_round_trip_through_the_store() -> None:
    """A republished event is built from the stored job, not the one in memory."""
    job = succeeded_job()
    store = InMemoryJobStore()
    store.put(job)
    again = completion_event(store.job(job.job_id), project="demo")
    assert again == completion_event(job, project="demo")


def test_ce_time_is_the_terminal_transition_not_the_last_update() -> None:
    job = succeeded_job()
    touched = replace(job, updated_at=T0 + timedelta(days=1), completion_pending=False)
    assert completion_event(touched, project="demo").attributes["ce-time"] == "2026-01-01T00:10:00Z"
    assert completion_event(touched, project="demo").data == completion_event(job, project="demo").data


def test_a_new_attempt_gets_a_new_id() -> None:
    job = succeeded_job()
    retried = replace(job, attempt=2, completion_event_id="a-0123456789ab/2/succeeded")
    assert (
        completion_event(retried, project="demo").attributes["ce-id"]
        != completion_event(job, project="demo").attributes["ce-id"]
    )


@pytest.mark.parametrize("state", sorted(EVENT_TYPES))
def test_every_terminal_state_has_a_type(state: JobState) -> None:
    job = new_job(job_id="j", bucket="b", object_name="incoming/x.jsonl", generation="1", base_model="m", now=T0)
    path = {
        JobState.REJECTED: [JobState.REJECTED],
        JobState.CANCELLED: [JobState.QUEUED, JobState.CANCELLED],
        JobState.FAILED: [JobState.QUEUED, JobState.SUBMITTING, JobState.FAILED],
        JobState.SUCCEEDED: [JobState.QUEUED, JobState.SUBMITTING, JobState.SUCCEEDED],
    }[state]
    for step in path:
        job = job.moved_to(step, T0, "x")
    event = completion_event(job, project="p")
    assert event.attributes["ce-type"] == f"tunedrop.job.v1.{state.value.lower()}"
    assert json.loads(event.data)["duration_seconds"] is None  # never started


@pytest.mark.parametrize("state", [JobState.VALIDATING, JobState.QUEUED])
def test_non_terminal_jobs_have_no_event(state: JobState) -> None:
    job = new_job(job_id="j", bucket="b", object_name="o", generation="1", base_model="m", now=T0)
    if state is JobState.QUEUED:
        job = job.moved_to(state, T0, "x")
    with pytest.raises(ValueError, match="no completion event"):
        completion_event(job, project="p")


def test_the_published_message_parses_back_into_the_same_cloud_event() -> None:
    """The Pub/Sub attributes are the CloudEvents binary binding: a subscriber's SDK reads the event back."""
    job = succeeded_job()
    published = completion_event(job, project="demo")
    parsed = from_http(published.attributes, published.data)
    assert parsed == completion_cloud_event(job, project="demo")
    assert parsed["dataschema"] == "https://github.com/tunedrop/tunedrop/schemas/completion-event-data.v1.json"


def test_to_pubsub_keeps_the_event_order_and_adds_the_filters_last() -> None:
    event = CloudEvent(
        {"specversion": "1.0", "id": "i", "source": "//s", "type": "t", "time": "", "datacontenttype": "text/x"},
        {"b": 1, "a": {"d": 2, "c": None}},
    )
    message = to_pubsub(event, {"kind": "k"})
    assert list(message.attributes.items()) == [
        ("ce-specversion", "1.0"),
        ("ce-id", "i"),
        ("ce-source", "//s"),
        ("ce-type", "t"),
        ("ce-time", ""),
        ("content-type", "text/x"),
        ("kind", "k"),
    ]
    assert message.data == b'{"a":{"c":null,"d":2},"b":1}'


def test_a_lifecycle_event_in_the_binding() -> None:
    publisher = RecordingPublisher()
    lifecycle = LifecycleEvents(publisher, make_settings(TUNEDROP_EVENTS_TOPIC="tunedrop-events"))
    job = replace(succeeded_job(), team="search")
    assert lifecycle.emit(job, "stuck", "pending too long", vertex_state="JOB_STATE_PENDING", since=T0)
    (message,) = publisher.messages
    assert message.topic == "tunedrop-events"
    assert list(message.attributes.items()) == [
        ("ce-specversion", "1.0"),
        ("ce-id", "a-0123456789ab/1/stuck/5-pending too long"),
        ("ce-source", "//tunedrop/projects/demo"),
        ("ce-type", "tunedrop.job.v1.lifecycle.stuck"),
        ("ce-time", "2026-01-01T00:10:00Z"),
        ("ce-subject", "a-0123456789ab"),
        ("content-type", "application/json"),
        ("kind", "stuck"),
        ("state", "SUCCEEDED"),
        ("job_id", "a-0123456789ab"),
    ]
    assert message.data == (
        b'{"at":"2026-01-01T00:10:00Z","attempt":1,"dataset_uri":"gs://ds/incoming/a.jsonl",'
        b'"job_id":"a-0123456789ab","kind":"stuck","reason":"pending too long",'
        b'"since":"2026-01-01 00:00:00+00:00","state":"SUCCEEDED","team":"search",'
        b'"vertex_job_name":"projects/demo/locations/us-central1/tuningJobs/1","vertex_state":"JOB_STATE_PENDING"}'
    )


# ---- teams


@pytest.mark.parametrize(
    ("team", "shown"), [("kitchen", "kitchen"), ("default", "default"), ("9-lives", "9-lives"), ("", None)]
)
def test_completion_data_names_the_jobs_team(team: str, shown: str | None) -> None:
    """A job recorded before teams (or of an upload from no team's folder) has none: null."""
    event = completion_event(replace(succeeded_job(), team=team), project="demo")
    data = json.loads(event.data)
    assert data["team"] == shown
    assert_valid_completion(event.attributes, data)  # the schema, and every published copy of it


@pytest.mark.parametrize("bad", ["Kitchen", "a b", "x" * 64, "kitchen-", "", 7])
def test_the_schema_refuses_a_team_that_is_no_team_name(bad: object) -> None:
    event = completion_event(succeeded_job(), project="demo")
    data = {**json.loads(event.data), "team": bad}
    with pytest.raises(AssertionError):
        assert_valid_completion(event.attributes, data)


@pytest.mark.parametrize("kind", ["queued", "finished"])
def test_lifecycle_events_name_the_jobs_team(kind: str) -> None:
    publisher = RecordingPublisher()
    lifecycle = LifecycleEvents(publisher, make_settings(TUNEDROP_EVENTS_TOPIC="tunedrop-events"))
    assert lifecycle.emit(replace(succeeded_job(), team="kitchen"), kind)
    assert lifecycle.emit(succeeded_job(), kind)
    assert [json.loads(m.data)["team"] for m in publisher.messages] == ["kitchen", None]
