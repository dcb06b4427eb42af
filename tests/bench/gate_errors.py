"""How often the evaluation gate promotes a candidate that is no better, and misses one that is (issue 15).

Each simulated gate scores EXAMPLES held-out examples (the default min_examples, the hardest case the gate
accepts) with the gate's defaults (margin 0, 95% confidence, 2,000 resamples) and its real code (shared.gate.decide).
Every example has its own difficulty, so both models find the same examples hard, as on real held-out data; on
top of that each answer gets its own noise. "No better": the candidate's quality is the champion's. "Clearly
better", per metric:

* exact_match: each example has a chance p (uniform 0.2 to 0.8) that the champion answers it exactly right; the
  candidate's chance is p + 0.25 (capped at 1): about 50% of answers exactly right against 75%.
* rouge: each example has a quality q (uniform 0.2 to 0.8); each model's score is q plus its own noise (normal,
  sd 0.15), clipped to 0..1; the candidate's is q + 0.10 plus noise.
* pairwise: the judge compares two answers of quality q + noise each (normal, sd 0.2) and calls a tie under 0.1
  apart; the candidate's quality is q + 0.20. No better: about 36% wins, 28% ties, 36% losses; clearly better: about
  64% wins and 15% losses.

Target: no better, at most 5% promoted; clearly better, at least 90% promoted. tests/unit/gate/
test_false_promotions.py holds 100 gates of each to that on fixed seeds; this prints 1,000 of each, the time per
verdict, and how often smaller leads get through (the gate's power).
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shared.gate import Gate, ScoredMetric, decide, pairwise_scores

EXAMPLES = 100
BENCH_GATES = 1_000
MAX_FALSE_PROMOTIONS = 0.05
MIN_TRUE_PROMOTIONS = 0.90

Scores = tuple[list[float], list[float]]


def exact_match_scores(rng: random.Random, examples: int, lead: float) -> Scores:
    candidate, baseline = [], []
    for _ in range(examples):
        chance = rng.uniform(0.2, 0.8)
        baseline.append(1.0 if rng.random() < chance else 0.0)
        candidate.append(1.0 if rng.random() < min(1.0, chance + lead) else 0.0)
    return candidate, baseline


def rouge_scores(rng: random.Random, examples: int, lead: float) -> Scores:
    candidate, baseline = [], []
    for _ in range(examples):
        quality = rng.uniform(0.2, 0.8)
        baseline.append(_clipped(quality + rng.gauss(0.0, 0.15)))
        candidate.append(_clipped(quality + lead + rng.gauss(0.0, 0.15)))
    return candidate, baseline


def pairwise_judged(rng: random.Random, examples: int, lead: float) -> Scores:
    choices = []
    for _ in range(examples):
        quality = rng.uniform(0.2, 0.8)
        apart = (quality + lead + rng.gauss(0.0, 0.2)) - (quality + rng.gauss(0.0, 0.2))
        choices.append(0.5 if abs(apart) < 0.1 else 1.0 if apart > 0 else 0.0)
    return pairwise_scores(choices)


@dataclass(frozen=True)
class Scenario:
    metric: ScoredMetric
    scores: Callable[[random.Random, int, float], Scores]
    clear_lead: float  # "clearly better": the candidate's lead in the generator's units


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("exact_match", exact_match_scores, 0.25),
    Scenario("rouge", rouge_scores, 0.10),
    Scenario("pairwise", pairwise_judged, 0.20),
)


@dataclass(frozen=True)
class Count:
    promoted: int
    gates: int
    seconds_per_verdict: float


def count_promotions(scenario: Scenario, lead: float, gates: int, examples: int = EXAMPLES) -> Count:
    """How many of `gates` simulated gates promote a candidate with that lead; deterministic (seeded per gate)."""
    gate = Gate(metric=scenario.metric)
    promoted, spent = 0, 0.0
    for number in range(gates):
        rng = random.Random(f"{scenario.metric}/{lead}/{number}")
        candidate, baseline = scenario.scores(rng, examples, lead)
        started = time.perf_counter()
        summary = decide(gate, candidate, baseline, seed=f"gate-{number}", baseline_name="the champion")
        spent += time.perf_counter() - started
        promoted += summary.verdict == "better"
    return Count(promoted, gates, spent / gates)


def _clipped(value: float) -> float:
    return min(1.0, max(0.0, value))


def _row(metric: str, label: str, count: Count, target: str) -> str:
    share = count.promoted / count.gates
    return (
        f"| {metric} | {label} | {count.promoted} of {count.gates} ({share:.1%}) | {target} | "
        f"{count.seconds_per_verdict * 1000:.1f} ms |"
    )


def main(argv: Sequence[str]) -> int:
    gates = int(argv[0]) if argv else BENCH_GATES
    print(f"{EXAMPLES} examples per gate; defaults: margin 0, 95% interval, min_examples 100, 2,000 resamples.\n")
    print("| metric | candidate | promoted | target | time per verdict |")
    print("| --- | --- | --- | --- | --- |")
    failed = False
    for scenario in SCENARIOS:
        alike = count_promotions(scenario, 0.0, gates)
        better = count_promotions(scenario, scenario.clear_lead, gates)
        failed |= alike.promoted > MAX_FALSE_PROMOTIONS * gates or better.promoted < MIN_TRUE_PROMOTIONS * gates
        print(_row(scenario.metric, "no better", alike, "at most 5%"), flush=True)
        print(_row(scenario.metric, f"better by {scenario.clear_lead:g}", better, "at least 90%"), flush=True)
    print("\nPower on exact match (how often a smaller lead is promoted, 200 gates each):\n")
    print("| lead (exact-match rate) | promoted |")
    print("| --- | --- |")
    for lead in (0.05, 0.10, 0.15, 0.20):
        count = count_promotions(SCENARIOS[0], lead, 200)
        print(f"| +{lead:.2f} | {count.promoted} of {count.gates} ({count.promoted / count.gates:.0%}) |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
