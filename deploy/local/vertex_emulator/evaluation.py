"""Evaluation during tuning: what ``supervised_tuning_spec.evaluation_config`` must say, and its results.

What the documentation says (each read 2026-11-30):

* EvaluationConfig (aiplatform_v1 2.7; https://docs.cloud.google.com/gemini-enterprise-agent-platform/
  reference/rest/v1/projects.locations.tuningJobs): ``metrics`` and ``output_config`` are Required,
  ``autorater_config`` Optional; AutoraterConfig.sampling_count is 1 to 32; GcsDestination.output_uri_prefix
  is Required.
* The supervised-tuning page (https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/tuning/
  supervised-tuning/use): evaluation is Preview, "available in the us-central1 region", and the metric specs
  it accepts are pointwise_metric_spec, pairwise_metric_spec, exact_match_spec, bleu_spec and rouge_spec.
  Pointwise and pairwise specs require ``metric_prompt_template`` (PointwiseMetricSpec, PairwiseMetricSpec).
* The checkpoints page (https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/tuning/
  checkpoints.md.txt): the evaluation service runs after each checkpoint; the integrated-evaluation notebook
  (GoogleCloudPlatform/generative-ai, gemini/tuning/sft_gemini_automatic_evaluation.ipynb) evaluates each
  checkpoint against the validation dataset, so a validation dataset is required, and writes per-checkpoint
  results under the output prefix (``evaluation_<time>/aggregation_results.jsonl``).
* EvaluateDatasetRun: ``evaluation_run`` is ``projects/*/locations/*/evaluationRuns/*``; ``operation_name``
  is deprecated in its favour (left empty); ``checkpoint_id`` names the checkpoint evaluated. Aggregated
  results come one per metric and aggregation metric, in the order the config defines them.

The emulator writes nothing to Cloud Storage (the real service writes the row-level and aggregated results
there): ``output_info.gcs_output_directory`` names where they would be. Scores are deterministic per job,
checkpoint and metric, and improve with the epoch.
"""

from __future__ import annotations

import random
import re
from typing import Any, Final

from google.cloud import aiplatform_v1

from .checkpoints import CheckpointPlan, derived_id
from .errors import invalid_argument

EVALUATION_LOCATIONS: Final = frozenset({"us-central1"})
SUPPORTED_METRIC_SPECS: Final = (
    "pointwise_metric_spec",
    "pairwise_metric_spec",
    "exact_match_spec",
    "bleu_spec",
    "rouge_spec",
)
_PROMPTED_SPECS: Final = frozenset({"pointwise_metric_spec", "pairwise_metric_spec"})
MIN_SAMPLING_COUNT: Final = 1
MAX_SAMPLING_COUNT: Final = 32
_AUTORATER_MODEL_RE: Final = re.compile(
    r"^projects/[^/]+/locations/[^/]+/(publishers/[^/]+/models/[^/]+|endpoints/[^/]+)$"
)
Aggregation = aiplatform_v1.Metric.AggregationMetric
# Aggregations reported when a metric names none (the Gen AI SDK's AVERAGE and STANDARD_DEVIATION).
DEFAULT_AGGREGATIONS: Final = (Aggregation.AVERAGE, Aggregation.STANDARD_DEVIATION)
# Which AggregationResult field carries each metric spec's value.
_RESULT_FIELD: Final = {
    "pointwise_metric_spec": "pointwise_metric_result",
    "pairwise_metric_spec": "pairwise_metric_result",
    "exact_match_spec": "exact_match_metric_value",
    "bleu_spec": "bleu_metric_value",
    "rouge_spec": "rouge_metric_value",
}
_FIELD = "tuning_job.supervised_tuning_spec.evaluation_config"


def validate_evaluation(spec: Any, location: str) -> None:
    """Refuse an evaluation_config the service would not run (INVALID_ARGUMENT naming the field)."""
    config = spec.evaluation_config
    if location not in EVALUATION_LOCATIONS:
        raise invalid_argument(
            f"{_FIELD} (evaluation during tuning) is available in {', '.join(sorted(EVALUATION_LOCATIONS))} "
            f"only, not in {location}."
        )
    if not spec.validation_dataset_uri:
        raise invalid_argument(
            f"{_FIELD} needs supervised_tuning_spec.validation_dataset_uri: checkpoints are "
            "evaluated on the validation dataset."
        )
    if not config.metrics:
        raise invalid_argument(f"{_FIELD}.metrics is required: give at least one metric.")
    for index, metric in enumerate(config.metrics):
        _validate_metric(metric, f"{_FIELD}.metrics[{index}]")
    prefix = config.output_config.gcs_destination.output_uri_prefix
    if not prefix:
        raise invalid_argument(f"{_FIELD}.output_config.gcs_destination.output_uri_prefix is required.")
    if not prefix.startswith("gs://") or len(prefix) <= len("gs://"):
        raise invalid_argument(
            f"{_FIELD}.output_config.gcs_destination.output_uri_prefix must be a Cloud Storage URI (gs://...), "
            f"got {prefix!r}."
        )
    _validate_autorater(config.autorater_config)


