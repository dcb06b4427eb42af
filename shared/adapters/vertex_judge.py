"""Judge on Vertex AI EvaluationService.EvaluateInstances (or the local emulator of it).

``score`` sends exact_match_input, bleu_input or rouge_input with up to JUDGE_BATCH instances per call; the
results come back "in the same order as presented in EvaluationRequest.instances"
(https://cloud.google.com/vertex-ai/docs/reference/rest/v1beta1/projects.locations/evaluateInstances, read
2026-11-30). ``compare`` sends one pairwise_metric_input whose json_instance holds ``prompt``, ``response``
(the candidate), ``baseline_model_response`` and ``reference``: the response keys are the ones the Vertex AI
SDK's pairwise templates use (vertexai.evaluation PairwiseMetricPromptTemplate, google-cloud-aiplatform 2.7),
so a template may name any of the four as ``{name}``. Retries and errors as in vertex_predict.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any, Final

from google.api_core import retry as retries
from google.cloud import aiplatform_v1

from shared.adapters.vertex_clients import regional_client
from shared.adapters.vertex_predict import call_vertex, transient_retry
from shared.ports import Judge, TuningRejected, TuningUnavailable

# Instances per EvaluateInstances call. No per-request limit is documented (the method's reference above
# lists none; the SDK sends one instance per request, 10 requests a second by default: vertexai.evaluation
# constants.QuotaLimit.EVAL_SERVICE_QPS, 2.7). 100 keeps a request small and an evaluation of the gate's
# default maximum (500 examples) to 5 calls per metric.
JUDGE_BATCH: Final = 100
# ROUGE-L: the longest common subsequence, for answers whose words may come in another order.
ROUGE_TYPE: Final = "rougeL"
# Scores travel as 32-bit floats: 6 decimals give back the value the service computed (0.8, not 0.800000011).
SCORE_DIGITS: Final = 6
CANDIDATE_FIELD: Final = "response"
BASELINE_FIELD: Final = "baseline_model_response"
_CHOICES: Final = {
    aiplatform_v1.PairwiseChoice.CANDIDATE: 1.0,
    aiplatform_v1.PairwiseChoice.BASELINE: 0.0,
    aiplatform_v1.PairwiseChoice.TIE: 0.5,
}


@dataclasses.dataclass(frozen=True)
class _Metric:
    input_field: str
    spec: dict[str, Any]
    results_field: str
    values_field: str


_METRICS: Final = {
    "exact_match": _Metric("exact_match_input", {}, "exact_match_results", "exact_match_metric_values"),
    "bleu": _Metric("bleu_input", {}, "bleu_results", "bleu_metric_values"),
    "rouge": _Metric("rouge_input", {"rouge_type": ROUGE_TYPE}, "rouge_results", "rouge_metric_values"),
}
METRICS: Final = tuple(_METRICS)


def evaluation_client(emulator_host: str, region: str) -> aiplatform_v1.EvaluationServiceClient:
    """An EvaluationService client for ``region``: insecure gRPC to the emulator at ``emulator_host`` when given,
    else the regional endpoint with Application Default Credentials. Made when called, never at import."""
    return regional_client(aiplatform_v1.EvaluationServiceClient, emulator_host, region)


class VertexJudge(Judge):
    """EvaluateInstances in ``projects/{project}/locations/{region}``; ``client_for(region)`` gives the client."""

    def __init__(
        self,
        client_for: Callable[[str], aiplatform_v1.EvaluationServiceClient],
        project: str,
        region: str,
        *,
        retry: retries.Retry | None = None,
    ) -> None:
        self._client_for = client_for
        self._region = region
        self._location = f"projects/{project}/locations/{region}"
        self._retry = retry or transient_retry()

    def _evaluate(self, description: str, request: aiplatform_v1.EvaluateInstancesRequest) -> Any:
        client = self._client_for(self._region)
        return call_vertex(description, client.evaluate_instances, request, self._retry)

    def score(self, metric: str, pairs: Sequence[tuple[str, str]]) -> list[float]:
        spec = _METRICS.get(metric)
        if spec is None:
            raise ValueError(f"unknown metric {metric!r}: one of {', '.join(METRICS)}")
        scores: list[float] = []
        for start in range(0, len(pairs), JUDGE_BATCH):
            batch = pairs[start : start + JUDGE_BATCH]
            instances = [{"prediction": prediction, "reference": reference} for prediction, reference in batch]
            request = aiplatform_v1.EvaluateInstancesRequest(
                location=self._location, **{spec.input_field: {"metric_spec": spec.spec, "instances": instances}}
            )
            response = self._evaluate(f"scoring {len(batch)} answers by {metric}", request)
            values = getattr(getattr(response, spec.results_field), spec.values_field)
            if len(values) != len(batch):
                raise TuningUnavailable(f"{metric}: {len(values)} scores came back for {len(batch)} answers")
            scores.extend(round(float(value.score), SCORE_DIGITS) for value in values)
        return scores

    def compare(self, prompt: str, candidate: str, baseline: str, reference: str, prompt_template: str) -> float:
        instance = {"prompt": prompt, CANDIDATE_FIELD: candidate, BASELINE_FIELD: baseline, "reference": reference}
        request = aiplatform_v1.EvaluateInstancesRequest(
            location=self._location,
            pairwise_metric_input={
                "metric_spec": {"metric_prompt_template": prompt_template},
                "instance": {"json_instance": json.dumps(instance, ensure_ascii=False)},
            },
        )
        response = self._evaluate("comparing two answers", request)
        choice = _CHOICES.get(response.pairwise_metric_result.pairwise_choice)
        if choice is None:
            raise TuningRejected("the pairwise metric gave no choice (CANDIDATE, BASELINE or TIE)")
        return choice
