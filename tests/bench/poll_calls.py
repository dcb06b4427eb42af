"""Vertex AI calls per poll tick as the number of running jobs grows (issue 14, item 3).

The poller runs on the real Vertex AI adapter against the local Vertex AI emulator (gRPC, as in production);
the job records are in the in-memory store (Firestore is not what is measured). For each quota, that many jobs
are dispatched and left running; then one tick is measured with every job still running, and one after a
single job ended. The emulator counts the RPCs it serves: ListTuningJobs pages and GetTuningJob calls.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from google.cloud import aiplatform_v1

from shared.bootstrap import assemble
from shared.services.upload import UploadedObject
from tests.fakes import (
    VALID_DATASET,
    InMemoryBlobStore,
    InMemoryJobStore,
    RecordingPublisher,
    StoredObject,
    make_settings,
)
from tests.integration.vertex import WatchedEmulator, vertex_emulator, vertex_tuning

QUOTAS = (1, 10, 50)
TARGET_CALLS = 2  # per tick, whatever the number of running jobs: one list page, plus a read per ended job


class CountingEmulator(WatchedEmulator):  # type: ignore[misc]
    """The emulator, counting the RPCs the poller makes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rpcs: Counter[str] = Counter()

    def get_tuning_job(self, name: str) -> aiplatform_v1.TuningJob:
        self.rpcs["GetTuningJob"] += 1
        found: aiplatform_v1.TuningJob = super().get_tuning_job(name)
        return found

    def list_tuning_jobs(self, *args: Any, **kwargs: Any) -> aiplatform_v1.ListTuningJobsResponse:
        self.rpcs["ListTuningJobs"] += 1
        page: aiplatform_v1.ListTuningJobsResponse = super().list_tuning_jobs(*args, **kwargs)
        return page


def measure(quota: int) -> dict[str, int]:
    emulator = CountingEmulator(quota=quota, job_seconds=3600, seed=quota)
    with vertex_emulator(emulator) as host:
        settings = make_settings(TUNEDROP_QUOTA=str(quota), GOOGLE_CLOUD_PROJECT="itest")
        blobs = InMemoryBlobStore()
        app = assemble(
            settings,
            store=InMemoryJobStore(),
            publisher=RecordingPublisher(),
            blobs=blobs,
            tuning=vertex_tuning(host),
        )
        for n in range(quota):
            stored = blobs.put(settings.bucket, f"incoming/job-{n}.jsonl", VALID_DATASET)
            app.uploads.handle(_uploaded(stored))
        submitted = app.dispatcher.dispatch()
        assert len(submitted) == quota, f"{len(submitted)} of {quota} jobs submitted"
        emulator.rpcs.clear()
        assert app.poller.poll() == []
        running = dict(emulator.rpcs)
        ended = app.store.get(submitted[0])
        assert ended is not None
        emulator.cancel_tuning_job(ended.value.vertex_job_name)  # one job ends before the next tick
        emulator.rpcs.clear()
        finished = app.poller.poll()
        return {
            "quota": quota,
            "list_running": running.get("ListTuningJobs", 0),
            "get_running": running.get("GetTuningJob", 0),
            "list_one_ended": emulator.rpcs["ListTuningJobs"],
            "get_one_ended": emulator.rpcs["GetTuningJob"],
            "noticed": len(finished),
        }


def _uploaded(stored: StoredObject) -> UploadedObject:
    return UploadedObject(
        bucket=stored.bucket,
        name=stored.name,
        generation=stored.generation,
        metadata={},
        event_id=f"evt-{stored.generation}",
    )


def main(argv: Sequence[str]) -> int:
    rows = [measure(quota) for quota in QUOTAS]
    print("### Vertex AI calls per poll tick (the Vertex AI emulator over gRPC, one quota region)\n")
    print("| running jobs | ListTuningJobs | GetTuningJob | after one job ended: List | Get | end noticed that tick |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['quota']} | {row['list_running']} | {row['get_running']} | {row['list_one_ended']} "
            f"| {row['get_one_ended']} | {'yes' if row['noticed'] == 1 else 'NO'} |"
        )
    flat = all(r["list_running"] + r["get_running"] <= TARGET_CALLS for r in rows)
    noticed = all(r["noticed"] == 1 for r in rows)
    print(
        f"\ncalls per tick flat as jobs grow (<= {TARGET_CALLS}): {'met' if flat else 'NOT met'}; ends noticed: "
        f"{'met' if noticed else 'NOT met'}"
    )
    return 0 if flat and noticed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
