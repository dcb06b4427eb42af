"""The verdict and its reasons: the margin per metric, the edges (too few examples, all ties, the margin itself),
and the refusals of scores that cannot be compared."""

from __future__ import annotations

import math
import re

import msgspec
import pytest

from shared.gate import Gate, GateSummary, decide, not_evaluated, pairwise_scores


def constant(difference: float, examples: int) -> tuple[list[float], list[float]]:
    """Scores whose every difference is `difference`: the interval is that one point, so verdicts are exact."""
    baseline = 0.5 - difference / 2
    return [baseline + difference] * examples, [baseline] * examples


def test_a_clear_lead_is_better_with_a_reason_people_can_read() -> None:
    candidate, baseline = constant(0.31, 180)
    summary = decide(Gate(), candidate, baseline, seed="job-1", metric="rouge", baseline_name="the champion")
    assert summary.verdict == "better"
    assert (
        summary.reason == "the candidate beat the champion by 0.31 (95% interval 0.31 to 0.31) on 180 examples of rouge"
    )
    assert (summary.examples, summary.metric, summary.confidence, summary.required_margin) == (180, "rouge", 0.95, 0.0)
    assert summary.candidate_mean - summary.baseline_mean == pytest.approx(0.31)
    assert (summary.win_rate, summary.loss_rate) == (1.0, 0.0)


def test_exact_match_margin_is_the_difference_of_the_two_rates() -> None:
    # 100 examples: both right on 40, only the candidate on 35, only the baseline on 5, both wrong on 20.
    candidate = [1.0] * 40 + [1.0] * 35 + [0.0] * 5 + [0.0] * 20
    baseline = [1.0] * 40 + [0.0] * 35 + [1.0] * 5 + [0.0] * 20
    summary = decide(Gate(metric="exact_match"), candidate, baseline, seed=3)
    assert (summary.candidate_mean, summary.baseline_mean) == (0.75, 0.45)
    assert summary.margin_mean == pytest.approx(0.30)
    assert (summary.win_rate, summary.loss_rate) == (0.35, 0.05)
    assert summary.verdict == "better"
    assert summary.low > 0.15 and summary.high < 0.45


def test_pairwise_margin_is_win_rate_minus_loss_rate() -> None:
    choices = [1.0] * 60 + [0.5] * 20 + [0.0] * 20
    candidate, baseline = pairwise_scores(choices)
    assert (candidate[:1], candidate[60:61], candidate[80:81]) == ([1.0], [0.5], [0.0])
    assert (baseline[:1], baseline[60:61], baseline[80:81]) == ([0.0], [0.5], [1.0])
    summary = decide(Gate(metric="pairwise"), candidate, baseline, seed=9, baseline_name="the base model")
    assert summary.margin_mean == pytest.approx(0.60 - 0.20)
    assert (summary.win_rate, summary.loss_rate) == (0.6, 0.2)
    assert summary.verdict == "better"
    assert summary.reason.startswith("the candidate beat the base model by 0.40 (95% interval ")
    assert summary.reason.endswith("on 100 examples, judged pairwise: win rate 0.60 minus loss rate 0.20")


def test_too_few_examples_is_inconclusive_however_good_the_scores() -> None:
    candidate, baseline = constant(1.0, 99)
    summary = decide(Gate(metric="exact_match"), candidate, baseline, seed=1)
    assert summary.verdict == "inconclusive"
    assert summary.reason.startswith("only 99 held-out examples scored, and the gate needs at least 100 (")
    candidate, baseline = constant(-1.0, 1)
    lone = decide(Gate(metric="exact_match", min_examples=5), candidate, baseline, seed=1)
    assert (lone.verdict, lone.reason.split(" (")[0]) == (
        "inconclusive",
        "only 1 held-out example scored, and the gate needs at least 5",
    )


def test_exactly_min_examples_may_promote() -> None:
    candidate, baseline = constant(1.0, 100)
    assert decide(Gate(metric="exact_match"), candidate, baseline, seed=1).verdict == "better"


def test_ties_on_every_example_are_not_better_under_the_default_margin() -> None:
    scores = [1.0, 0.0, 1.0, 1.0] * 30
    summary = decide(Gate(metric="exact_match"), scores, scores, seed=1, baseline_name="the champion")
    assert (summary.verdict, summary.margin_mean, summary.low, summary.high) == ("inconclusive", 0.0, 0.0, 0.0)
    assert summary.reason == (
        "the candidate and the champion scored the same on all 120 examples, so nothing shows the candidate is better"
    )
    judged = decide(Gate(metric="pairwise"), *pairwise_scores([0.5] * 120), seed=1)
    assert (judged.verdict, judged.win_rate, judged.loss_rate) == ("inconclusive", 0.0, 0.0)


def test_ties_pass_a_gate_that_accepts_a_candidate_slightly_behind() -> None:
    scores = [0.5] * 120
    summary = decide(Gate(metric="bleu", margin=-0.05), scores, scores, seed=1)
    assert summary.verdict == "better"
    assert summary.reason.endswith("of bleu (the gate asks for more than -0.05)")


