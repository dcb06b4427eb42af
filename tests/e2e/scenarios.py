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
from tests.e2e.helpers import (
    Completion,
    CompletionReader,
    bucket,
    dataset,
    job_record,
    list_tuning_jobs,
    max_overlap,
)


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


class Burst:
    """Datasets uploaded at once, with a subscription of our own that reads their completions."""

    def __init__(self, env: dict[str, str], count: int, label: str = "burst") -> None:
        self.env = env
        self.job_ids: dict[str, str] = {}  # job id -> object name
        self._reader = CompletionReader(env)
        self._started = time.monotonic()
        run = uuid.uuid4().hex[:6]
        target = bucket(env)
        body = dataset()
        try:
            for n in range(count):
                blob = target.blob(f"incoming/{label}-{run}-{n:03d}.jsonl")
                blob.upload_from_string(body, content_type="application/jsonl")
                self.job_ids[job_id_for(env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))] = blob.name
        except BaseException:
            self._reader.close()
            raise

    def tuning_jobs(self) -> list[aiplatform_v1.TuningJob]:
        """The Vertex jobs created for this burst so far."""
        return [t for t in list_tuning_jobs(self.env) if t.labels.get("tunedrop_job") in self.job_ids]

    def finish(self, timeout: float = 200) -> BurstResult:
        """Read completion events until each job has one; the timeout stays below pytest's, so a
        stall fails here, naming the jobs still waiting and what the operators' CLI says of them."""
        try:
            events = self._reader.read_until(
                lambda got: {e.attributes["ce-subject"] for e in got} >= set(self.job_ids), timeout
            )
            seconds = time.monotonic() - self._started
            waiting = sorted(set(self.job_ids) - {e.attributes["ce-subject"] for e in events})
            if waiting:
                raise AssertionError(
                    f"{len(waiting)} of {len(self.job_ids)} jobs had no completion event after {timeout:.0f} s:\n"
                    + "\n".join(job_record(self.env, job_id) for job_id in waiting)
                )
        finally:
            self._reader.close()
        return BurstResult(job_ids=self.job_ids, events=events, tuning_jobs=self.tuning_jobs(), seconds=seconds)


def upload_burst(env: dict[str, str], count: int, timeout: float = 200, label: str = "burst") -> BurstResult:
    """Upload `count` valid datasets at once and follow them to their completion events."""
    return Burst(env, count, label).finish(timeout)
