"""`make demo`: drop the sample datasets into the local stack and watch them become tuning jobs.

It uses only the public surfaces a user has: uploads with the Cloud Storage client, completion
events from a subscription of its own; job states are read from Firestore to show progress.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunedrop_local import stack as local_stack

from shared.config import Settings

SAMPLES = Path(__file__).resolve().parent / "samples"
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "REJECTED"}
_COLORS = {
    "QUEUED": "33",
    "SUBMITTING": "36",
    "RUNNING": "34",
    "SUCCEEDED": "32",
    "FAILED": "31",
    "REJECTED": "31",
    "CANCELLED": "35",
    "VALIDATING": "37",
}


def _paint(text: str, state: str) -> str:
    if not sys.stdout.isatty():
        return text
    return f"\033[{_COLORS.get(state, '0')}m{text}\033[0m"


def expected_outcomes() -> dict[str, str]:
    return dict(json.loads((SAMPLES / "expected.json").read_text()))


def run_demo(timeout: float = 110.0) -> int:
    started = time.monotonic()
    state_dir = local_stack.default_state_dir()
    reuse = local_stack.is_running(local_stack.Stack(state_dir))
    stack = local_stack.up(state_dir)
    try:
        with local_stack.exported(stack.env):
            return _drive(stack.env, started, timeout)
    finally:
        if not reuse:
            local_stack.down(state_dir)


@dataclass
class _Progress:
    """What the demo has seen so far: each job's last state and its completion event."""

    names: dict[str, str]  # job id -> the sample's name without extension
    started: float
    seen: dict[str, str] = field(default_factory=dict)  # job id -> last state shown
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # job id -> its completion event

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note_state(self, job_id: str, state: str) -> None:
        if state and self.seen.get(job_id) != state:
            arrow = f"{self.seen.get(job_id, 'uploaded')} -> {state}"
            width = max(len(n) for n in self.names.values())
            print(f"  [{self.elapsed():5.1f}s] {self.names[job_id]:<{width}}  {_paint(arrow, state)}")
            self.seen[job_id] = state

    def note_event(self, attrs: dict[str, str], data: dict[str, Any]) -> None:
        """Keep the first delivery of each demo job's completion event (redeliveries are ignored)."""
        known = {event["ce-id"] for event in self.events.values()}
        if attrs.get("ce-subject") in self.names and attrs["ce-id"] not in known:
            self.events[attrs["ce-subject"]] = {**attrs, "data": data}
            _print_event(attrs, data, self.elapsed())

    def done(self) -> bool:
        return len(self.events) == len(self.names) and all(self.seen.get(j) in TERMINAL for j in self.names)


def _drive(env: dict[str, str], started: float, timeout: float) -> int:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore, pubsub_v1, storage

    settings = Settings.from_env(env)
    subscriber = pubsub_v1.SubscriberClient()
    # A fresh subscription of our own: it sees every completion event published from now on.
    subscription = subscriber.subscription_path(settings.project, f"demo-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(name=subscription, topic=settings.topic_path(settings.completions_topic))
    bucket = storage.Client(project=settings.project, credentials=AnonymousCredentials()).bucket(settings.bucket)  # type: ignore[no-untyped-call]
    jobs = firestore.Client(project=settings.project).collection(f"{settings.collection_prefix}_jobs")

    expected = expected_outcomes()
    progress = _Progress(_upload_samples(bucket, settings, expected), started)
    try:
        _watch(progress, jobs, subscriber, subscription, time.monotonic() + timeout)
    finally:
        subscriber.delete_subscription(subscription=subscription)
    return _summary(progress.names, expected, progress.seen, progress.events, progress.elapsed())


def _upload_samples(bucket: Any, settings: Settings, expected: dict[str, str]) -> dict[str, str]:
    """Upload the samples; returns job id -> sample name (without extension)."""
    from shared.jobs import job_id_for

    # Datasets a manifest names live outside incoming/, so they make no job by themselves.
    for path in sorted((SAMPLES / "datasets").glob("*.jsonl")):
        bucket.blob(f"datasets/{path.name}").upload_from_filename(str(path), content_type="application/jsonl")
    print(
        f"\nUploading {len(expected)} sample datasets to gs://{settings.bucket}/{settings.incoming_prefix} "
        f"(quota {settings.quota} concurrent tuning job(s)):"
    )
    names: dict[str, str] = {}
    for file_name, outcome in expected.items():
        blob = bucket.blob(f"{settings.incoming_prefix}{file_name}")
        kind = "application/jsonl" if file_name.endswith(".jsonl") else "application/yaml"
        blob.upload_from_filename(str(SAMPLES / file_name), content_type=kind)
        job_id = job_id_for(settings.bucket, blob.name, str(blob.generation))
        names[job_id] = file_name.rsplit(".", 1)[0]
        print(f"  {file_name:<24} -> job {job_id}  (expect {outcome})")
    print()
    return names


def _watch(progress: _Progress, jobs: Any, subscriber: Any, subscription: str, deadline: float) -> None:
    """Show state changes and completion events until every job ended with its event, or the deadline."""
    while time.monotonic() < deadline:
        for job_id in progress.names:
            snap = jobs.document(job_id).get()
            progress.note_state(job_id, (snap.to_dict() or {}).get("state", "") if snap.exists else "")
        _take_events(progress, subscriber, subscription)
        if progress.done():
            return
        time.sleep(0.3)


def _take_events(progress: _Progress, subscriber: Any, subscription: str) -> None:
    from google.api_core import exceptions as gexc

    try:
        response = subscriber.pull(subscription=subscription, max_messages=20, timeout=1.0)
    except (gexc.DeadlineExceeded, gexc.RetryError):
        return
    if not response.received_messages:
        return
    for received in response.received_messages:
        progress.note_event(dict(received.message.attributes), json.loads(received.message.data))
    subscriber.acknowledge(subscription=subscription, ack_ids=[r.ack_id for r in response.received_messages])


def _print_event(attrs: dict[str, str], data: dict[str, Any], elapsed: float) -> None:
    state = data.get("state", "")
    print(_paint(f"  [{elapsed:5.1f}s] event {attrs['ce-type']}  ce-id={attrs['ce-id']}", state))
    if data.get("tuned_model"):
        print(f"           tuned model {data['tuned_model']}")
        print(f"           endpoint    {data['endpoint']}")
    if data.get("error"):
        error = data["error"]
        print(f"           error       {error.get('message', '')}")
        for first in (error.get("first_errors") or [])[:3]:
            print(f"             line {first['line']}: [{first['code']}] {first['message']}")
    if data.get("report_uri"):
        print(f"           report      {data['report_uri']}")


def _summary(
    names: dict[str, str],
    expected: dict[str, str],
    seen: dict[str, str],
    events: dict[str, dict[str, Any]],
    elapsed: float,
) -> int:
    print("\nSummary:")
    ok = True
    for job_id, short in names.items():
        want = next(outcome for name, outcome in expected.items() if name.rsplit(".", 1)[0] == short)
        got = seen.get(job_id, "?")
        event = events.get(job_id, {}).get("ce-type", "no event")
        good = got == want and job_id in events
        ok = ok and good
        mark = "ok  " if good else "FAIL"
        print(f"  {mark} {short:<20} {got:<10} (expected {want}; {event})")
    print(f"\nDemo {'passed' if ok else 'FAILED'} in {elapsed:.1f}s.")
    return 0 if ok else 1
