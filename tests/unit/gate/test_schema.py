"""The gate's schema: defaults, refusals with a message naming what is wrong, and how `auto` chooses a metric."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import yaml

from shared.gate import DEFAULT_PAIRWISE_TEMPLATE, Gate, gate_of, is_short_answer, resolve_metric


def refusal(data: Any) -> str:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(data, Gate)
    return str(caught.value)


def test_an_empty_gate_takes_the_documented_defaults_and_stores_as_nothing() -> None:
    gate = gate_of(None)
    assert (gate.metric, gate.margin, gate.confidence, gate.min_examples, gate.manual) == (
        "auto",
        0.0,
        0.95,
        100,
        False,
    )
    assert gate.max_cost_usd is None
    assert gate.judge_template == DEFAULT_PAIRWISE_TEMPLATE
    assert msgspec.to_builtins(gate) == {}


def test_a_gate_round_trips_through_the_job_record() -> None:
    asked = {"metric": "pairwise", "margin": 0.05, "confidence": 0.99, "min_examples": 200, "max_cost_usd": 2.5}
    gate = gate_of(asked)
    assert msgspec.to_builtins(gate) == asked
    assert gate_of(msgspec.to_builtins(gate)) == gate


def test_yaml_integers_are_accepted_where_a_number_is_asked() -> None:
    gate = gate_of(yaml.safe_load("margin: 0\nconfidence: 0.9\nmax_cost_usd: 3\n"))
    assert (gate.margin, gate.max_cost_usd) == (0.0, 3.0)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"metric": "accuracy"}, "Invalid enum value 'accuracy' - at `$.metric`"),
        ({"metric": "pointwise"}, "$.metric"),
        ({"margin": 1.0}, "Expected `float` < 1.0 - at `$.margin`"),
        ({"margin": -1.0}, "Expected `float` > -1.0 - at `$.margin`"),
        ({"margin": "0.1"}, "Expected `float`, got `str` - at `$.margin`"),
        ({"confidence": 0.4}, "Expected `float` >= 0.5 - at `$.confidence`"),
        ({"confidence": 1.0}, "Expected `float` <= 0.999 - at `$.confidence`"),
        ({"confidence": float("nan")}, "$.confidence"),
        ({"min_examples": 0}, "Expected `int` >= 1 - at `$.min_examples`"),
        ({"min_examples": 10_001}, "Expected `int` <= 10000 - at `$.min_examples`"),
        ({"min_examples": 2.5}, "Expected `int`, got `float` - at `$.min_examples`"),
        ({"manual": "yes"}, "Expected `bool`, got `str` - at `$.manual`"),
        ({"max_cost_usd": 0}, "Expected `float` > 0.0 - at `$.max_cost_usd`"),
        ({"max_cost_usd": -3}, "$.max_cost_usd"),
        ({"judge": "gemini"}, "Object contains unknown field `judge`"),
        ({"prompt_template": ""}, "Expected `str` of length >= 1 - at `$.prompt_template`"),
        ({"prompt_template": "{response} {baseline_model_response}\x00"}, "$.prompt_template"),
    ],
)
def test_a_malformed_gate_is_refused_at_its_json_path(data: dict[str, Any], expected: str) -> None:
    assert expected in refusal(data)


def test_a_prompt_template_is_only_for_the_judge() -> None:
    template = "Which is better? A: {baseline_model_response} B: {response}"
    assert "prompt_template is for the pairwise judge; metric exact_match has none" in refusal(
        {"metric": "exact_match", "prompt_template": template}
    )
    assert gate_of({"metric": "pairwise", "prompt_template": template}).judge_template == template
    assert gate_of({"prompt_template": template}).judge_template == template  # auto may resolve to pairwise


def test_a_prompt_template_must_show_both_answers_and_name_nothing_else() -> None:
    assert "{baseline_model_response} is missing" in refusal({"prompt_template": "Rate {response}."})
    assert "{response} is missing" in refusal({"prompt_template": "Rate {baseline_model_response}."})
    unknown = refusal({"prompt_template": "{response} {baseline_model_response} {candidate}"})
    assert "prompt_template names {candidate}; the judge is given only {baseline_model_response}, {prompt}" in unknown


def test_the_default_template_names_exactly_the_judges_inputs() -> None:
    gate = gate_of({"metric": "pairwise", "prompt_template": DEFAULT_PAIRWISE_TEMPLATE})
    assert gate.judge_template == DEFAULT_PAIRWISE_TEMPLATE
    for field in ("{prompt}", "{reference}", "{response}", "{baseline_model_response}"):
        assert DEFAULT_PAIRWISE_TEMPLATE.count(field) == 1


@pytest.mark.parametrize(
    ("reference", "short"),
    [
        ("Paris", True),
        ("one two three four five six seven eight", True),
        ("one two three four five six seven eight nine", False),
        ("  positive  ", True),
        ("x" * 80, True),
        ("x" * 81, False),  # text without spaces: one "word" can be a sentence
        ("東京", True),
        ("日本の首都は東京", True),  # 8 wide characters: 8 words
        ("日本の首都は東京です", False),
        ("Tokyo 東京", True),
    ],
)
def test_a_short_answer_has_at_most_8_words_and_80_characters(reference: str, short: bool) -> None:
    assert is_short_answer(reference) is short


def test_auto_chooses_exact_match_only_when_every_reference_is_short() -> None:
    auto = Gate()
    assert resolve_metric(auto, ["yes", "no", "42"]) == "exact_match"
    assert resolve_metric(auto, ["yes", "no", "it depends on the season and on where the recipe comes from"]) == (
        "pairwise"
    )
    assert resolve_metric(auto, []) == "pairwise"
    assert resolve_metric(auto, iter(["a", "b"])) == "exact_match"


def test_a_metric_the_gate_names_is_kept_whatever_the_answers() -> None:
    assert resolve_metric(Gate(metric="rouge"), ["yes"]) == "rouge"
    assert resolve_metric(Gate(metric="exact_match"), ["a long answer " * 10]) == "exact_match"
