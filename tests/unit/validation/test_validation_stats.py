"""Statistics in bounded memory, the sampled cost estimate, and the Markdown report."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest

from shared.validation import render_markdown
from shared.validation.engine import _histogram
from shared.validation.report import plural
from shared.validation.stats import LogHistogram, Reservoir, quantiles, ratio_estimate
from tests.unit.validation.helpers import GOOD, FakeCounter, example, file_part, run, text_chars, turn


def test_histogram_quantiles_are_within_two_percent() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(6, 1.2) for _ in range(20_000)]
    hist = LogHistogram()
    for v in values:
        hist.add(v)
    exact = sorted(values)
    for q in (0.5, 0.95):
        (got,) = quantiles(hist.weighted(), [q])
        want = exact[math.ceil(q * len(exact)) - 1]
        assert got == pytest.approx(want, rel=0.02)
    assert (hist.low, hist.high, hist.count) == (exact[0], exact[-1], len(values))
    assert len(hist.buckets) < 1_000  # bounded, whatever the number of values


def test_reservoir_keeps_a_uniform_sample() -> None:
    kept: Counter[int] = Counter()
    for seed in range(400):
        sample: Reservoir[int] = Reservoir(10, seed=seed)
        for i in range(100):
            if sample.wants():
                sample.offer(i)
            else:
                sample.skip()
        assert len(sample.items) == 10 and sample.seen == 100 and len(set(sample.items)) == 10
        kept.update(sample.items)
    # Each item is kept with probability 10/100: 40 times in 400 runs on average.
    assert min(kept[i] for i in range(100)) > 15
    assert max(kept[i] for i in range(100)) < 70
    assert sum(kept[i] for i in range(50)) == pytest.approx(sum(kept[i] for i in range(50, 100)), rel=0.15)


def test_ratio_estimate_is_exact_for_proportional_data_and_wider_for_noisy_data() -> None:
    exact = ratio_estimate([(100.0, 25.0), (400.0, 100.0), (40.0, 10.0)], population=1000)
    assert exact is not None and exact.ratio == pytest.approx(0.25) and exact.standard_error == pytest.approx(0)
    noisy = ratio_estimate([(100.0, 20.0), (400.0, 120.0), (40.0, 8.0), (200.0, 60.0)], population=1000)
    assert noisy is not None and noisy.standard_error > 0
    assert ratio_estimate([], population=10) is None


def test_tokens_per_example_and_cost_from_an_exact_sample() -> None:
    examples = [example(turn("user", "x" * (10 * i)), turn("model", "y" * 10)) for i in range(1, 101)]
    counter = FakeCounter(lambda request: text_chars(request) // 5)
    report = run(*examples, token_counter=counter, hyper_parameters={"epoch_count": 3})
    tokens = report.stats["tokens_per_example"]
    assert "uniform random sample of 64 examples" in tokens["method"]
    assert tokens["min"] == pytest.approx(4, abs=1)
    assert tokens["max"] == pytest.approx(202, rel=0.02)
    assert tokens["median"] == pytest.approx(102, rel=0.03)
    assert tokens["p95"] == pytest.approx(192, rel=0.03)
    assert sum(b["count"] for b in tokens["histogram"]) == 100
    total = sum((10 * i + 10) / 5 for i in range(1, 101))
    cost = report.cost
    assert cost["training_tokens"] == pytest.approx(total, rel=0.01)
    assert cost["billable_tokens"] == pytest.approx(3 * total, rel=0.01)
    assert cost["estimated_cost_usd"] == round(cost["billable_tokens"] / 1e6 * 5.0, 2)
    assert cost["price_date"] == "2025-09" and cost["price_confirmed"] is False
    low, high = cost["billable_tokens_ci95"]
    assert low <= cost["billable_tokens"] <= high


def test_cost_without_a_counter_says_it_is_a_rule_of_thumb() -> None:
    report = run(example(turn("user", "x" * 400), turn("model", "y" * 400)))
    assert report.cost["training_tokens"] == 200
    assert report.cost["epochs"] == 1 and "epochs_note" in report.cost
    assert "rule of thumb" in report.cost["method"] and "not measured" in report.cost["uncertainty"]
    assert "billable_tokens_ci95" not in report.cost


def test_models_without_a_confirmed_price_give_no_cost() -> None:
    report = run(GOOD, model="gemini-1.5-pro-002")
    assert report.cost["estimated_cost_usd"] is None and "price_note" in report.cost


def test_statistics_count_turns_characters_and_media() -> None:
    report = run(
        example(turn("user", "abc"), turn("model", "de"), turn("user", "f"), turn("model", "g")),
        example(
            {"role": "user", "parts": [{"fileData": {"mimeType": "image/png", "fileUri": "gs://b/x"}}]},
            turn("model", "cat"),
        ),
    )
    stats = report.stats
    assert stats["turns"] == {"total": 6, "mean": 3.0, "max": 4}
    assert stats["characters"] == 10
    assert (stats["multimodal_examples"], stats["media_parts"]) == (1, 1)


def test_markdown_report_reads_well() -> None:
    examples = [example(turn("user", "q" * (5 * i)), turn("model", "a")) for i in range(1, 40)]
    report = run(*examples, b"{oops", example(turn("user", "only")), GOOD, GOOD)
    text = render_markdown(report)
    assert text.startswith("# Dataset validation: ❌ invalid: 2 problems")
    assert "| `not_json` | 1 |" in text and "| 40 | `not_json` |" in text
    assert "| 41 | `last_turn_not_model` | `$.contents[0].role` |" in text
    assert "## Warnings" in text and "`duplicate_example`" in text
    assert "Vertex AI accepts `duplicate_example`; strict validation (TUNEDROP_STRICT_VALIDATION" in text
    assert "Tokens per example:" in text and "```text" in text and "█" in text
    assert "## Training cost estimate" in text and "$" in text
    assert render_markdown(run(GOOD)).startswith("# Dataset validation: ✅ valid")


def test_an_invalid_file_still_gets_statistics_and_a_cost_for_the_lines_that_parsed() -> None:
    # OpenAI chat lines: JSON objects, every one an error for a Gemini model, most of their bytes text.
    chat = [
        {"messages": [{"role": "user", "content": "q" * (40 * i)}, {"role": "assistant", "content": "a" * 40}]}
        for i in range(1, 21)
    ]
    report = run(*chat, b"{oops", {"contents": []})  # an example with no text at all is left out
    assert not report.valid and report.example_count == 21
    stats = report.stats
    assert stats["examples_checked"] == stats["examples_with_errors_measured"] == 20
    assert stats["characters"] == sum(40 * i + 40 for i in range(1, 21))
    assert stats["turns"] == {"total": 40, "mean": 2.0, "max": 2}
    assert report.cost["training_tokens"] == stats["characters"] // 4 and report.cost["estimated_cost_usd"] > 0
    assert "includes 20 examples with errors, measured by the text they hold" in report.cost["scope_note"]
    text = render_markdown(report)
    assert "- Examples measured: 20 (20 of them with errors, measured by the text they hold)" in text
    assert "$0.00" not in text


def test_a_clean_file_keeps_its_figures_and_says_nothing_of_errors() -> None:
    report = run(example(turn("user", "x" * 400), turn("model", "y" * 400)))
    assert report.stats["examples_with_errors_measured"] == 0 and "scope_note" not in report.cost
    assert "with errors" not in render_markdown(report)


@pytest.mark.parametrize(
    ("low", "high"),
    [(20, 30), (25, 25), (1, 131_072), (22.4, 310.6), (0, 5), (3, 15), (1_000, 1_013)],
)
def test_histogram_bins_are_distinct_whole_ranges_whose_edges_are_not_empty(low: float, high: float) -> None:
    rng = random.Random(int(low * 7 + high))
    values = [low, high, *(rng.uniform(low, high) for _ in range(200))]
    bins = _histogram([(v, 1) for v in values])
    assert bins[0]["from"] == round(low) and bins[-1]["to"] == round(high)
    assert all(b["from"] <= b["to"] for b in bins)
    assert all(after["from"] == before["to"] + 1 for before, after in itertools.pairwise(bins))
    assert bins[0]["count"] > 0 and bins[-1]["count"] > 0
    assert sum(b["count"] for b in bins) == len(values) and len(bins) <= 12


def test_histogram_labels_never_repeat_and_a_single_value_is_one_label() -> None:
    examples = [example(turn("user", "x" * (80 + i)), turn("model", "ok")) for i in range(40)]
    text = render_markdown(run(*examples))
    chart = text.split("```text\n", 1)[1].split("```", 1)[0]
    labels = [row.split("|", 1)[0].strip() for row in chart.splitlines()]
    assert len(labels) == len(set(labels)) and "20" in labels and "25-25" not in labels


def test_plurals_and_the_model_asked_for() -> None:
    report = run(GOOD, model="gemini-2.0-flash")
    text = render_markdown(report)
    assert "(1 example, " in text and "x 1 epoch = " in text
    assert report.requested_model == "gemini-2.0-flash" and report.model == "gemini-2.0-flash-001"
    assert "- Base model: `gemini-2.0-flash` (registry id `gemini-2.0-flash-001`)" in text
    assert report.summary()["requested_model"] == "gemini-2.0-flash"
    assert "registry id" not in render_markdown(run(GOOD))
    assert (plural(1, "example"), plural(2, "example"), plural(1_000, "entry", "entries")) == (
        "1 example",
        "2 examples",
        "1,000 entries",
    )


def test_the_token_line_states_what_each_media_part_is_assumed_to_be() -> None:
    media = example({"role": "user", "parts": [file_part("gs://b/v.mp4", "video/mp4")]}, turn("model", "a cat"))
    report = run(media, media | {"x": 1}, model="gemini-2.5-flash")
    assumption = report.stats["tokens_per_example"]["media_assumption"]
    assert "each video part one minute long (15,780 tokens)" in assumption
    assert "each audio part one minute long (1,920 tokens)" in assumption
    assert f"- Media tokens: {assumption}" in render_markdown(report)
    assert "media_assumption" not in run(GOOD).stats["tokens_per_example"]


def test_a_cost_under_a_cent_is_not_shown_as_zero() -> None:
    tiny = render_markdown(run(GOOD))
    assert "- Estimated cost: **under $0.01** at $5.0 per 1M training tokens" in tiny and "$0.00" not in tiny
    two_thousand_tokens = example(turn("user", "x" * 7_996), turn("model", "y" * 4))
    assert "- Estimated cost: **$0.01** at" in render_markdown(run(two_thousand_tokens))
