"""TuningService on Vertex AI's GenAiTuningService (or the local emulator of it)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import aiplatform_v1

from shared.evaluation import evaluation_of
from shared.ports import (
    QuotaExhausted,
    RemoteJob,
    RemoteState,
    TuningJobMissing,
    TuningRejected,
    TuningRequest,
    TuningService,
    TuningUnavailable,
)

JOB_LABEL = "tunedrop_job"
ATTEMPT_LABEL = "tunedrop_attempt"
_ADAPTER_SIZES = {
    1: "ADAPTER_SIZE_ONE",
    2: "ADAPTER_SIZE_TWO",
    4: "ADAPTER_SIZE_FOUR",
    8: "ADAPTER_SIZE_EIGHT",
    16: "ADAPTER_SIZE_SIXTEEN",
    32: "ADAPTER_SIZE_THIRTY_TWO",
}
_TRANSIENT = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.Aborted,
    gexc.Unknown,
)
_PERMANENT = (
    gexc.InvalidArgument,
    gexc.PermissionDenied,
    gexc.NotFound,
    gexc.FailedPrecondition,
    gexc.Unauthenticated,
    gexc.AlreadyExists,
    gexc.MethodNotImplemented,
)


# Every call gets a deadline, so a hung call cannot outlive the dispatcher's submission lease.
CALL_TIMEOUT_SECONDS = 30.0


def _call(description: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one API call (reading every page of a list), turning Google API errors into Tunedrop's
    retry decisions."""
    try:
        result = fn(*args, timeout=CALL_TIMEOUT_SECONDS, **kwargs)
        return list(result) if hasattr(result, "pages") else result
    except gexc.ResourceExhausted as exc:
        raise QuotaExhausted(f"{description}: {exc.message}") from exc
    except gexc.NotFound as exc:
        raise TuningJobMissing(f"{description}: {exc}") from exc
    except (*_TRANSIENT, gexc.RetryError, gexc.Cancelled) as exc:
        raise TuningUnavailable(f"{description}: {exc}") from exc
    except _PERMANENT as exc:
        raise TuningRejected(f"{description}: {exc}") from exc


def _time(message: Any, field: str) -> datetime | None:
    return getattr(message, field) if field in message else None


# TuningJob's detail state: documented in the Gen AI SDKs only (REST `tuningJobState`, enum TuningJobState with values
# TUNING_JOB_STATE_*; googleapis.github.io/js-genai/release_docs/enums/types.TuningJobState.html, read 2026-11-30).
# aiplatform_v1 2.7 has no such field, so it is read only when the installed proto has it: a newer library is used
# the day it carries it, and until then the detail state is unknown ("").
_DETAIL_STATE_FIELD = "tuning_job_state"
_DETAIL_STATE_PREFIX = "TUNING_JOB_STATE_"


def _detail_state(job: aiplatform_v1.TuningJob) -> str:
    if _DETAIL_STATE_FIELD not in type(job).meta.fields:
        return ""
    value = getattr(job, _DETAIL_STATE_FIELD)
    detail = str(getattr(value, "name", "")).removeprefix(_DETAIL_STATE_PREFIX)
    return "" if detail == "UNSPECIFIED" else detail


def to_remote(job: aiplatform_v1.TuningJob) -> RemoteJob:
    stats: dict[str, Any] = {}
    if "tuning_data_stats" in job:
        sup = job.tuning_data_stats.supervised_tuning_data_stats
        stats = {
            "example_count": int(sup.tuning_dataset_example_count),
            "billable_token_count": int(sup.total_billable_token_count),
            "tuning_step_count": int(sup.tuning_step_count),
            "truncated_example_count": int(sup.total_truncated_example_count),
            "dropped_example_reasons": list(sup.dropped_example_reasons),
        }
    return RemoteJob(
        name=job.name,
        state=job.state.name,
        job_id=job.labels.get(JOB_LABEL, ""),
        attempt=int(job.labels[ATTEMPT_LABEL]) if job.labels.get(ATTEMPT_LABEL, "").isdigit() else 0,
        labels=dict(job.labels),
        create_time=_time(job, "create_time"),
        start_time=_time(job, "start_time"),
        end_time=_time(job, "end_time"),
        tuned_model=job.tuned_model.model if "tuned_model" in job else "",
        endpoint=job.tuned_model.endpoint if "tuned_model" in job else "",
        error_code=job.error.code if "error" in job else 0,
        error_message=job.error.message if "error" in job else "",
        stats=stats,
        checkpoints=[
            {"checkpoint_id": c.checkpoint_id, "epoch": int(c.epoch), "step": int(c.step), "endpoint": c.endpoint}
            for c in (job.tuned_model.checkpoints if "tuned_model" in job else [])
        ],
        evaluations=[_evaluation(run) for run in job.evaluate_dataset_runs],
        experiment=job.experiment,
        detail_state=_detail_state(job),
    )


