"""Duplicate and out-of-order deliveries of every message type change nothing, on the emulators.

Each handler is driven as the functions drive it (shared.entrypoints, with the CloudEvents that
functions-framework makes of Pub/Sub pushes), on Firestore, the Cloud Storage emulator and the
Vertex AI emulator.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import Counter

import pytest
from cloudevents.http import CloudEvent
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from shared.adapters.gcs_blobs import GcsBlobStore
from shared.bootstrap import App, assemble
from shared.entrypoints import handle_dispatch, handle_poll, handle_upload
from shared.jobs import JobState, job_id_for
from tests.integration.apps import ListPublisher, emulator_app
from tests.integration.vertex import WatchedEmulator, vertex_emulator, vertex_tuning

pytestmark = pytest.mark.integration
DATASET = b'{"contents": [{"role": "user", "parts": [{"text": "Hi"}]}, {"role": "model", "parts": [{"text": "Yo"}]}]}\n'


def _pubsub_event(message_id: str, data: bytes, attributes: dict[str, str]) -> CloudEvent:
    message = {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": message_id}
    return CloudEvent(
        {
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": "//pubsub.googleapis.com/t",
            "id": message_id,
        },
        {"message": message},
    )


def _upload_event(message_id: str, blob: storage.Blob) -> CloudEvent:
    resource = {"bucket": blob.bucket.name, "name": blob.name, "generation": str(blob.generation), "metadata": {}}
    attributes = {
        "eventType": "OBJECT_FINALIZE",
        "payloadFormat": "JSON_API_V1",
        "bucketId": blob.bucket.name,
        "objectId": blob.name,
        "objectGeneration": str(blob.generation),
    }
    return _pubsub_event(message_id, json.dumps(resource).encode(), attributes)


class World:
    def __init__(self, app: App, publisher: ListPublisher, emulator: WatchedEmulator, blob: storage.Blob) -> None:
        self.app, self.publisher, self.emulator, self.blob = app, publisher, emulator, blob
        self.job_id = job_id_for(blob.bucket.name, blob.name, str(blob.generation))

    def state(self) -> JobState | None:
        found = self.app.store.get(self.job_id)
        return found.value.state if found else None

    def published(self) -> Counter[str]:
        return Counter(topic for topic, _, _ in self.publisher.messages)

    def vertex_jobs(self) -> int:
        listed = self.emulator.list_tuning_jobs("projects/itest/locations/us-central1", page_size=1000)
        return sum(1 for j in listed.tuning_jobs if j.labels.get("tunedrop_job") == self.job_id)

    def wait_for_vertex_end(self) -> None:
        time.sleep(self.emulator.job_seconds + 0.3)


@pytest.fixture
def world(emulator_env: dict[str, str]):  # type: ignore[no-untyped-def]
    client = storage.Client(project=emulator_env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"redeliver-{uuid.uuid4().hex[:8]}")
    blob = bucket.blob("incoming/data.jsonl")
    blob.upload_from_string(DATASET)
    emulator = WatchedEmulator(quota=10, job_seconds=0.5, seed=9)
    with vertex_emulator(emulator) as host:
        publisher = ListPublisher()
        base = emulator_app(
            emulator_env,
            f"redeliver{uuid.uuid4().hex[:6]}",
            vertex_tuning(host),
            quota=2,
            publisher=publisher,
            settings={"TUNEDROP_BUCKET": bucket.name},
        )
        app = assemble(
            base.settings,
            store=base.store,
            publisher=publisher,
            blobs=GcsBlobStore(client),
            tuning=base.tuning,
            clock=base.clock,
        )
        yield World(app, publisher, emulator, blob)


def test_every_message_delivered_twice_acts_once(world: World) -> None:
    upload = _upload_event("m-1", world.blob)
    handle_upload(upload, world.app)
    handle_upload(upload, world.app)  # the same message again
    handle_upload(_upload_event("m-2", world.blob), world.app)  # the same notification, another message
    assert world.state() is JobState.QUEUED
    assert world.published() == Counter({"tunedrop-dispatch": 1})

    tick = _pubsub_event("d-1", b'{"reason": "queued"}', {})
    handle_dispatch(tick, world.app)
    handle_dispatch(tick, world.app)
    assert world.state() is JobState.RUNNING
    assert world.vertex_jobs() == 1

    world.wait_for_vertex_end()
    poll = _pubsub_event("p-1", b'{"tick": 1}', {})
    handle_poll(poll, world.app)
    handle_poll(poll, world.app)
    assert world.state() is JobState.SUCCEEDED
    completions = [a["ce-id"] for t, _, a in world.publisher.messages if t == "tunedrop-completions"]
    assert completions == [f"{world.job_id}/1/succeeded"]
    assert world.vertex_jobs() == 1


def test_late_and_out_of_order_messages_change_nothing(world: World) -> None:
    # Before the upload is known: a poll tick and a dispatch find nothing to do.
    handle_poll(_pubsub_event("p-0", b"{}", {}), world.app)
    handle_dispatch(_pubsub_event("d-0", b"{}", {}), world.app)
    assert world.state() is None and world.publisher.messages == []

    upload = _upload_event("m-1", world.blob)
    handle_upload(upload, world.app)
    handle_poll(_pubsub_event("p-1", b"{}", {}), world.app)  # a tick before any dispatch: job stays queued
    assert world.state() is JobState.QUEUED
    handle_dispatch(_pubsub_event("d-1", b"{}", {}), world.app)
    world.wait_for_vertex_end()
    handle_poll(_pubsub_event("p-2", b"{}", {}), world.app)
    assert world.state() is JobState.SUCCEEDED
    before = (world.app.store.get(world.job_id), list(world.publisher.messages))

    # Now the stragglers: the original notification, an old dispatch and an old tick, in any order.
    handle_dispatch(_pubsub_event("d-1", b"{}", {}), world.app)
    handle_upload(upload, world.app)
    handle_poll(_pubsub_event("p-1", b"{}", {}), world.app)
    after = (world.app.store.get(world.job_id), list(world.publisher.messages))
    assert after[0] is not None and before[0] is not None
    assert after[0].value == before[0].value, "the job record did not move"
    assert after[1] == before[1], "nothing more was published"
    assert world.vertex_jobs() == 1
