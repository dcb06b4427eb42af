"""Three teams share a quota of four on the local stack (issue 13's acceptance): weights 2:1:1, 30 jobs each.

The whole stack runs (emulators, the three functions, the Vertex AI emulator) with ``TUNEDROP_QUOTA=4`` and team
policies giving ``alpha`` weight 2, ``bravo`` and ``charlie`` weight 1. Each team's 30 datasets go under
``datasets/<team>/`` and a manifest naming each goes under ``incoming/<team>/``, the three teams' manifests
interleaved so they arrive together. Once every job has its completion event, the figures come from public
surfaces only: `tunedrop jobs --json` (each job's history and end time) and the Vertex AI API (the jobs created).

* Share of slot-time while all three teams had queued work: a job holds a slot from its claim (its move to
  SUBMITTING) to its end on Vertex AI (``ended_at``), as the dispatcher charges it; only the part of that span
  inside the periods when every team had a job QUEUED counts. Target: each team within +-10 % (relative) of its
  weight's share, 50 % / 25 % / 25 %. Also each team's jobs claimed in that time, and the order of all claims.
* Peak concurrency of the Vertex jobs (create to end): at most the quota. The emulator's own limit is set far
  above it, so Tunedrop's slot table is what keeps it there.
* Duplicates: each job has exactly one Vertex job.
* Wall time from the first manifest uploaded to the last completion event.

The run fails (exit 1) when an invariant breaks: more jobs at once than the quota, a job with no Vertex job or
more than one, a job that did not succeed. The share is printed against its target, met or MISSED.

Every job runs the same time on the emulator (``TUNEDROP_EMULATOR_JOB_SECONDS``): uploads cannot set the
emulator's per-job duration label (``tunedrop_`` label keys are Tunedrop's own), so durations vary only by when
the poller notices an end. The dispatcher charges an ended job at least ``MIN_CHARGE_SECONDS`` (a minute), so on
jobs seconds long it shares by jobs started, weighted; the slot-time share then follows because lengths are equal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.jobs import job_id_for
from tests.e2e.helpers import CompletionReader, bucket, dataset, list_tuning_jobs, max_overlap
from tests.stackfixture import running_stack

TEAM_WEIGHTS = {"alpha": 2, "bravo": 1, "charlie": 1}
JOBS_PER_TEAM = 30
QUOTA = 4
JOB_SECONDS = 4
POLL_SECONDS = 1
TOLERANCE = 0.10  # relative, on each team's share
FINISH_TIMEOUT_SECONDS = 900.0
SETTINGS = {
    "TUNEDROP_QUOTA": str(QUOTA),
    # Far above the quota: were Tunedrop to oversubscribe, the peak concurrency would show it, not a refusal.
    "TUNEDROP_EMULATOR_QUOTA": str(QUOTA * 5),
    "TUNEDROP_EMULATOR_JOB_SECONDS": str(JOB_SECONDS),
    "TUNEDROP_POLL_SECONDS": str(POLL_SECONDS),
    "TUNEDROP_TEAM_POLICIES": json.dumps({"teams": {team: {"weight": w} for team, w in TEAM_WEIGHTS.items()}}),
}

Span = tuple[datetime, datetime]


def merged(spans: Iterable[Span]) -> list[Span]:
    """The union of the spans, as disjoint spans in time order."""
    union: list[Span] = []
    for start, end in sorted(spans):
        if union and start <= union[-1][1]:
            union[-1] = (union[-1][0], max(union[-1][1], end))
        elif start < end:
            union.append((start, end))
    return union


def intersected(left: Sequence[Span], right: Sequence[Span]) -> list[Span]:
    """The time covered by both lists of disjoint spans."""
    both = [(max(a, c), min(b, d)) for a, b in left for c, d in right]
    return merged(span for span in both if span[0] < span[1])


def seconds_within(span: Span, periods: Sequence[Span]) -> float:
    """How much of `span` lies inside the disjoint `periods`."""
    start, end = span
    return sum(max(0.0, (min(end, b) - max(start, a)).total_seconds()) for a, b in periods)


@dataclass(frozen=True)
class JobTimes:
    """What `tunedrop jobs --json` records of one job's time in the queue and in a slot."""

    team: str
    state: str
    queued: list[Span]  # each stretch the job spent QUEUED
    slot: Span | None  # its last claim to its end on Vertex AI; None if it never got one

    @classmethod
    def from_document(cls, document: dict[str, Any], now: datetime) -> JobTimes:
        moves = [(datetime.fromisoformat(str(h["at"])), str(h["to_state"])) for h in document["history"]]
        queued: list[Span] = []
        claimed: datetime | None = None
        for (at, state), (left_at, _) in zip(moves, [*moves[1:], (now, "")], strict=True):
            if state == "QUEUED":
                queued.append((at, left_at))
            elif state == "SUBMITTING":
                claimed = at  # the last claim: an earlier one may have lost the slot race and gone back to QUEUED
        ended = document.get("ended_at")
        slot = (claimed, datetime.fromisoformat(str(ended))) if claimed and ended else None
        return cls(str(document["team"]), str(document["state"]), queued, slot)


