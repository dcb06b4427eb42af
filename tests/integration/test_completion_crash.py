"""Completion events survive a poller that dies mid-way, on the real emulators.

The poller is killed (1) after recording the terminal state but before publishing, and (2) after
publishing but before it marked the event published. Either way the next poll publishes, and a
subscriber sees exactly one distinct event id per job, never two different events for one outcome.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta

import pytest
from google.cloud import pubsub_v1

from shared.adapters.pubsub_publisher import PubSubPublisher
from shared.bootstrap import App
from shared.jobs import JobState
from shared.ports import Publisher
from tests.eventschema import assert_valid_completion
from tests.integration.apps import Killed, MovableClock, emulator_app, pull_all, queued_jobs
from tests.integration.vertex import WatchedEmulator, vertex_emulator, vertex_tuning

pytestmark = pytest.mark.integration


class DiesAroundCompletions(Publisher):
    """Dies once, before or after the real publish of a completion event."""

    def __init__(self, inner: Publisher, topic: str, when: str) -> None:
        self.inner, self.topic, self.when, self.armed = inner, topic, when, True

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        if topic == self.topic and self.armed and self.when == "before":
            self.armed = False
            raise Killed
        message_id = self.inner.publish(topic, data, attributes)
        if topic == self.topic and self.armed and self.when == "after":
            self.armed = False
            raise Killed
        return message_id


def _app(env: Mapping[str, str], prefix: str, host: str, publisher: Publisher, clock: MovableClock) -> App:
    return emulator_app(
        env,
        prefix,
        vertex_tuning(host, project=env["GOOGLE_CLOUD_PROJECT"]),
        quota=5,
        publisher=publisher,
        clock=clock,
        settings={"TUNEDROP_COMPLETIONS_TOPIC": env["TUNEDROP_COMPLETIONS_TOPIC"]},
    )


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_poller_killed_around_publishing_still_yields_one_event_id_per_job(
    emulator_env: dict[str, str], when: str
) -> None:
    project = emulator_env["GOOGLE_CLOUD_PROJECT"]
    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(project, f"crash-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(
        name=path, topic=subscriber.topic_path(project, emulator_env["TUNEDROP_COMPLETIONS_TOPIC"])
    )
    prefix = f"crash{uuid.uuid4().hex[:6]}"
    clock = MovableClock()
    real = PubSubPublisher(pubsub_v1.PublisherClient(), project)
    try:
        with vertex_emulator(WatchedEmulator(quota=10, job_seconds=0.3, seed=5)) as host:
            doomed = _app(
                emulator_env,
                prefix,
                host,
                DiesAroundCompletions(real, emulator_env["TUNEDROP_COMPLETIONS_TOPIC"], when),
                clock,
            )
            jobs = queued_jobs(3, prefix="crash")
            for job in jobs:
                doomed.store.create(job)
            job_ids = [job.job_id for job in jobs]
            assert sorted(doomed.dispatcher.dispatch()) == job_ids
            time.sleep(0.5)
            with pytest.raises(Killed):
                doomed.poller.poll()
            recorded = [doomed.store.get(j) for j in job_ids]
            assert all(r is not None and r.value.state is JobState.SUCCEEDED for r in recorded)

            # The restarted poller: its safety net republishes what is still pending after the grace.
            clock.offset = timedelta(seconds=30)
            survivor = _app(emulator_env, prefix, host, real, clock)
            survivor.poller.poll()
            survivor.poller.poll()
        events = pull_all(subscriber, path)
    finally:
        subscriber.delete_subscription(subscription=path)

    by_job: dict[str, set[str]] = {}
    bodies: dict[str, set[bytes]] = {}
    for attributes, data in events:
        by_job.setdefault(attributes["ce-subject"], set()).add(attributes["ce-id"])
        bodies.setdefault(attributes["ce-id"], set()).add(data)
        assert_valid_completion(attributes, json.loads(data))
    assert by_job == {j: {f"{j}/1/succeeded"} for j in job_ids}
    assert all(len(b) == 1 for b in bodies.values()), "a republished event is the same event, byte for byte"
    assert all(not survivor.store.get(j).value.completion_pending for j in job_ids)  # type: ignore[union-attr]