# The metric value fields of an AggregationResult (a oneof), by the metric they hold; a pairwise result has a
# choice, not a score.
_METRIC_VALUES = (
    ("pointwise_metric_result", "pointwise"),
    ("exact_match_metric_value", "exact_match"),
    ("bleu_metric_value", "bleu"),
    ("rouge_metric_value", "rouge"),
)


def _evaluation(run: aiplatform_v1.EvaluateDatasetRun) -> dict[str, Any]:
    """One evaluation run of a checkpoint (TuningJob.evaluate_dataset_runs) as the job records it."""
    response = run.evaluate_dataset_response
    metrics = []
    for result in response.aggregation_output.aggregation_results:
        aggregation = result.aggregation_metric.name
        for field, metric in _METRIC_VALUES:
            if field in result:
                value = getattr(result, field)
                # score is optional: unset is no score, not 0; NaN would not be JSON.
                score = value.score if "score" in value and math.isfinite(value.score) else None
                metrics.append({"metric": metric, "aggregation": aggregation, "value": score})
        if "pairwise_metric_result" in result:
            choice = result.pairwise_metric_result.pairwise_choice.name
            metrics.append({"metric": "pairwise", "aggregation": aggregation, "value": choice})
    out: dict[str, Any] = {
        "checkpoint_id": run.checkpoint_id,
        "operation_name": run.operation_name,
        "metrics": metrics,
        "output_directory": response.output_info.gcs_output_directory,
    }
    if "error" in run:
        out["error"] = {"code": run.error.code, "message": run.error.message}
    return out


# A manifest metric's kind, as the Metric oneof field that carries it and that field's message.
_METRIC_SPECS: Mapping[str, tuple[str, type[Any]]] = {
    "pointwise": ("pointwise_metric_spec", aiplatform_v1.PointwiseMetricSpec),
    "pairwise": ("pairwise_metric_spec", aiplatform_v1.PairwiseMetricSpec),
    "exact_match": ("exact_match_spec", aiplatform_v1.ExactMatchSpec),
    "bleu": ("bleu_spec", aiplatform_v1.BleuSpec),
    "rouge": ("rouge_spec", aiplatform_v1.RougeSpec),
}


def evaluation_config(stored: Mapping[str, Any], parent: str) -> aiplatform_v1.EvaluationConfig:
    """The job's evaluation (validated at upload: shared.evaluation) as Vertex AI's EvaluationConfig; every
    aggregation is named, so results line up with the metrics (shared.evaluation.named_results)."""
    evaluation = evaluation_of(stored)
    metrics = []
    for metric in evaluation.metrics:
        spec_fields = {
            "metric_prompt_template": metric.prompt_template,
            "system_instruction": metric.system_instruction,
            "rouge_type": metric.rouge_type,
            "use_stemmer": metric.use_stemmer,
            "split_summaries": metric.split_summaries,
            "use_effective_order": metric.use_effective_order,
        }
        # The manifest schema allowed each field only on its own kind, so the message has every field given.
        oneof_field, message = _METRIC_SPECS[metric.kind]
        spec = message(**{key: value for key, value in spec_fields.items() if value is not None})
        aggregation = aiplatform_v1.Metric.AggregationMetric
        aggregations = [getattr(aggregation, name.upper()) for name in metric.aggregation_names]
        metrics.append(aiplatform_v1.Metric(**{oneof_field: spec}, aggregation_metrics=aggregations))
    config = aiplatform_v1.EvaluationConfig(
        metrics=metrics,
        output_config=aiplatform_v1.OutputConfig(
            gcs_destination=aiplatform_v1.GcsDestination(output_uri_prefix=stored["output_uri_prefix"])
        ),
    )
    autorater = evaluation.autorater
    if autorater is not None:
        config.autorater_config = aiplatform_v1.AutoraterConfig(
            sampling_count=autorater.sampling_count,
            flip_enabled=autorater.flip_enabled,
            autorater_model=f"{parent}/publishers/google/models/{autorater.model}" if autorater.model else None,
        )
    return config


def _hyper_parameters(values: Mapping[str, Any]) -> aiplatform_v1.SupervisedHyperParameters:
    params = aiplatform_v1.SupervisedHyperParameters()
    if values.get("epochs"):
        params.epoch_count = int(values["epochs"])
    if values.get("learning_rate_multiplier"):
        params.learning_rate_multiplier = float(values["learning_rate_multiplier"])
    if values.get("adapter_size"):
        params.adapter_size = getattr(
            aiplatform_v1.SupervisedHyperParameters.AdapterSize, _ADAPTER_SIZES[int(values["adapter_size"])]
        )
    return params


