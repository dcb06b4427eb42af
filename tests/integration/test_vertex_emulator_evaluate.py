"""EvaluateInstances on the Vertex AI emulator, through the real aiplatform_v1 EvaluationServiceClient: the
metrics the gate uses, their values and order, and what the service refuses; then the emulator's metrics
themselves (scores.py) on cases worked by hand."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from tunedrop_local.vertex_emulator import VertexEmulator, scores

from shared.adapters.vertex_judge import VertexJudge, evaluation_client
from shared.adapters.vertex_predict import transient_retry
from shared.ports import TuningUnavailable
from tests.integration.vertex import PARENT, vertex_emulator

pytestmark = pytest.mark.integration

TEMPLATE = "Question: {prompt}\nA: {response}\nB: {baseline_model_response}\nWhich is better?"
Choice = aiplatform_v1.PairwiseChoice


@pytest.fixture
def client() -> Iterator[aiplatform_v1.EvaluationServiceClient]:
    with vertex_emulator(VertexEmulator(env={})) as host:
        yield evaluation_client(host, "us-central1")


def _instances(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"prediction": prediction, "reference": reference} for prediction, reference in pairs]


def _pairwise(instance: dict[str, str], **spec: str) -> dict[str, Any]:
    return {
        "location": PARENT,
        "pairwise_metric_input": {
            "metric_spec": {"metric_prompt_template": TEMPLATE} | spec,
            "instance": {"json_instance": json.dumps(instance)},
        },
    }


def test_exact_match_bleu_and_rouge_score_each_instance_in_order(client: aiplatform_v1.EvaluationServiceClient) -> None:
    pairs = (("Paris", "Paris "), ("Paris", "Lyon"), ("the cat sat on the mat", "the cat sat on the mat"))
    exact = client.evaluate_instances(
        request={"location": PARENT, "exact_match_input": {"metric_spec": {}, "instances": _instances(*pairs)}}
    )
    assert [v.score for v in exact.exact_match_results.exact_match_metric_values] == [1.0, 0.0, 1.0]
    bleu = client.evaluate_instances(
        request={"location": PARENT, "bleu_input": {"metric_spec": {}, "instances": _instances(*pairs)}}
    )
    assert [round(v.score, 6) for v in bleu.bleu_results.bleu_metric_values] == [0.0, 0.0, 1.0]
    rouge = client.evaluate_instances(
        request={
            "location": PARENT,
            "rouge_input": {"metric_spec": {"rouge_type": "rouge1"}, "instances": _instances(*pairs, ("a b c", "a c"))},
        }
    )
    assert [round(v.score, 6) for v in rouge.rouge_results.rouge_metric_values] == [1.0, 0.0, 1.0, 0.8]


def test_an_empty_prediction_is_a_value_not_a_missing_field(client: aiplatform_v1.EvaluationServiceClient) -> None:
    response = client.evaluate_instances(
        request={"location": PARENT, "exact_match_input": {"metric_spec": {}, "instances": _instances(("", ""))}}
    )
    assert [v.score for v in response.exact_match_results.exact_match_metric_values] == [1.0]


def test_the_pairwise_metric_chooses_the_response_closer_to_the_reference(
    client: aiplatform_v1.EvaluationServiceClient,
) -> None:
    def choose(response: str, baseline: str, **spec: str) -> aiplatform_v1.PairwiseMetricResult:
        instance = {"prompt": "Capital of Peru?", "reference": "The capital of Peru is Lima."}
        instance[spec.get("candidate_response_field_name", "response")] = response
        instance[spec.get("baseline_response_field_name", "baseline_model_response")] = baseline
        return client.evaluate_instances(request=_pairwise(instance, **spec)).pairwise_metric_result

    better = choose("Lima is the capital of Peru.", "I am not sure.")
    assert better.pairwise_choice == Choice.CANDIDATE
    assert "candidate response is closer" in better.explanation
    assert choose("I am not sure.", "Lima.").pairwise_choice == Choice.BASELINE
    assert choose("Lima.", "Lima.").pairwise_choice == Choice.TIE
    named = {
        "candidate_response_field_name": "tuned",
        "baseline_response_field_name": "champion",
        "metric_prompt_template": "Question: {prompt}\nA: {tuned}\nB: {champion}\nWhich is better?",
    }
    assert choose("Lima is the capital of Peru.", "No idea.", **named).pairwise_choice == Choice.CANDIDATE


def _refusal(client: aiplatform_v1.EvaluationServiceClient, request: dict[str, Any]) -> exceptions.GoogleAPICallError:
    with pytest.raises(exceptions.GoogleAPICallError) as refused:
        client.evaluate_instances(request=request)
    return refused.value


@pytest.mark.parametrize(
    ("request_fields", "match"),
    [
        ({"exact_match_input": {"metric_spec": {}, "instances": _instances(("a", "a"))}}, "location is required"),
        (
            {"location": "us-central1", "bleu_input": {"metric_spec": {}, "instances": _instances(("a", "a"))}},
            "location",
        ),
        ({"location": PARENT}, "metric_inputs is required"),
        (
            {"location": PARENT, "exact_match_input": {"instances": _instances(("a", "a"))}},
            "exact_match_input.metric_spec",
        ),
        ({"location": PARENT, "bleu_input": {"metric_spec": {}, "instances": []}}, "bleu_input.instances is required"),
        (
            {
                "location": PARENT,
                "rouge_input": {
                    "metric_spec": {},
                    "instances": [{"prediction": "a", "reference": "a"}, {"prediction": "b"}],
                },
            },
            r"rouge_input.instances\[1\].reference",
        ),
        (
            {
                "location": PARENT,
                "rouge_input": {"metric_spec": {"rouge_type": "rougeW"}, "instances": _instances(("a", "a"))},
            },
            "rouge_type",
        ),
        (
            {"location": PARENT, "pairwise_metric_input": {"instance": {"json_instance": "{}"}}},
            "pairwise_metric_input.metric_spec",
        ),
        (
            {
                "location": PARENT,
                "pairwise_metric_input": {
                    "metric_spec": {"metric_prompt_template": ""},
                    "instance": {"json_instance": "{}"},
                },
            },
            "metric_prompt_template",
        ),
        (
            {"location": PARENT, "pairwise_metric_input": {"metric_spec": {"metric_prompt_template": TEMPLATE}}},
            r"instance is required",
        ),
        (_pairwise({"prompt": "q", "response": "a"}), "baseline_model_response"),
        (_pairwise({"response": "a", "baseline_model_response": "b"}), "prompt"),
        (
            {
                "location": PARENT,
                "pairwise_metric_input": {
                    "metric_spec": {"metric_prompt_template": TEMPLATE},
                    "instance": {"json_instance": "not json"},
                },
            },
            "not valid JSON",
        ),
        (
            {
                "location": PARENT,
                "pairwise_metric_input": {
                    "metric_spec": {"metric_prompt_template": TEMPLATE},
                    "instance": {"json_instance": '{"prompt": 1}'},
                },
            },
            "string values",
        ),
    ],
    ids=[
        "no-location",
        "bare-location",
        "no-metric",
        "no-spec",
        "no-instances",
        "no-reference",
        "bad-rouge-type",
        "pairwise-no-spec",
        "pairwise-no-template",
        "pairwise-no-instance",
        "pairwise-no-baseline",
        "pairwise-template-variable-missing",
        "pairwise-bad-json",
        "pairwise-not-strings",
    ],
)
def test_invalid_requests_are_refused_naming_the_field(
    client: aiplatform_v1.EvaluationServiceClient, request_fields: dict[str, Any], match: str
) -> None:
    refused = _refusal(client, request_fields)
    assert isinstance(refused, exceptions.InvalidArgument)
    assert refused.message is not None and re.search(match, refused.message)


@pytest.mark.parametrize(
    "request_fields",
    [
        {"location": PARENT, "fluency_input": {"metric_spec": {}, "instance": {"prediction": "a"}}},
        {
            "location": PARENT,
            "pairwise_metric_input": {
                "metric_spec": {"metric_prompt_template": TEMPLATE},
                "instance": {"content_map_instance": {}},
            },
        },
    ],
    ids=["autorater-metric", "content-map"],
)
def test_what_the_emulator_does_not_compute_is_unimplemented(
    client: aiplatform_v1.EvaluationServiceClient, request_fields: dict[str, Any]
) -> None:
    assert isinstance(_refusal(client, request_fields), exceptions.MethodNotImplemented)


def test_the_judge_retries_unavailable_answers_and_gives_up_within_its_bound() -> None:
    with vertex_emulator(VertexEmulator(env={}, unavailable_rate=0.5, seed=5)) as host:
        judge = VertexJudge(
            lambda region: evaluation_client(host, region), "p", "us-central1", retry=transient_retry(30.0, 0.001)
        )
        assert judge.score("exact_match", [("a", "a")] * 250) == [1.0] * 250
    with vertex_emulator(VertexEmulator(env={}, unavailable_rate=1.0)) as host:
        judge = VertexJudge(
            lambda region: evaluation_client(host, region), "p", "us-central1", retry=transient_retry(0.2, 0.01)
        )
        with pytest.raises(TuningUnavailable, match="scoring"):
            judge.score("bleu", [("a", "a")])


# ---- the emulator's metrics, worked by hand


def test_bleu_by_hand() -> None:
    # 6 tokens against 6: 1-grams 5/6 match; 2-grams 3/5 -> (3+1)/(5+1); 3-grams 2/4 -> 3/5; 4-grams 1/3 -> 2/4.
    value = scores.bleu("the cat sat on a mat", "the cat sat on the mat")
    assert value == pytest.approx((5 / 6 * 4 / 6 * 3 / 5 * 2 / 4) ** 0.25, abs=1e-6)
    # Shorter than 4 tokens: 0 unless the orders it cannot have are left out.
    assert scores.bleu("the cat", "the cat") == 0.0
    assert scores.bleu("the cat", "the cat", use_effective_order=True) == 1.0
    # Brevity penalty: 2 tokens of a 4-token reference.
    assert scores.bleu("a b", "a b c d", use_effective_order=True) == pytest.approx(
        2.718281828 ** (1 - 4 / 2), abs=1e-6
    )


def test_rouge_by_hand() -> None:
    assert scores.rouge("a b c d", "a c d e", "rouge2") == 0.333333  # only "c d" of 3 bigrams each
    assert scores.rouge("a x b y c", "a b c", "rougeL") == 0.75  # LCS 3: precision 3/5, recall 1
    assert scores.rouge("Cats walking", "cat walks", "rouge1") == 0.0
    assert scores.rouge("Cats walking", "cat walks", "rouge1", use_stemmer=True) == 1.0
    # Sentences in another order: one line, LCS 2 of 4; split into sentences, each finds its match.
    assert scores.rouge("c d. a b", "a b. c d", "rougeLsum") == 0.5
    assert scores.rouge("c d. a b", "a b. c d", "rougeLsum", split_summaries=True) == 1.0
    assert scores.rouge("c d\na b", "a b\nc d", "rougeLsum") == 1.0
