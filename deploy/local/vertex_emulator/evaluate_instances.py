"""EvaluateInstances (EvaluationService): exact match, BLEU, ROUGE and a pairwise metric, computed by
:mod:`.scores`.

What a request must say (each read 2026-11-30):

* ``location``: "Required. The resource name of the Location to evaluate the instances. Format:
  projects/{project}/locations/{location}"; exactly one ``metric_inputs``; results "will be served in the
  same order as presented in EvaluationRequest.instances"
  (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations/evaluateInstances and the
  v1beta1 page of the same method).
* ExactMatchInput, BleuInput, RougeInput: ``metric_spec`` and ``instances`` Required; each instance's
  ``prediction`` and ``reference`` Required (optional fields with presence: an empty string is a value,
  an unset field is missing). RougeSpec.rouge_type: "Supported rouge types are rougen[1-9], rougeL, and
  rougeLsum" (Optional; the emulator takes rougeL when it is unset). All from ``aiplatform_v1`` 2.7
  (https://docs.cloud.google.com/python/docs/reference/aiplatform/latest/google.cloud.aiplatform_v1.types.EvaluateInstancesRequest).
* PairwiseMetricInput: ``metric_spec`` and ``instance`` Required; PairwiseMetricSpec.metric_prompt_template
  Required; ``json_instance`` holds "String key-value pairs ... to render" the template, whose variables are
  ``{name}`` (the Vertex AI SDK's PromptTemplate); the responses are the keys ``candidate_response_field_name``
  and ``baseline_response_field_name`` name, by default ``response`` and ``baseline_model_response`` (the
  SDK's PairwiseMetricPromptTemplate). The emulator refuses a template variable missing from the instance.
  Its judge compares both responses with the instance's ``reference`` (when empty or absent, its ``prompt``): see
  :func:`.scores.pairwise`.

No instance limit per request is documented, so the emulator sets none. Other metric inputs (autorater
metrics, tool calls, translation) answer UNIMPLEMENTED: the emulator does not compute them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Final

import grpc
from google.cloud import aiplatform_v1

from . import scores
from .errors import EmulatorError, invalid_argument

_LOCATION_RE: Final = re.compile(r"projects/[^/]+/locations/[^/]+")
_TEMPLATE_VARIABLE_RE: Final = re.compile(r"\{([_a-zA-Z][_a-zA-Z0-9]*)\}")
CANDIDATE_FIELD: Final = "response"
BASELINE_FIELD: Final = "baseline_model_response"
REFERENCE_FIELDS: Final = ("reference", "prompt")
Pairs = list[tuple[str, str]]


def _pairs(metric_input: Any, field: str) -> Pairs:
    if not metric_input.HasField("metric_spec"):
        raise invalid_argument(f"{field}.metric_spec is required.")
    if not metric_input.instances:
        raise invalid_argument(f"{field}.instances is required: give at least one instance.")
    pairs: Pairs = []
    for index, instance in enumerate(metric_input.instances):
        for name in ("prediction", "reference"):
            if not instance.HasField(name):
                raise invalid_argument(f"{field}.instances[{index}].{name} is required.")
        pairs.append((instance.prediction, instance.reference))
    return pairs


def _exact_match(metric_input: Any) -> aiplatform_v1.EvaluateInstancesResponse:
    values = [scores.exact_match(*pair) for pair in _pairs(metric_input, "exact_match_input")]
    return aiplatform_v1.EvaluateInstancesResponse(
        exact_match_results={"exact_match_metric_values": [{"score": value} for value in values]}
    )


def _bleu(metric_input: Any) -> aiplatform_v1.EvaluateInstancesResponse:
    pairs = _pairs(metric_input, "bleu_input")
    effective = metric_input.metric_spec.use_effective_order
    values = [scores.bleu(prediction, reference, effective) for prediction, reference in pairs]
    return aiplatform_v1.EvaluateInstancesResponse(
        bleu_results={"bleu_metric_values": [{"score": value} for value in values]}
    )


def _rouge(metric_input: Any) -> aiplatform_v1.EvaluateInstancesResponse:
    pairs = _pairs(metric_input, "rouge_input")
    spec = metric_input.metric_spec
    rouge_type = spec.rouge_type or scores.DEFAULT_ROUGE_TYPE
    if not scores.ROUGE_TYPE_RE.fullmatch(rouge_type):
        raise invalid_argument(
            f"rouge_input.metric_spec.rouge_type must be rouge1 to rouge9, rougeL or rougeLsum, got {rouge_type!r}."
        )
    values = [
        scores.rouge(
            prediction, reference, rouge_type, use_stemmer=spec.use_stemmer, split_summaries=spec.split_summaries
        )
        for prediction, reference in pairs
    ]
    return aiplatform_v1.EvaluateInstancesResponse(
        rouge_results={"rouge_metric_values": [{"score": value} for value in values]}
    )


def _json_instance(metric_input: Any) -> dict[str, str]:
    field = "pairwise_metric_input.instance"
    if not metric_input.HasField("instance"):
        raise invalid_argument(f"{field} is required.")
    kind = metric_input.instance.WhichOneof("instance")
    if kind == "content_map_instance":
        raise EmulatorError(grpc.StatusCode.UNIMPLEMENTED, f"The Vertex AI emulator reads {field}.json_instance only.")
    if kind is None:
        raise invalid_argument(f"{field}.json_instance is required.")
    try:
        values = json.loads(metric_input.instance.json_instance)
    except ValueError as err:
        raise invalid_argument(f"{field}.json_instance is not valid JSON: {err}.") from err
    if not isinstance(values, dict) or not all(isinstance(value, str) for value in values.values()):
        raise invalid_argument(f"{field}.json_instance must be a JSON object of string values.")
    return values


def _pairwise(metric_input: Any) -> aiplatform_v1.EvaluateInstancesResponse:
    if not metric_input.HasField("metric_spec"):
        raise invalid_argument("pairwise_metric_input.metric_spec is required.")
    spec = metric_input.metric_spec
    if not spec.metric_prompt_template.strip():
        raise invalid_argument("pairwise_metric_input.metric_spec.metric_prompt_template is required.")
    values = _json_instance(metric_input)
    candidate_field = spec.candidate_response_field_name or CANDIDATE_FIELD
    baseline_field = spec.baseline_response_field_name or BASELINE_FIELD
    needed = {*_TEMPLATE_VARIABLE_RE.findall(spec.metric_prompt_template), candidate_field, baseline_field}
    missing = sorted(needed - values.keys())
    if missing:
        raise invalid_argument(
            f"pairwise_metric_input.instance.json_instance lacks {', '.join(missing)}: every variable of the "
            "metric prompt template and both responses are needed."
        )
    reference = next((values[key] for key in REFERENCE_FIELDS if values.get(key)), "")
    choice, explanation = scores.pairwise(values[candidate_field], values[baseline_field], reference)
    return aiplatform_v1.EvaluateInstancesResponse(
        pairwise_metric_result={
            "pairwise_choice": getattr(aiplatform_v1.PairwiseChoice, choice),
            "explanation": explanation,
        }
    )


_HANDLERS: Final[dict[str, Callable[[Any], aiplatform_v1.EvaluateInstancesResponse]]] = {
    "exact_match_input": _exact_match,
    "bleu_input": _bleu,
    "rouge_input": _rouge,
    "pairwise_metric_input": _pairwise,
}


def evaluate_instances(request: aiplatform_v1.EvaluateInstancesRequest) -> aiplatform_v1.EvaluateInstancesResponse:
    pb = aiplatform_v1.EvaluateInstancesRequest.pb(request)
    if not _LOCATION_RE.fullmatch(pb.location):
        raise invalid_argument(
            f"location is required as projects/{{project}}/locations/{{location}}, got {pb.location!r}."
        )
    kind = pb.WhichOneof("metric_inputs")
    if kind is None:
        raise invalid_argument(f"metric_inputs is required: set one of {', '.join(_HANDLERS)}.")
    handler = _HANDLERS.get(kind)
    if handler is None:
        raise EmulatorError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"The Vertex AI emulator does not compute {kind}; it implements {', '.join(_HANDLERS)}.",
        )
    return handler(getattr(pb, kind))
