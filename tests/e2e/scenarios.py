"""Scenarios shared by the end-to-end tests (which check correctness) and `make bench` (which
measures them): a burst of uploads, followed to the last completion event."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from google.cloud import aiplatform_v1

from shared.jobs import job_id_for
from tests.e2e.helpers import Completion, CompletionReader, bucket, dataset, list_tuning_jobs, max_overlap


@dataclass
class BurstResult:
    job_ids: dict[str, str]  # job id -> object name
    events: list[Completion]
    tuning_jobs: list[aiplatform_v1.TuningJob]
    seconds: float  # from the first upload to the last completion event

    @property
    def ours(self) -> list[Completion]:
        return [e for e in self.events if e.attributes["ce-subject"] in self.job_ids]

    @property
    def outcomes(self) -> Counter[str]:
        latest = {e.attributes["ce-subject"]: e.attributes["ce-type"] for e in self.ours}
        return Counter(latest.values())

    @property
    def vertex_jobs_per_dataset(self) -> Counter[str]:
        return Counter(t.labels["tunedrop_job"] for t in self.tuning_jobs)

    @property
    def intervals(self) -> list[tuple[datetime, datetime]]:
        return [(t.create_time, t.end_time) for t in self.tuning_jobs]

    @property
    def peak_overlap(self) -> int:
        return max_overlap(self.intervals)

    def slot_utilisation(self, quota: int) -> float:
        """Busy slot-seconds over the slot-seconds available between first create and last end."""
        if not self.intervals:
            return 0.0
        start = min(s for s, _ in self.intervals)
        end = max(e for _, e in self.intervals)
        busy = sum((e - s).total_seconds() for s, e in self.intervals)
        return busy / (quota * (end - start).total_seconds())


def upload_burst(env: dict[str, str], count: int, timeout: float = 300, label: str = "burst") -> BurstResult:
    run = uuid.uuid4().hex[:6]
    reader = CompletionReader(env)
    target = bucket(env)
    body = dataset()
    job_ids: dict[str, str] = {}
    started = time.monotonic()
    try:
        for n in range(count):
            blob = target.blob(f"incoming/{label}-{run}-{n:03d}.jsonl")
            blob.upload_from_string(body, content_type="application/jsonl")
            job_ids[job_id_for(env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))] = blob.name
        events = reader.read_until(lambda got: {e.attributes["ce-subject"] for e in got} >= set(job_ids), timeout)
        seconds = time.monotonic() - started
    finally:
        reader.close()
    tuning_jobs = [t for t in list_tuning_jobs(env) if t.labels.get("tunedrop_job") in job_ids]
    return BurstResult(job_ids=job_ids, events=events, tuning_jobs=tuning_jobs, seconds=seconds)
