"""The gate's verdict on a candidate against its baseline (the alias's champion, or else the base model).

What the margin is, per metric:

* exact_match, bleu, rouge: each example's score (0 to 1, from EvaluateInstances) for the candidate minus the
  baseline's on the same example; the margin is the mean of those differences, in the metric's own units (0.31 on
  exact match: the candidate answers 31 more examples in 100 exactly right).
* pairwise: the judge's per-example choice 1 / 0.5 / 0 (candidate better / tie / baseline better) counts as
  +1 / 0 / -1, so the margin is the win rate minus the loss rate. Callers pass the choices through
  `pairwise_scores`, which gives the candidate the choice and the baseline its complement: the difference of the
  two is then exactly that +1 / 0 / -1.

The verdict, on n scored examples, with the bootstrap interval [low, high] of the margin at the gate's confidence:

* `better` when n >= min_examples and low > the gate's margin (strictly: a tie on every example is not better
  under the default margin 0).
* `worse` when n >= min_examples and high < min(0, margin): the candidate is confidently behind the baseline, and
  also below what the gate would accept (which matters only for a negative margin). A candidate that is ahead but
  not by the margin is not `worse`: it is `inconclusive`, and its reason says it did not reach the margin.
* `inconclusive` otherwise: too few examples (whatever the scores say), or an interval that straddles the bar.

Only `better` moves an alias; `worse` and `inconclusive` both hold it, the reason saying which. The reasons are
written for the people who read the held event and the report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final, Literal

import msgspec

from shared.gate.schema import SCORED_METRICS, Gate, ScoredMetric
from shared.gate.stats import DEFAULT_RESAMPLES, MarginInterval, paired_margin_interval

Verdict = Literal["better", "worse", "inconclusive"]
PAIRWISE_CHOICES: Final = frozenset({0.0, 0.5, 1.0})
DEFAULT_BASELINE_NAME: Final = "the baseline"


class GateSummary(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the gate found; Job.verdict holds it as plain data (msgspec.to_builtins)."""

    metric: str
    examples: int
    candidate_mean: float
    baseline_mean: float
    margin_mean: float  # mean of candidate - baseline per example (pairwise: win rate - loss rate)
    low: float  # the bootstrap interval of margin_mean at `confidence`
    high: float
    confidence: float
    win_rate: float  # share of examples where the candidate scored higher
    verdict: Verdict
    reason: str
    required_margin: float = 0.0  # the gate's margin the low end had to clear
    loss_rate: float = 0.0  # share of examples where the baseline scored higher


def pairwise_scores(choices: Iterable[float]) -> tuple[list[float], list[float]]:
    """The judge's per-example choices (1.0 candidate, 0.5 tie, 0.0 baseline) as candidate and baseline scores."""
    candidate = [float(choice) for choice in choices]
    for choice in candidate:
        if choice not in PAIRWISE_CHOICES:
            raise ValueError(f"a pairwise choice is 1.0, 0.5 or 0.0, not {choice}")
    return candidate, [1.0 - choice for choice in candidate]


def not_evaluated(gate: Gate, metric: str, reason: str) -> GateSummary:
    """The verdict when the evaluation did not run (over the cost cap, nothing to evaluate): inconclusive."""
    return GateSummary(
        metric=metric,
        examples=0,
        candidate_mean=0.0,
        baseline_mean=0.0,
        margin_mean=0.0,
        low=0.0,
        high=0.0,
        confidence=gate.confidence,
        win_rate=0.0,
        verdict="inconclusive",
        reason=reason,
        required_margin=gate.margin,
    )


