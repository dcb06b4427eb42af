"""Time and Vertex AI calls per evaluated example of the evaluation gate (issue 15's closing-note figures).

On the local stack (the Vertex AI emulator's GenerateContent and EvaluateInstances over gRPC, the real Firestore,
Pub/Sub and Cloud Storage emulators), one job per metric is tuned with promote_as and a held-out set, and the
gate's own accounting on the job (Job.verdict: calls, seconds, examples) is read back. Exact match is judged in
batched EvaluateInstances calls; pairwise asks the judge once per example.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.bootstrap import build_app
from tests.e2e.helpers import CompletionReader, bucket
from tests.e2e.test_gate import HELD_OUT, TEAM, _tune
from tests.stackfixture import running_stack

SETTINGS = {
    "TUNEDROP_QUOTA": "2",
    "TUNEDROP_EMULATOR_QUOTA": "10",
    "TUNEDROP_EMULATOR_JOB_SECONDS": "3",
    "TUNEDROP_POLL_SECONDS": "1",
}
METRICS = ("exact_match", "pairwise")


def measure(env: dict[str, str]) -> list[dict[str, Any]]:
    # One alias per metric, so each job is judged against the base model (not against the other's champion).
    runs = {metric: uuid.uuid4().hex[:6] for metric in METRICS}
    for run in runs.values():
        bucket(env).blob(f"datasets/{TEAM}/{run}-held-out.jsonl").upload_from_string(HELD_OUT)
    reader = CompletionReader(env)
    try:
        jobs = {metric: _tune(env, run, "bench", 100, gate={"metric": metric}) for metric, run in runs.items()}
        reader.read_until(
            lambda got: (
                {e.data.get("job_id") for e in got if e.attributes["ce-type"].startswith("tunedrop.model.")}
                >= set(jobs.values())
            ),
            timeout=300,
        )
    finally:
        reader.close()
    store = build_app().store
    rows = []
    for metric, job_id in jobs.items():
        found = store.get(job_id)
        verdict = (found.value.verdict if found else None) or {}
        examples = max(1, int(verdict.get("examples", 0)))
        rows.append(
            {
                "metric": metric,
                "examples": verdict.get("examples", 0),
                "calls_per_example": float(verdict.get("calls", 0)) / examples,
                "ms_per_example": 1000 * float(verdict.get("seconds", 0)) / examples,
                "verdict": verdict.get("verdict", "(none)"),
            }
        )
    return rows


def main(argv: Sequence[str]) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp) / "gate-calls", SETTINGS) as env:
        rows = measure(env)
    print("### The evaluation gate: Vertex AI calls and time per evaluated example (local stack, emulator)\n")
    print("| metric | examples | calls per example | ms per example | verdict |")
    print("|---|---:|---:|---:|---|")
    for row in rows:
        print(
            f"| {row['metric']} | {row['examples']} | {row['calls_per_example']:.2f} | "
            f"{row['ms_per_example']:.1f} | {row['verdict']} |"
        )
    print(f"\n(wall time {time.monotonic() - started:.0f} s, stack start included)")
    return 0 if all(row["examples"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