# Server-side filter for jobs that hold a slot of the concurrent tuning-job quota.
# Active jobs per ListTuningJobs page. The reference documents page_size only as "the standard list page size",
# with no default or maximum (docs.cloud.google.com/gemini-enterprise-agent-platform/reference/rest/v1/
# projects.locations.tuningJobs/list, read 2026-11-30): asking for 100 keeps one page per region for any quota
# Tunedrop is likely to hold, whatever the server's default; a server capping lower still pages correctly.
LIST_PAGE_SIZE = 100
ACTIVE_FILTER = " AND ".join(
    f"state!={s}" for s in (RemoteState.SUCCEEDED, RemoteState.FAILED, RemoteState.CANCELLED, RemoteState.EXPIRED)
)


class VertexTuning(TuningService):
    """Tuning jobs are created in `region`; `quota_regions` are where active jobs are counted.

    Vertex AI serves each region from its own endpoint, hence one client per region.
    """

    def __init__(
        self,
        client_for: Callable[[str], aiplatform_v1.GenAiTuningServiceClient],
        project: str,
        region: str,
        quota_regions: Sequence[str] = (),
    ) -> None:
        self._client_for = client_for
        self._project = project
        self._quota_regions = tuple(dict.fromkeys([region, *quota_regions]))
        self._client = client_for(region)
        self._parent = f"projects/{project}/locations/{region}"

    def create(self, request: TuningRequest) -> RemoteJob:
        spec = aiplatform_v1.SupervisedTuningSpec(
            training_dataset_uri=request.training_dataset_uri,
            hyper_parameters=_hyper_parameters(request.hyper_parameters),
        )
        if request.validation_dataset_uri:
            spec.validation_dataset_uri = request.validation_dataset_uri
        if request.export_last_checkpoint_only is not None:
            spec.export_last_checkpoint_only = request.export_last_checkpoint_only
        if request.evaluation:
            spec.evaluation_config = evaluation_config(request.evaluation, self._parent)
        job = aiplatform_v1.TuningJob(
            supervised_tuning_spec=spec,
            tuned_model_display_name=request.display_name[:128],
            labels={**request.labels, JOB_LABEL: request.job_id, ATTEMPT_LABEL: str(request.attempt)},
            description=request.description,
            service_account=request.service_account,
        )
        if request.encryption_key:
            job.encryption_spec = aiplatform_v1.EncryptionSpec(kms_key_name=request.encryption_key)
        # base_model and pre_tuned_model are one oneof (source_model): a continuation names only the tuned model.
        if request.pre_tuned_model:
            job.pre_tuned_model = aiplatform_v1.PreTunedModel(
                tuned_model_name=request.pre_tuned_model, checkpoint_id=request.pre_tuned_checkpoint
            )
        else:
            job.base_model = request.base_model
        created = _call("creating the tuning job", self._client.create_tuning_job, parent=self._parent, tuning_job=job)
        return to_remote(created)

    def get(self, name: str) -> RemoteJob:
        return to_remote(_call(f"reading {name}", self._client.get_tuning_job, name=name))

    def find(self, job_id: str, attempt: int) -> RemoteJob | None:
        pages = _call(
            "listing tuning jobs",
            self._client.list_tuning_jobs,
            request={"parent": self._parent, "filter": f'labels.{JOB_LABEL}="{job_id}"'},
        )
        for job in pages:
            if job.labels.get(JOB_LABEL) == job_id and job.labels.get(ATTEMPT_LABEL) == str(attempt):
                return to_remote(job)
        return None

    def cancel(self, name: str) -> None:
        _call(f"cancelling {name}", self._client.cancel_tuning_job, name=name)

    def active_jobs(self) -> list[RemoteJob]:
        active: list[RemoteJob] = []
        for region in self._quota_regions:
            client = self._client_for(region)
            pages = _call(
                f"listing active tuning jobs in {region}",
                client.list_tuning_jobs,
                request={
                    "parent": f"projects/{self._project}/locations/{region}",
                    "filter": ACTIVE_FILTER,
                    "page_size": LIST_PAGE_SIZE,
                },
            )
            # The filter is a first cut; RemoteState decides what holds a slot (PARTIALLY_SUCCEEDED does not).
            active.extend(remote for remote in map(to_remote, pages) if remote.state in RemoteState.ACTIVE)
        return active
