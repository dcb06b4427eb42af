"""One contract for the evaluation gate's ports, run on the in-memory fakes (tests/fakes_gate.py) and on the
Vertex AI adapters (VertexModelAnswers, VertexJudge) against the emulator over gRPC: the same answers, scores,
choices, token counts and refusals."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from tunedrop_local.vertex_emulator import VertexEmulator, approximate_tokens
from tunedrop_local.vertex_emulator.answers import generic_answer

from shared.adapters.vertex_judge import JUDGE_BATCH, VertexJudge, evaluation_client
from shared.adapters.vertex_predict import VertexModelAnswers, prediction_client, transient_retry
from shared.ports import Judge, ModelAnswers, TuningRejected, TuningUnavailable
from tests.fakes_gate import FakeJudge, FakeModelAnswers
from tests.integration.vertex import PARENT, FakeClock, tuning_job, vertex_emulator

pytestmark = pytest.mark.integration

REGION = "us-central1"
BASE_MODEL = f"{PARENT}/publishers/google/models/gemini-3.5-flash"
CAPITALS = {"France": "Paris", "Peru": "Lima", "Japan": "Tokyo", "Kenya": "Nairobi", "Chile": "Santiago"}
TABLES = ("orders", "customers", "payments", "invoices", "shipments")
PAIRWISE_TEMPLATE = "Which answer to {prompt} is better: A {response} or B {baseline_model_response}?"


def _example(question: str, answer: str) -> str:
    turns = [{"role": "user", "parts": [{"text": question}]}, {"role": "model", "parts": [{"text": answer}]}]
    return json.dumps({"contents": turns})


def _sql(table: str) -> str:
    return f"SELECT COUNT(*) FROM {table} WHERE created_at >= DATE_TRUNC(CURRENT_DATE(), MONTH);"


TRAINING = "\n".join(
    [
        *(
            _example(f"What is the capital of {country}?", f"The capital of {country} is {city}.")
            for country, city in CAPITALS.items()
        ),
        *(_example(f"How many rows are in {table} created this month?", _sql(table)) for table in TABLES),
    ]
)
TRAINING_ANSWERS = {*(f"The capital of {c} is {city}." for c, city in CAPITALS.items()), *map(_sql, TABLES)}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


@dataclasses.dataclass
class Gate:
    answers: ModelAnswers
    judge: Judge
    tune: Callable[[str, Mapping[str, str]], str]  # (training JSONL, job labels) -> the tuned model's endpoint
    judge_calls: Callable[[], int]  # EvaluateInstances calls so far


class CountingEmulator(VertexEmulator):  # type: ignore[misc]
    """Counts EvaluateInstances calls: how the judge batched."""

    evaluations = 0

    def evaluate_instances(self, request: Any) -> Any:
        self.evaluations += 1
        return super().evaluate_instances(request)


def _fake_gate() -> Gate:
    answers, judge = FakeModelAnswers(), FakeJudge()
    endpoints = iter(range(1, 1000))

    def tune(training: str, labels: Mapping[str, str]) -> str:
        endpoint = f"{PARENT}/endpoints/{next(endpoints)}"
        quality, noise = int(labels.get("emulator_quality", 100)), int(labels.get("emulator_noise", 0))
        answers.tune(endpoint, training, quality=quality, noise=noise)
        return endpoint

    return Gate(answers, judge, tune, lambda: len(judge.calls))


def _emulated_gate() -> Iterator[Gate]:
    files: dict[str, str] = {}
    clock = FakeClock()
    emulator = CountingEmulator(env={}, clock=clock, read_training=files.__getitem__)
    with vertex_emulator(emulator) as host:
        retry = transient_retry(deadline=5.0, initial=0.01)

        def tune(training: str, labels: Mapping[str, str]) -> str:
            uri = f"gs://tunedrop-itest/tunedrop-staging/job-{len(files)}/training.jsonl"
            files[uri] = training
            spec = {"training_dataset_uri": uri}
            created = emulator.create_tuning_job(PARENT, tuning_job(supervised_tuning_spec=spec, labels=dict(labels)))
            clock.advance(emulator.job_seconds + 1)
            endpoint: str = emulator.get_tuning_job(created.name).tuned_model.endpoint
            return endpoint

        yield Gate(
            VertexModelAnswers(lambda region: prediction_client(host, region), retry=retry),
            VertexJudge(lambda region: evaluation_client(host, region), "tunedrop-dev", REGION, retry=retry),
            tune,
            lambda: emulator.evaluations,
        )


@pytest.fixture(params=["fake", "emulator"])
def gate(request: pytest.FixtureRequest) -> Iterator[Gate]:
    if request.param == "fake":
        yield _fake_gate()
    else:
        yield from _emulated_gate()


# ---- ModelAnswers


def test_a_tuned_model_answers_with_its_most_similar_training_example(gate: Gate) -> None:
    endpoint = gate.tune(TRAINING, {})
    asked = "What is the capital of Peru these days?"
    got = gate.answers.generate(endpoint, [user(asked)])
    assert got.text == "The capital of Peru is Lima."
    assert (got.prompt_tokens, got.output_tokens) == (approximate_tokens(asked), approximate_tokens(got.text))
    # A held-out prompt drawn like the training data gets the answer of its kind (the first on a tie).
    assert gate.answers.generate(endpoint, [user("How many rows are in refunds created this month?")]).text == _sql(
        "orders"
    )


def test_the_last_user_turn_is_the_prompt_and_the_system_instruction_counts_as_prompt_tokens(gate: Gate) -> None:
    endpoint = gate.tune(TRAINING, {})
    history = [user("How many rows are in orders?"), {"role": "model", "parts": [{"text": "Many."}]}]
    instruction = {"parts": [{"text": "Answer in one sentence."}]}
    got = gate.answers.generate(endpoint, [*history, user("What is the capital of Japan?")], instruction)
    assert got.text == "The capital of Japan is Tokyo."
    texts = ["How many rows are in orders?", "Many.", "What is the capital of Japan?", "Answer in one sentence."]
    assert got.prompt_tokens == sum(map(approximate_tokens, texts))


def test_a_base_model_answers_generically_never_with_training_data(gate: Gate) -> None:
    asked = "What is the capital of Peru?"
    got = gate.answers.generate(BASE_MODEL, [user(asked)])
    assert got.text == generic_answer(asked)
    assert got.text not in TRAINING_ANSWERS
    assert gate.answers.generate(BASE_MODEL, [user(asked)]) == got


def test_quality_zero_answers_like_the_base_model(gate: Gate) -> None:
    endpoint = gate.tune(TRAINING, {"emulator_quality": "0"})
    for country in CAPITALS:
        asked = f"What is the capital of {country}?"
        assert gate.answers.generate(endpoint, [user(asked)]).text == generic_answer(asked)


def test_partial_quality_answers_a_share_of_prompts_from_training_the_same_way_each_time(gate: Gate) -> None:
    endpoint = gate.tune(TRAINING, {"emulator_quality": "50"})
    prompts = [f"How many rows are in table_{n} created this month?" for n in range(80)]
    first = [gate.answers.generate(endpoint, [user(p)]).text for p in prompts]
    from_training = sum(text in TRAINING_ANSWERS for text in first)
    assert 20 <= from_training <= 60
    assert all(
        text == generic_answer(p) for p, text in zip(prompts, first, strict=True) if text not in TRAINING_ANSWERS
    )
    assert [gate.answers.generate(endpoint, [user(p)]).text for p in prompts] == first


def test_noise_drops_words_of_the_training_answer(gate: Gate) -> None:
    endpoint = gate.tune(TRAINING, {"emulator_noise": "40"})
    full = _sql("orders").split(" ")
    texts = [
        gate.answers.generate(endpoint, [user(f"How many rows are in t{n} created this month?")]).text
        for n in range(20)
    ]
    for text in texts:
        kept = text.split(" ")
        assert kept and set(kept) <= set(full)
    assert any(len(text.split(" ")) < len(full) for text in texts)


@pytest.mark.parametrize(
    ("model", "contents"),
    [
        ("gemini-2.5-flash", [user("hi")]),  # not a resource name
        (f"{PARENT}/endpoints/404", [user("hi")]),  # no tuned model there
        (f"{PARENT}/publishers/google/models/gemini-0.1-nonexistent", [user("hi")]),
        (f"{PARENT}/publishers/meta/models/gemini-3.5-flash", [user("hi")]),
        (BASE_MODEL, []),
        (BASE_MODEL, [{"role": "assistant", "parts": [{"text": "hi"}]}]),
        (BASE_MODEL, [{"role": "user", "parts": []}]),
        (BASE_MODEL, [{"role": "user", "parts": [{"bogus": 1}]}]),
    ],
    ids=[
        "bare-name",
        "unknown-endpoint",
        "unknown-model",
        "other-publisher",
        "no-contents",
        "bad-role",
        "no-parts",
        "not-a-part",
    ],
)
def test_what_the_service_refuses_is_rejected(gate: Gate, model: str, contents: list[dict[str, Any]]) -> None:
    with pytest.raises(TuningRejected):
        gate.answers.generate(model, contents)


# ---- Judge


def test_scores_per_metric(gate: Gate) -> None:
    assert gate.judge.score("exact_match", [("Paris", " Paris\n"), ("Paris", "paris"), ("", "")]) == [1.0, 0.0, 1.0]
    assert gate.judge.score("bleu", [("the cat sat on the mat", "the cat sat on the mat"), ("", "x")]) == [1.0, 0.0]
    assert gate.judge.score("rouge", [("a b c", "a c"), ("x y", "a b")]) == [0.8, 0.0]


def test_scores_come_back_in_order_in_batches(gate: Gate) -> None:
    pairs = [(f"answer {n}", f"answer {n}" if n % 3 else "other") for n in range(2 * JUDGE_BATCH + 50)]
    before = gate.judge_calls()
    assert gate.judge.score("exact_match", pairs) == [1.0 if n % 3 else 0.0 for n in range(len(pairs))]
    assert gate.judge_calls() - before == 3
    assert gate.judge.score("rouge", []) == []
    assert gate.judge_calls() - before == 3


def test_an_unknown_metric_is_a_programming_error(gate: Gate) -> None:
    with pytest.raises(ValueError, match="fluency"):
        gate.judge.score("fluency", [("a", "a")])


def test_the_pairwise_judge_prefers_the_answer_closer_to_the_reference(gate: Gate) -> None:
    compare = gate.judge.compare
    assert (
        compare("Capital of Peru?", "Lima is the capital", "I do not know", "The capital is Lima", PAIRWISE_TEMPLATE)
        == 1.0
    )
    assert (
        compare("Capital of Peru?", "I do not know", "Lima is the capital", "The capital is Lima", PAIRWISE_TEMPLATE)
        == 0.0
    )
    assert compare("Capital of Peru?", "Lima", "Lima", "The capital is Lima", PAIRWISE_TEMPLATE) == 0.5
    # Without a reference the prompt is what the answers are held against.
    assert compare("capital of Peru", "the capital of Peru", "no idea", "", PAIRWISE_TEMPLATE) == 1.0


@pytest.mark.parametrize("template", ["", "   ", "Judge {response} against {baseline_model_response} given {context}"])
def test_a_pairwise_template_the_service_cannot_render_is_rejected(gate: Gate, template: str) -> None:
    with pytest.raises(TuningRejected):
        gate.judge.compare("q", "a", "b", "a", template)


# ---- the fakes' own controls (what a test scripts)


def test_the_fakes_answer_from_the_test_table_first_and_raise_scripted_failures_in_order() -> None:
    endpoint = f"{PARENT}/endpoints/7"
    answers = FakeModelAnswers({(endpoint, "Capital of Peru?"): "Lima."})
    answers.tune(endpoint, TRAINING)
    assert answers.generate(endpoint, [user("Capital of Peru?")]).text == "Lima."
    assert (
        answers.generate(endpoint, [user("What is the capital of Kenya?")]).text == "The capital of Kenya is Nairobi."
    )
    answers.failures.append(TuningUnavailable("retries gave up"))
    with pytest.raises(TuningUnavailable):
        answers.generate(endpoint, [user("Capital of Peru?")])
    assert answers.generate(endpoint, [user("Capital of Peru?")]).text == "Lima."
    assert [prompt for _, prompt in answers.calls] == [
        "Capital of Peru?",
        "What is the capital of Kenya?",
        "Capital of Peru?",
        "Capital of Peru?",
    ]
    judge = FakeJudge()
    judge.failures.append(TuningUnavailable("retries gave up"))
    with pytest.raises(TuningUnavailable):
        judge.score("bleu", [("a", "a")])
    assert judge.score("exact_match", [("a", "a")]) == [1.0]
    assert judge.calls == [("bleu", 1), ("exact_match", 1)]
