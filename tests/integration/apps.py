"""Apps for integration tests and benchmarks: the real Firestore adapter on the emulator, the given
tuning service, and small stand-ins for what a test does not exercise."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import IO

from google.api_core import exceptions as gexc
from google.cloud import firestore, pubsub_v1

from shared.adapters.firestore_store import FirestoreJobStore
from shared.bootstrap import App, assemble
from shared.config import Settings
from shared.jobs import Job, JobState, new_job
from shared.ports import BlobStore, JobStore, ListedObject, ObjectInfo, Publisher, TuningService


class ListPublisher(Publisher):
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, dict[str, str]]] = []
        self._lock = threading.Lock()

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        with self._lock:
            self.messages.append((topic, data, dict(attributes)))
            return str(len(self.messages))


class NoBlobs(BlobStore):
    def open(self, bucket: str, name: str, generation: str | None = None) -> IO[bytes]:
        raise AssertionError("this test reads no objects")

    def write(self, bucket: str, name: str, data: bytes, content_type: str, *, if_absent: bool = False) -> str:
        raise AssertionError("this test writes no objects")

    def describe(self, bucket: str, name: str, generation: str | None = None) -> ObjectInfo:
        raise AssertionError("this test reads no objects")

    def copy_pinned(self, bucket: str, name: str, generation: str, destination: str) -> ObjectInfo:
        raise AssertionError("this test copies no objects")

    def list_page(self, bucket: str, prefix: str, page_token: str, limit: int) -> tuple[list[ListedObject], str]:
        return [], ""  # the poll tick's reconciler finds an empty bucket


class MovableClock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def queued_jobs(count: int, *, prefix: str = "job", spacing: timedelta = timedelta(milliseconds=1)) -> list[Job]:
    """`count` QUEUED jobs, enqueued `spacing` apart in id order, so first in first out is that order."""
    now = datetime.now(UTC)
    width = len(str(max(count - 1, 0)))
    jobs = []
    for n in range(count):
        job = new_job(
            job_id=f"{prefix}-{n:0{width}d}",
            bucket="b",
            object_name=f"incoming/{n}.jsonl",
            generation="1",
            base_model="gemini-3.5-flash",
            now=now,
        )
        at = now + spacing * n
        jobs.append(job.moved_to(JobState.QUEUED, at, "validation passed", enqueued_at=at))
    return jobs


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the services catches it."""


def emulator_app(
    env: Mapping[str, str],
    prefix: str,
    tuning: TuningService,
    *,
    quota: int = 1,
    publisher: Publisher | None = None,
    clock: MovableClock | None = None,
    settings: Mapping[str, str] | None = None,
    store: JobStore | None = None,
) -> App:
    """An App on the Firestore emulator, in collections named by `prefix`."""
    config = Settings.from_env(
        {
            "GOOGLE_CLOUD_PROJECT": env["GOOGLE_CLOUD_PROJECT"],
            "TUNEDROP_BUCKET": "b",
            "TUNEDROP_QUOTA": str(quota),
            "TUNEDROP_COLLECTION_PREFIX": prefix,
            "TUNEDROP_SUBMIT_LEASE_SECONDS": "60",
            **dict(settings or {}),
        }
    )
    store = store or FirestoreJobStore(firestore.Client(project=env["GOOGLE_CLOUD_PROJECT"]), prefix)
    return assemble(
        config,
        store=store,
        publisher=publisher or ListPublisher(),
        blobs=NoBlobs(),
        tuning=tuning,
        clock=clock or MovableClock(),
    )


def pull_all(
    subscriber: pubsub_v1.SubscriberClient, path: str, settle: float = 3.0
) -> list[tuple[dict[str, str], bytes]]:
    """Every message on a subscription until it stays quiet for `settle` seconds (each acknowledged)."""
    got: list[tuple[dict[str, str], bytes]] = []
    quiet_until = time.monotonic() + settle
    while time.monotonic() < quiet_until:
        try:
            response = subscriber.pull(subscription=path, max_messages=50, timeout=1)
        except (gexc.DeadlineExceeded, gexc.RetryError):
            continue
        if response.received_messages:
            got += [(dict(r.message.attributes), r.message.data) for r in response.received_messages]
            subscriber.acknowledge(subscription=path, ack_ids=[r.ack_id for r in response.received_messages])
            quiet_until = time.monotonic() + settle
    return got
