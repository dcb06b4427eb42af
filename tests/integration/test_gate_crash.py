"""The evaluation gate killed mid-way, on the real Firestore and Pub/Sub emulators (issue 15's acceptance): the
redelivered message finishes the job, the alias moves once, and the verdict is announced exactly once (killed
after the publish itself, the redelivery can only repeat the same event, same ce-id and bytes)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud import firestore, pubsub_v1

from shared.adapters.firestore_store import FirestoreJobStore
from shared.adapters.pubsub_publisher import PubSubPublisher
from shared.aliases import Alias
from shared.config import Settings
from shared.ports import Generated, JobStore, Publisher, Versioned
from shared.services.gate import GateKeeper
from tests.eventschema import assert_valid_model_event
from tests.fakes import InMemoryBlobStore
from tests.fakes_gate import FakeJudge, FakeModelAnswers, qa_line, succeeded_gate_job
from tests.integration.apps import Killed, pull_all

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
EXAMPLES = 45  # three chunks of the gate's 20
ENDPOINT = "projects/p/locations/us-central1/endpoints/777"


TRAINING = "".join(qa_line(f"Which colour is item {n}?", f"Item {n} is colour {n % 7}.") for n in range(EXAMPLES))
HELD_OUT = "".join(qa_line(f"Name the colour of item {n}.", f"Item {n} is colour {n % 7}.") for n in range(EXAMPLES))


class DyingAnswers(FakeModelAnswers):
    def __init__(self, die_at: int) -> None:
        super().__init__()
        self.die_at = die_at

    def generate(
        self, model: str, contents: Sequence[Mapping[str, Any]], system: Mapping[str, Any] | None = None
    ) -> Generated:
        if len(self.calls) + 1 == self.die_at:
            self.die_at = -1
            raise Killed
        return super().generate(model, contents, system)


class DyingStore:
    """The real store, dying right after the alias write went through."""

    def __init__(self, inner: JobStore) -> None:
        self.inner = inner

    def write_alias(self, alias: Alias, version: Any) -> bool:
        self.inner.write_alias(alias, version)
        raise Killed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class DyingPublisher(Publisher):
    def __init__(self, inner: Publisher, after: bool) -> None:
        self.inner, self.after = inner, after

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        if not self.after:
            raise Killed
        self.inner.publish(topic, data, attributes)
        raise Killed


def _settings(env: Mapping[str, str], prefix: str) -> Settings:
    return Settings.from_env(
        {
            "GOOGLE_CLOUD_PROJECT": env["GOOGLE_CLOUD_PROJECT"],
            "TUNEDROP_BUCKET": "b",
            "TUNEDROP_COLLECTION_PREFIX": prefix,
            "TUNEDROP_COMPLETIONS_TOPIC": env["TUNEDROP_COMPLETIONS_TOPIC"],
        }
    )


def _succeeded_job(store: JobStore, blobs: InMemoryBlobStore) -> str:
    blobs.put("b", "tunedrop-staging/j/evaluation-1.jsonl", HELD_OUT.encode())
    job = succeeded_gate_job(
        f"gated-{uuid.uuid4().hex[:8]}",
        T0,
        team="kitchen",
        promote_as=f"colours-{uuid.uuid4().hex[:6]}",
        tuning_evaluation_uri="gs://b/tunedrop-staging/j/evaluation-1.jsonl",
        gate={"min_examples": 30},
        tuned_model="projects/p/locations/us-central1/models/777@1",
        endpoint=ENDPOINT,
    )
    assert store.create(job)
    return job.job_id


@pytest.mark.parametrize("dies", ["answering", "moving the alias", "before publishing", "after publishing"])
def test_a_gate_killed_mid_way_finishes_on_redelivery_and_announces_once(
    emulator_env: dict[str, str], dies: str
) -> None:
    project = emulator_env["GOOGLE_CLOUD_PROJECT"]
    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(project, f"gate-crash-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(
        name=path, topic=subscriber.topic_path(project, emulator_env["TUNEDROP_COMPLETIONS_TOPIC"])
    )
    prefix = f"gate{uuid.uuid4().hex[:6]}"
    settings = _settings(emulator_env, prefix)
    store = FirestoreJobStore(firestore.Client(project=project), prefix)
    real = PubSubPublisher(pubsub_v1.PublisherClient(), project)
    blobs = InMemoryBlobStore()
    try:
        job_id = _succeeded_job(store, blobs)
        answers = DyingAnswers(die_at=2 * 40 + 7 if dies == "answering" else -1)
        answers.tune(ENDPOINT, TRAINING)
        doomed_store: Any = DyingStore(store) if dies == "moving the alias" else store
        doomed_publisher: Publisher = real
        if dies.endswith("publishing"):
            doomed_publisher = DyingPublisher(real, after=dies.startswith("after"))
        doomed = GateKeeper(doomed_store, blobs, answers, FakeJudge(), doomed_publisher, settings, lambda: T0)
        with pytest.raises(Killed):
            doomed.evaluate(job_id)
        asked_before = len(answers.calls)

        # The message is delivered again, to a fresh instance.
        survivor = GateKeeper(store, blobs, answers, FakeJudge(), real, settings, lambda: T0)
        assert survivor.evaluate(job_id) == "promoted"
        assert survivor.evaluate(job_id) == "judged already"
        events = [(a, d) for a, d in pull_all(subscriber, path) if a.get("job_id") == job_id]
    finally:
        subscriber.delete_subscription(subscription=path)

    found: Versioned[Any] | None = store.get(job_id)
    assert found is not None
    alias = store.read_alias(found.value.promote_as)
    assert alias is not None and alias.value.champion is not None and alias.value.champion.job_id == job_id
    assert alias.value.history == ()  # moved once
    ids = {attributes["ce-id"] for attributes, _ in events}
    assert ids == {f"{job_id}/1/promoted"}
    if dies == "after publishing":
        assert len({data for _, data in events}) == 1  # at most the same event again, byte for byte
    else:
        assert len(events) == 1
    for attributes, data in events:
        assert_valid_model_event(attributes, json.loads(data))
    if dies == "answering":
        # The chunks written before the kill (two of three) are not asked again.
        assert len(answers.calls) - asked_before == 2 * (EXAMPLES - 40)
