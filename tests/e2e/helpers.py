"""Public-surface clients for end-to-end tests: upload to the bucket, read completion events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1, pubsub_v1, storage
from google.cloud.aiplatform_v1.services.gen_ai_tuning_service.transports.grpc import (
    GenAiTuningServiceGrpcTransport,
)

VALID_EXAMPLE = (
    '{"contents": [{"role": "user", "parts": [{"text": "Q%d"}]}, {"role": "model", "parts": [{"text": "A%d"}]}]}\n'
)


def dataset(lines: int = 3) -> bytes:
    return "".join(VALID_EXAMPLE % (i, i) for i in range(lines)).encode()


@dataclass
class Completion:
    attributes: dict[str, str]
    data: dict[str, Any]


class CompletionReader:
    """A fresh pull subscription of our own on the completions topic (never a streaming pull)."""

    def __init__(self, env: dict[str, str], filter_expression: str = "") -> None:
        self._client = pubsub_v1.SubscriberClient()
        project = env["GOOGLE_CLOUD_PROJECT"]
        self.path = self._client.subscription_path(project, f"test-{uuid.uuid4().hex[:10]}")
        request: dict[str, Any] = {
            "name": self.path,
            "topic": self._client.topic_path(project, env["TUNEDROP_COMPLETIONS_TOPIC"]),
        }
        if filter_expression:
            request["filter"] = filter_expression
        self._client.create_subscription(request=request)

    def read_until(self, done: Any, timeout: float) -> list[Completion]:
        """Pull until done(events) is true or the timeout passes; returns every event pulled."""
        events: list[Completion] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done(events):
            try:
                response = self._client.pull(subscription=self.path, max_messages=100, timeout=2)
            except (gexc.DeadlineExceeded, gexc.RetryError):
                continue
            for received in response.received_messages:
                events.append(Completion(dict(received.message.attributes), json.loads(received.message.data)))
            if response.received_messages:
                self._client.acknowledge(subscription=self.path, ack_ids=[r.ack_id for r in response.received_messages])
        return events

    def close(self) -> None:
        self._client.delete_subscription(subscription=self.path)


def bucket(env: dict[str, str]) -> storage.Bucket:
    client = storage.Client(project=env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials())
    return client.bucket(env["TUNEDROP_BUCKET"])


def tuning_client(env: dict[str, str]) -> aiplatform_v1.GenAiTuningServiceClient:
    channel = grpc.insecure_channel(env["TUNEDROP_VERTEX_EMULATOR_HOST"])
    return aiplatform_v1.GenAiTuningServiceClient(transport=GenAiTuningServiceGrpcTransport(channel=channel))


def list_tuning_jobs(env: dict[str, str], label_filter: str = "") -> list[aiplatform_v1.TuningJob]:
    parent = f"projects/{env['GOOGLE_CLOUD_PROJECT']}/locations/{env['TUNEDROP_REGION']}"
    request = {"parent": parent, "filter": label_filter} if label_filter else {"parent": parent}
    return list(tuning_client(env).list_tuning_jobs(request=request))


def wait_for(condition: Callable[[], bool], timeout: float, every: float = 0.5) -> bool:
    """Check `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)
    return True


def job_record(env: dict[str, str], job_id: str) -> str:
    """What `tunedrop job JOB_ID` says of a job (the operators' view), for failure messages."""
    done = subprocess.run(
        [sys.executable, "-c", "from shared.cli import main; main()", "job", job_id],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return f"$ tunedrop job {job_id}\n{done.stdout}{done.stderr}"


def job_document(env: dict[str, str], job_id: str) -> dict[str, Any]:
    """`tunedrop job JOB_ID --json`: the job document as operators see it."""
    done = subprocess.run(
        [sys.executable, "-c", "from shared.cli import main; main()", "job", job_id, "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """Most intervals open at one instant; an interval ending when another starts does not overlap it."""
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = highest = 0
    for _, step in points:
        open_now += step
        highest = max(highest, open_now)
    return highest