def test_the_low_end_must_be_strictly_above_the_margin() -> None:
    candidate, baseline = constant(0.25, 150)
    at_margin = decide(Gate(metric="rouge", margin=0.25), candidate, baseline, seed=1)
    assert at_margin.verdict == "inconclusive"
    assert at_margin.reason == (
        "the candidate against the baseline: 0.25 (95% interval 0.25 to 0.25) on 150 examples of rouge; the "
        "interval's low end is not above the gate's margin 0.25, so it is not shown better"
    )
    under_margin = decide(Gate(metric="rouge", margin=0.2), candidate, baseline, seed=1)
    assert under_margin.verdict == "better"
    assert under_margin.reason.endswith("(the gate asks for more than 0.20)")


def test_ahead_but_not_by_the_margin_is_inconclusive_not_worse() -> None:
    candidate, baseline = constant(0.1, 150)
    assert decide(Gate(metric="rouge", margin=0.2), candidate, baseline, seed=1).verdict == "inconclusive"


def test_confidently_behind_is_worse() -> None:
    candidate, baseline = constant(-0.1, 150)
    summary = decide(Gate(metric="rouge"), candidate, baseline, seed=1, baseline_name="the champion")
    assert summary.verdict == "worse"
    assert summary.reason == (
        "the candidate fell behind the champion: -0.10 (95% interval -0.10 to -0.10) on 150 examples of rouge"
    )


def test_with_a_negative_margin_worse_means_behind_by_more_than_it_allows() -> None:
    candidate, baseline = constant(-0.1, 150)
    assert decide(Gate(metric="rouge", margin=-0.2), candidate, baseline, seed=1).verdict == "better"
    candidate, baseline = constant(-0.3, 150)
    assert decide(Gate(metric="rouge", margin=-0.2), candidate, baseline, seed=1).verdict == "worse"


def test_an_interval_across_the_bar_is_inconclusive() -> None:
    candidate = [1.0] * 30 + [0.0] * 20 + [1.0] * 50
    baseline = [0.0] * 30 + [1.0] * 20 + [1.0] * 50
    summary = decide(Gate(metric="exact_match"), candidate, baseline, seed="job-7")
    assert summary.verdict == "inconclusive"
    assert summary.low < 0.0 < summary.high
    assert "so it is not shown better" in summary.reason


def test_the_confidence_is_shown_as_asked() -> None:
    candidate, baseline = constant(0.5, 100)
    summary = decide(Gate(metric="rouge", confidence=0.999), candidate, baseline, seed=1)
    assert "(99.9% interval 0.50 to 0.50)" in summary.reason


def test_a_verdict_is_reproducible_and_stored_as_plain_data() -> None:
    candidate = [1.0, 0.0, 1.0, 1.0, 0.0] * 30
    baseline = [0.0, 0.0, 1.0, 0.0, 1.0] * 30
    first = decide(Gate(metric="exact_match"), candidate, baseline, seed="job-3")
    assert decide(Gate(metric="exact_match"), candidate, baseline, seed="job-3") == first
    stored = msgspec.to_builtins(first)
    assert set(stored) >= {"metric", "examples", "candidate_mean", "baseline_mean", "margin_mean", "low", "high"}
    assert set(stored) >= {"confidence", "win_rate", "verdict", "reason"}
    assert msgspec.convert(stored, GateSummary) == first
    assert msgspec.json.decode(msgspec.json.encode(first), type=GateSummary) == first


def test_no_scored_example_is_inconclusive() -> None:
    summary = decide(Gate(metric="exact_match"), [], [], seed=1)
    assert (summary.verdict, summary.examples) == ("inconclusive", 0)
    assert summary.reason == "no held-out example was scored, so nothing shows the candidate is better"


def test_an_evaluation_that_did_not_run_is_inconclusive_with_its_reason() -> None:
    summary = not_evaluated(Gate(margin=0.1), "pairwise", "over the cap")
    assert (summary.verdict, summary.reason, summary.examples, summary.required_margin) == (
        "inconclusive",
        "over the cap",
        0,
        0.1,
    )


def test_auto_needs_the_metric_it_resolved_to() -> None:
    with pytest.raises(ValueError, match="pass the metric it resolved to"):
        decide(Gate(), [1.0], [0.0], seed=1)
    assert decide(Gate(min_examples=1), [1.0], [0.0], seed=1, metric="exact_match").verdict == "better"


def test_a_metric_other_than_the_gates_is_refused() -> None:
    with pytest.raises(ValueError, match="the gate scores with rouge, not bleu"):
        decide(Gate(metric="rouge"), [1.0], [0.0], seed=1, metric="bleu")
    with pytest.raises(ValueError, match="not auto"):
        decide(Gate(), [1.0], [0.0], seed=1, metric="auto")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("candidate", "baseline", "metric", "message"),
    [
        ([1.0, 0.0], [1.0], "exact_match", "2 candidate scores but 1 baseline scores"),
        ([1.5], [0.0], "rouge", "a score is between 0 and 1, not 1.5"),
        ([0.5], [-0.1], "rouge", "a score is between 0 and 1, not -0.1"),
        ([math.nan], [0.0], "bleu", "a score is between 0 and 1, not nan"),
        ([1.0], [1.0], "pairwise", "complements"),
        ([0.7], [0.3], "pairwise", "complements"),
    ],
)
def test_scores_that_cannot_be_compared_are_refused(
    candidate: list[float], baseline: list[float], metric: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        decide(Gate(metric=metric, min_examples=1), candidate, baseline, seed=1)  # type: ignore[arg-type]


def test_a_judge_choice_other_than_win_tie_or_loss_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("1.0, 0.5 or 0.0, not 0.7")):
        pairwise_scores([1.0, 0.7])
