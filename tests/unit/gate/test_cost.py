"""The cost estimate, worked by hand from the price table, and the cap it is held to."""

from __future__ import annotations

import math

import pytest

from shared.gate import (
    DEFAULT_PAIRWISE_TEMPLATE,
    FALLBACK_PRICE,
    INFERENCE_PRICES,
    JUDGE_SAMPLES,
    EvaluationPrices,
    Gate,
    InferencePrice,
    cost_cap,
    estimate,
    evaluation_prices,
    inference_price,
    over_cap_reason,
)

FLASH = InferencePrice(1.50, 9.00, "test")
SHORT_TEMPLATE = "{response} {baseline_model_response}"  # 36 characters: 9 tokens at 4 characters a token


def test_computed_metrics_cost_two_generations_per_example() -> None:
    # Per example and model: 200 x 1.50 + 50 x 9.00 = 750 per million; two models: 0.0015 USD; 100 examples: 0.15.
    prices = EvaluationPrices(FLASH, FLASH)
    for metric in ("exact_match", "bleu", "rouge"):
        assert estimate(100, 200, 50, metric, prices) == pytest.approx(0.15)


def test_the_judge_reads_prompt_reference_and_both_answers_four_times_per_example() -> None:
    # Judge per sample: (9 + 200 + 3 x 50) = 359 input tokens x 1.50 + 256 output tokens x 10.00 = 3098.5 per
    # million; 4 samples: 0.012394 USD per example; 100 examples: 1.2394; with the generations' 0.15: 1.3894.
    judge = InferencePrice(1.50, 10.00, "test")
    cost = estimate(100, 200, 50, "pairwise", EvaluationPrices(FLASH, FLASH, judge), judge_template=SHORT_TEMPLATE)
    assert JUDGE_SAMPLES == 4
    assert cost == pytest.approx(1.3894)


def test_the_default_template_is_counted_in_what_the_judge_reads() -> None:
    prices = EvaluationPrices(FLASH, FLASH, FLASH)
    longer = estimate(10, 100, 20, "pairwise", prices)
    shorter = estimate(10, 100, 20, "pairwise", prices, judge_template=SHORT_TEMPLATE)
    template_tokens = math.ceil(len(DEFAULT_PAIRWISE_TEMPLATE) / 4) - 9
    assert longer - shorter == pytest.approx(10 * JUDGE_SAMPLES * template_tokens * 1.50 / 1_000_000)


def test_the_candidate_and_the_baseline_are_priced_apart() -> None:
    cheap = InferencePrice(0.10, 0.40, "test")
    assert estimate(1, 1_000_000, 0, "exact_match", EvaluationPrices(FLASH, cheap)) == pytest.approx(1.60)
    assert estimate(1, 0, 1_000_000, "exact_match", EvaluationPrices(cheap, FLASH)) == pytest.approx(9.40)


def test_nothing_to_evaluate_costs_nothing() -> None:
    assert estimate(0, 500, 100, "pairwise", evaluation_prices("gemini-3.5-flash", "gemini-3.5-flash")) == 0.0


@pytest.mark.parametrize(
    ("examples", "prompt", "answer", "metric", "message"),
    [
        (10, 100, 10, "auto", "resolved to"),
        (-1, 100, 10, "exact_match", "cannot be negative"),
        (10, -5, 10, "exact_match", "cannot be negative"),
        (10, 100, -1, "pairwise", "cannot be negative"),
    ],
)
def test_an_estimate_of_nothing_real_is_refused(
    examples: int, prompt: float, answer: float, metric: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        estimate(examples, prompt, answer, metric, EvaluationPrices(FLASH, FLASH))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        "gemini-3.5-flash",
        "GEMINI-3.5-FLASH",
        " gemini-3.5-flash@001",
        "projects/p/locations/us-central1/publishers/google/models/gemini-3.5-flash",
        "publishers/google/models/gemini-3.5-flash@default",
    ],
)
def test_a_model_is_priced_by_id_or_resource_name(name: str) -> None:
    assert inference_price(name)[:2] == (1.50, 9.00)


def test_a_model_without_a_price_gets_the_highest_known_prices() -> None:
    assert FALLBACK_PRICE[:2] == (
        max(price.input_per_million_usd for price in INFERENCE_PRICES.values()),
        max(price.output_per_million_usd for price in INFERENCE_PRICES.values()),
    )
    assert FALLBACK_PRICE[:2] == (1.50, 10.00)
    for unpriced in ("gemini-3.5-flash-lite", "gemini-1.5-pro-002", "some-new-model"):
        assert inference_price(unpriced) == FALLBACK_PRICE
    assert "no price found" in FALLBACK_PRICE.source


def test_the_default_judge_is_priced_at_the_fallback() -> None:
    prices = evaluation_prices("gemini-3.1-flash-lite", "gemini-3.5-flash")
    assert (prices.candidate[:2], prices.baseline[:2], prices.judge) == ((0.25, 1.50), (1.50, 9.00), FALLBACK_PRICE)
    assert evaluation_prices("gemini-3.5-flash", "gemini-3.5-flash", judge="gemini-2.5-flash").judge[:2] == (0.30, 2.50)


def test_every_price_says_where_it_was_read_and_when() -> None:
    for model, price in INFERENCE_PRICES.items():
        assert "read 2026-11-30" in price.source, model
        assert 0 < price.input_per_million_usd <= price.output_per_million_usd, model


def test_the_cap_is_the_lowest_of_the_operators_the_teams_and_the_gates() -> None:
    assert cost_cap(Gate(), 5.0) == 5.0
    assert cost_cap(Gate(max_cost_usd=2.5), 5.0) == 2.5
    assert cost_cap(Gate(max_cost_usd=20.0), 5.0) == 5.0  # a gate cannot raise the operators' cap
    assert cost_cap(Gate(max_cost_usd=4.0), 5.0, team_cap=1.0) == 1.0
    assert cost_cap(Gate(), 5.0, team_cap=None) == 5.0


def test_over_the_cap_the_evaluation_does_not_run_and_says_why() -> None:
    assert over_cap_reason(5.0, 5.0) is None
    assert over_cap_reason(0.3, 5.0) is None
    assert over_cap_reason(7.2, 5.0) == (
        "the evaluation would cost about $7.20 (estimated before calling any model), over the cap of $5.00: it did "
        "not run, so nothing shows the candidate is better"
    )