def _validate_metric(metric: Any, field: str) -> None:
    kind = metric.WhichOneof("metric_spec")
    if kind not in SUPPORTED_METRIC_SPECS:
        raise invalid_argument(
            f"{field} must set one of {', '.join(SUPPORTED_METRIC_SPECS)} for evaluation during tuning"
            + (f", not {kind}." if kind else ".")
        )
    if kind in _PROMPTED_SPECS and not getattr(metric, kind).metric_prompt_template:
        raise invalid_argument(f"{field}.{kind}.metric_prompt_template is required.")
    if Aggregation.AGGREGATION_METRIC_UNSPECIFIED in metric.aggregation_metrics:
        raise invalid_argument(f"{field}.aggregation_metrics must not hold AGGREGATION_METRIC_UNSPECIFIED.")


def _validate_autorater(autorater: Any) -> None:
    if autorater.HasField("sampling_count") and not (
        MIN_SAMPLING_COUNT <= autorater.sampling_count <= MAX_SAMPLING_COUNT
    ):
        raise invalid_argument(
            f"{_FIELD}.autorater_config.sampling_count must be between {MIN_SAMPLING_COUNT} and "
            f"{MAX_SAMPLING_COUNT}, got {autorater.sampling_count}."
        )
    if autorater.autorater_model and not _AUTORATER_MODEL_RE.fullmatch(autorater.autorater_model):
        raise invalid_argument(
            f"{_FIELD}.autorater_config.autorater_model must be projects/*/locations/*/publishers/*/models/* or "
            f"projects/*/locations/*/endpoints/*, got {autorater.autorater_model!r}."
        )


def add_evaluation_run(job: Any, job_id: str, checkpoint: CheckpointPlan, at_micros: int) -> None:
    """Append the evaluation of ``checkpoint`` to the raw TuningJob ``job`` (its metrics, in config order)."""
    config = job.supervised_tuning_spec.evaluation_config
    prefix = job.name.split("/tuningJobs/", 1)[0]
    run = job.evaluate_dataset_runs.add()
    run.checkpoint_id = checkpoint.checkpoint_id
    run.evaluation_run = f"{prefix}/evaluationRuns/{derived_id(job_id, 'evaluation', checkpoint.checkpoint_id)}"
    response = run.evaluate_dataset_response
    response.aggregation_output.dataset.gcs_source.uris.append(job.supervised_tuning_spec.validation_dataset_uri)
    output_prefix = config.output_config.gcs_destination.output_uri_prefix.rstrip("/")
    response.output_info.gcs_output_directory = f"{output_prefix}/evaluation_{at_micros}"
    for index, metric in enumerate(config.metrics):
        kind = metric.WhichOneof("metric_spec")
        rng = random.Random(f"{job_id}:{checkpoint.checkpoint_id}:{index}")
        mean, spread = _score(kind, rng, checkpoint.share)
        for aggregation in metric.aggregation_metrics or DEFAULT_AGGREGATIONS:
            result = response.aggregation_output.aggregation_results.add()
            result.aggregation_metric = aggregation
            _set_value(result, kind, _aggregate(aggregation, mean, spread, _scale(kind)))


def _scale(kind: str) -> tuple[float, float]:
    """The range of one sample's score: 1 to 5 for autorater metrics, 0 to 1 for computed ones."""
    return (1.0, 5.0) if kind in _PROMPTED_SPECS else (0.0, 1.0)


def _score(kind: str, rng: random.Random, progress: float) -> tuple[float, float]:
    """(mean, standard deviation) of the checkpoint's samples; later checkpoints score higher."""
    low, high = _scale(kind)
    quality = min(1.0, rng.uniform(0.35, 0.55) + 0.4 * progress)
    return low + (high - low) * quality, (high - low) * rng.uniform(0.05, 0.15)


def _aggregate(aggregation: int, mean: float, spread: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    offsets = {
        Aggregation.MINIMUM: -2.0,
        Aggregation.MAXIMUM: 2.0,
        Aggregation.PERCENTILE_P90: 1.28,
        Aggregation.PERCENTILE_P95: 1.64,
        Aggregation.PERCENTILE_P99: 2.33,
    }
    if aggregation == Aggregation.STANDARD_DEVIATION:
        return round(spread, 6)
    if aggregation == Aggregation.VARIANCE:
        return round(spread * spread, 6)
    value = mean + offsets.get(aggregation, 0.0) * spread
    if aggregation == Aggregation.MODE:
        value = round(value) if high > 1 else value
    return round(min(high, max(low, value)), 6)


def _set_value(result: Any, kind: str, value: float) -> None:
    target = getattr(result, _RESULT_FIELD[kind])
    if kind == "pairwise_metric_spec":
        choice = aiplatform_v1.PairwiseChoice
        target.pairwise_choice = choice.CANDIDATE if value >= 3 else choice.BASELINE
    else:
        target.score = value