def decide(
    gate: Gate,
    candidate_scores: Sequence[float],
    baseline_scores: Sequence[float],
    seed: int | str,
    *,
    metric: ScoredMetric | None = None,
    baseline_name: str = DEFAULT_BASELINE_NAME,
    resamples: int = DEFAULT_RESAMPLES,
) -> GateSummary:
    """The verdict on per-example scores of the same held-out examples, in the same order. `metric` is the one
    scored with (required when the gate's is auto); `baseline_name` is how reasons name the baseline ("the
    champion", "the base model"); `seed` makes the bootstrap reproducible (the job id is a good one)."""
    scored = _scored_metric(gate, metric)
    _check_scores(scored, candidate_scores, baseline_scores)
    count = len(candidate_scores)
    if count == 0:
        return not_evaluated(gate, scored, "no held-out example was scored, so nothing shows the candidate is better")
    differences = [c - b for c, b in zip(candidate_scores, baseline_scores, strict=True)]
    interval = paired_margin_interval(differences, gate.confidence, seed, resamples)
    verdict, reason = _judged(gate, scored, differences, interval, baseline_name)
    return GateSummary(
        metric=scored,
        examples=count,
        candidate_mean=math.fsum(candidate_scores) / count,
        baseline_mean=math.fsum(baseline_scores) / count,
        margin_mean=interval.mean,
        low=interval.low,
        high=interval.high,
        confidence=gate.confidence,
        win_rate=sum(1 for d in differences if d > 0) / count,
        verdict=verdict,
        reason=reason,
        required_margin=gate.margin,
        loss_rate=sum(1 for d in differences if d < 0) / count,
    )


def _scored_metric(gate: Gate, metric: ScoredMetric | None) -> ScoredMetric:
    if metric is None:
        if gate.metric == "auto":
            raise ValueError("the gate's metric is auto: pass the metric it resolved to (resolve_metric)")
        return gate.metric
    if metric not in SCORED_METRICS:
        raise ValueError(f"scores come from exact_match, bleu, rouge or pairwise, not {metric}")
    if gate.metric not in ("auto", metric):
        raise ValueError(f"the gate scores with {gate.metric}, not {metric}")
    return metric


def _check_scores(metric: str, candidate: Sequence[float], baseline: Sequence[float]) -> None:
    if len(candidate) != len(baseline):
        raise ValueError(f"{len(candidate)} candidate scores but {len(baseline)} baseline scores: they must pair up")
    for score in (*candidate, *baseline):
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise ValueError(f"a score is between 0 and 1, not {score}")
    if metric == "pairwise":
        for choice, rest in zip(candidate, baseline, strict=True):
            if choice not in PAIRWISE_CHOICES or choice + rest != 1.0:
                raise ValueError("pairwise scores are the judge's choices and their complements (pairwise_scores)")


def _judged(
    gate: Gate, metric: str, differences: Sequence[float], interval: MarginInterval, baseline_name: str
) -> tuple[Verdict, str]:
    count = len(differences)
    evidence = _evidence(gate, metric, differences, interval)
    if count < gate.min_examples:
        return "inconclusive", (
            f"only {count} held-out example{'s' if count != 1 else ''} scored, and the gate needs at least "
            f"{gate.min_examples} (the candidate against {baseline_name}: {evidence})"
        )
    if interval.low > gate.margin:
        return "better", f"the candidate beat {baseline_name} by {evidence}{_bar(gate)}"
    if interval.high < min(0.0, gate.margin):
        return "worse", f"the candidate fell behind {baseline_name}: {evidence}"
    if all(difference == 0 for difference in differences):
        return "inconclusive", (
            f"the candidate and {baseline_name} scored the same on all {count} examples, so nothing shows the "
            f"candidate is better{_bar(gate)}"
        )
    return "inconclusive", (
        f"the candidate against {baseline_name}: {evidence}; the interval's low end is not above the gate's "
        f"margin {gate.margin:.2f}, so it is not shown better"
    )


def _evidence(gate: Gate, metric: str, differences: Sequence[float], interval: MarginInterval) -> str:
    count = len(differences)
    percent = f"{gate.confidence * 100:g}%"
    text = (
        f"{interval.mean:.2f} ({percent} interval {interval.low:.2f} to {interval.high:.2f}) on {count} "
        f"example{'s' if count != 1 else ''}"
    )
    if metric == "pairwise":
        wins = sum(1 for d in differences if d > 0) / count
        losses = sum(1 for d in differences if d < 0) / count
        return f"{text}, judged pairwise: win rate {wins:.2f} minus loss rate {losses:.2f}"
    return f"{text} of {metric}"


def _bar(gate: Gate) -> str:
    return "" if gate.margin == 0 else f" (the gate asks for more than {gate.margin:.2f})"
