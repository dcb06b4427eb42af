"""The paired bootstrap against cases worked out by hand."""

from __future__ import annotations

import math

import pytest

from shared.gate import DEFAULT_RESAMPLES, paired_margin_interval, quantile


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(0.0, 0.0), (1.0, 3.0), (0.5, 1.5), (0.25, 0.75), (0.9, 2.7)],
)
def test_quantile_interpolates_between_neighbours(fraction: float, expected: float) -> None:
    assert quantile([0.0, 1.0, 2.0, 3.0], fraction) == pytest.approx(expected)


def test_quantile_of_one_value_is_that_value() -> None:
    assert quantile([0.4], 0.025) == 0.4


@pytest.mark.parametrize(("values", "fraction"), [([], 0.5), ([1.0], -0.1), ([1.0], 1.5)])
def test_quantile_refuses_what_has_none(values: list[float], fraction: float) -> None:
    with pytest.raises(ValueError):
        quantile(values, fraction)


def test_identical_differences_give_a_point_interval() -> None:
    assert paired_margin_interval([0.25] * 50, 0.95, seed=1) == (0.25, 0.25, 0.25)
    assert paired_margin_interval([-1.0], 0.95, seed=1) == (-1.0, -1.0, -1.0)


def test_the_margin_is_the_mean_of_the_differences() -> None:
    interval = paired_margin_interval([0.5, -0.25, 1.0], 0.95, seed=3)
    assert interval.mean == pytest.approx(1.25 / 3)
    assert interval.low <= interval.mean <= interval.high


def test_two_values_give_the_whole_range_at_95_percent() -> None:
    # Resampling [0, 1] twice gives a mean of 0 a quarter of the time and 1 a quarter of the time: both tails of a
    # 95% interval (2.5% each) fall inside those masses.
    assert paired_margin_interval([0.0, 1.0], 0.95, seed=7) == (0.5, 0.0, 1.0)


def test_a_large_sample_agrees_with_the_normal_approximation() -> None:
    # 30 wins, 50 ties, 20 losses: mean 0.1, variance 0.5 - 0.01 = 0.49, standard error 0.7 / 10 = 0.07, so the
    # 95% interval is about 0.1 +- 1.96 x 0.07 = -0.037 to 0.237.
    differences = [1.0] * 30 + [0.0] * 50 + [-1.0] * 20
    interval = paired_margin_interval(differences, 0.95, seed="job-42")
    assert interval.mean == pytest.approx(0.1)
    assert interval.low == pytest.approx(0.1 - 1.96 * 0.07, abs=0.02)
    assert interval.high == pytest.approx(0.1 + 1.96 * 0.07, abs=0.02)


def test_a_higher_confidence_widens_the_interval() -> None:
    differences = [1.0] * 30 + [0.0] * 50 + [-1.0] * 20
    narrow = paired_margin_interval(differences, 0.8, seed=5)
    wide = paired_margin_interval(differences, 0.99, seed=5)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_the_same_seed_gives_the_same_interval_and_a_job_id_is_a_seed() -> None:
    differences = [1.0, 0.0, -1.0, 1.0, 0.5, 0.0, 1.0]
    first = paired_margin_interval(differences, 0.95, seed="0f3c-job")
    assert paired_margin_interval(differences, 0.95, seed="0f3c-job") == first
    others = {paired_margin_interval(differences, 0.9, seed=seed) for seed in range(20)}
    assert len(others) > 1  # the seed does drive the draws


@pytest.mark.parametrize(
    ("differences", "confidence", "resamples", "message"),
    [
        ([], 0.95, DEFAULT_RESAMPLES, "at least one example"),
        ([0.1], 1.0, DEFAULT_RESAMPLES, "confidence is between 0 and 1"),
        ([0.1], 0.0, DEFAULT_RESAMPLES, "confidence is between 0 and 1"),
        ([0.1, 0.2], 0.95, 10, "at least 100 resamples"),
        ([0.1, math.nan], 0.95, DEFAULT_RESAMPLES, "not a finite number"),
        ([0.1, math.inf], 0.95, DEFAULT_RESAMPLES, "not a finite number"),
    ],
)
def test_what_cannot_be_bootstrapped_is_refused(
    differences: list[float], confidence: float, resamples: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        paired_margin_interval(differences, confidence, seed=1, resamples=resamples)