def upload_jobs(env: dict[str, str]) -> dict[str, str]:
    """Each team's datasets, then one manifest per dataset, the teams interleaved; job id -> team."""
    target = bucket(env)
    body = dataset()
    for team in TEAM_WEIGHTS:
        for n in range(JOBS_PER_TEAM):
            target.blob(f"datasets/{team}/set-{n:02d}.jsonl").upload_from_string(body)
    job_teams: dict[str, str] = {}
    for n in range(JOBS_PER_TEAM):
        for team in TEAM_WEIGHTS:
            blob = target.blob(f"incoming/{team}/job-{n:02d}.yaml")
            blob.upload_from_string(
                f"training_dataset: datasets/{team}/set-{n:02d}.jsonl\n".encode(), content_type="application/yaml"
            )
            job_teams[job_id_for(env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))] = team
    return job_teams


def job_documents(env: dict[str, str]) -> list[dict[str, Any]]:
    """`tunedrop jobs --json`: every job document, as operators see them."""
    done = subprocess.run(
        [sys.executable, "-c", "from shared.cli import main; main()", "jobs", "--json", "--limit", "1000"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    documents: list[dict[str, Any]] = json.loads(done.stdout)
    return documents


@dataclass
class Run:
    job_teams: dict[str, str]  # job id -> team
    times: dict[str, JobTimes]  # job id -> its recorded times
    vertex_jobs: Counter[str]  # job id -> Vertex jobs created for it
    vertex_spans: list[Span]  # each Vertex job's create to end
    wall_seconds: float  # first manifest uploaded to last completion event
    completed: int  # jobs with a completion event

    @property
    def contended(self) -> list[Span]:
        """The periods when every team had a job QUEUED."""
        per_team = [
            merged(span for job_id, times in self.times.items() if times.team == team for span in times.queued)
            for team in TEAM_WEIGHTS
        ]
        periods = per_team[0]
        for other in per_team[1:]:
            periods = intersected(periods, other)
        return periods

    def slot_seconds(self, periods: Sequence[Span]) -> dict[str, float]:
        """Per team, slot-seconds held inside `periods`."""
        held = dict.fromkeys(TEAM_WEIGHTS, 0.0)
        for times in self.times.values():
            if times.slot is not None:
                held[times.team] += seconds_within(times.slot, periods)
        return held

    def claims_within(self, periods: Sequence[Span]) -> Counter[str]:
        """Per team, jobs that took a slot inside `periods`."""
        return Counter(
            times.team
            for times in self.times.values()
            if times.slot is not None and any(start <= times.slot[0] < end for start, end in periods)
        )

    def claim_order(self) -> str:
        """Each job's team initial in the order the jobs took their slots, the contended periods between bars."""
        periods = self.contended
        claims = sorted((times.slot[0], times.team[0]) for times in self.times.values() if times.slot is not None)
        marks = [(start, "|") for start, _ in periods] + [(end, "|") for _, end in periods]
        return "".join(mark for _, mark in sorted(claims + marks))


def run(state_dir: Path) -> Run:
    with running_stack(state_dir, SETTINGS) as env:
        reader = CompletionReader(env)
        try:
            began = time.monotonic()
            job_teams = upload_jobs(env)
            events = reader.read_until(
                lambda got: {e.attributes["ce-subject"] for e in got} >= set(job_teams), FINISH_TIMEOUT_SECONDS
            )
            wall = time.monotonic() - began
        finally:
            reader.close()
        now = datetime.now().astimezone()
        documents = {d["job_id"]: d for d in job_documents(env) if d["job_id"] in job_teams}
        vertex = [t for t in list_tuning_jobs(env) if t.labels.get("tunedrop_job") in job_teams]
    return Run(
        job_teams=job_teams,
        times={job_id: JobTimes.from_document(d, now) for job_id, d in documents.items()},
        vertex_jobs=Counter(t.labels["tunedrop_job"] for t in vertex),
        vertex_spans=[(t.create_time, t.end_time) for t in vertex],
        wall_seconds=wall,
        completed=len({e.attributes["ce-subject"] for e in events} & set(job_teams)),
    )


def share_table(result: Run) -> float:
    """Print each team's share while all three had queued work; the largest relative deviation from its weight."""
    periods = result.contended
    contended_seconds = sum((b - a).total_seconds() for a, b in periods)
    held = result.slot_seconds(periods)
    claims = result.claims_within(periods)
    all_held = sum(held.values()) or float("nan")
    all_claims = sum(claims.values()) or float("nan")
    all_weight = sum(TEAM_WEIGHTS.values())
    print(
        f"Teams {', '.join(f'{t} (weight {w})' for t, w in TEAM_WEIGHTS.items())}; {JOBS_PER_TEAM} jobs each; "
        f"quota {QUOTA}; {JOB_SECONDS} s jobs on the Vertex AI emulator; {POLL_SECONDS} s poll. All three teams "
        f"had queued work for {contended_seconds:.0f} s ({len(periods)} stretch(es)).\n"
    )
    print("| team | weight | target share | slot-time (s) | share of slot-time | deviation | jobs claimed | share |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    for team, weight in TEAM_WEIGHTS.items():
        target = weight / all_weight
        share = held[team] / all_held
        worst = max(worst, abs(share / target - 1))
        print(
            f"| {team} | {weight} | {target:.0%} | {held[team]:.0f} | {share:.1%} | {share / target - 1:+.1%} | "
            f"{claims[team]} | {claims[team] / all_claims:.0%} |"
        )
    print(
        f"\nlargest deviation from the weight's share {worst:.1%} (target +-{TOLERANCE:.0%}): "
        f"{'met' if worst <= TOLERANCE else 'MISSED'}"
    )
    print(f"claims in time order (team initials, | where every team had queued work): `{result.claim_order()}`\n")
    return worst


def invariants(result: Run) -> bool:
    """Print the quota, duplicate and outcome checks; whether they all hold."""
    states = Counter(times.state for times in result.times.values())
    peak = max_overlap(result.vertex_spans)
    claimed_peak = max_overlap([times.slot for times in result.times.values() if times.slot is not None])
    duplicates = sum(1 for count in result.vertex_jobs.values() if count > 1)
    missing = sum(1 for job_id in result.job_teams if result.vertex_jobs[job_id] == 0)
    print(f"peak concurrent Vertex jobs {peak}, peak slots claimed {claimed_peak} (quota {QUOTA})")
    print(
        f"jobs {len(result.job_teams)}, completion events {result.completed}, states "
        f"{', '.join(f'{s} {n}' for s, n in sorted(states.items()))}; Vertex jobs {sum(result.vertex_jobs.values())} "
        f"({duplicates} jobs with more than one, {missing} with none)"
    )
    return (
        max(peak, claimed_peak) <= QUOTA
        and not duplicates
        and not missing
        and states == Counter({"SUCCEEDED": len(result.job_teams)})
    )


def report(result: Run, total_seconds: float) -> int:
    share_table(result)
    intact = invariants(result)
    print(
        f"wall time: {result.wall_seconds:.0f} s from the first manifest to the last completion event; "
        f"{total_seconds:.0f} s with the stack's start and stop"
    )
    # Like the fairness simulation's share, the share here is a figure to read; a broken invariant fails the run.
    return 0 if intact else 1


def main(argv: Sequence[str]) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(Path(tmp) / "three-teams")
    return report(result, time.monotonic() - started)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
