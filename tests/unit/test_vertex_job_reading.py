"""Reading a TuningJob (aiplatform_v1, as google-cloud-aiplatform 2.7 carries it) into what Tunedrop records:
evaluation runs per checkpoint with their aggregated metrics, and the experiment."""

from __future__ import annotations

from datetime import UTC, datetime

from google.cloud import aiplatform_v1

from shared.adapters.vertex_tuning import to_remote

Aggregation = aiplatform_v1.AggregationResult
PARENT = "projects/demo/locations/us-central1"
T0 = datetime(2026, 11, 30, tzinfo=UTC)


def evaluated_job() -> aiplatform_v1.TuningJob:
    run = aiplatform_v1.EvaluateDatasetRun(
        checkpoint_id="2",
        operation_name=f"{PARENT}/operations/9",
        evaluate_dataset_response=aiplatform_v1.EvaluateDatasetResponse(
            aggregation_output=aiplatform_v1.AggregationOutput(
                aggregation_results=[
                    Aggregation(
                        aggregation_metric=aiplatform_v1.Metric.AggregationMetric.AVERAGE,
                        bleu_metric_value=aiplatform_v1.BleuMetricValue(score=0.25),
                    ),
                    Aggregation(
                        aggregation_metric=aiplatform_v1.Metric.AggregationMetric.MEDIAN,
                        pointwise_metric_result=aiplatform_v1.PointwiseMetricResult(score=4.0),
                    ),
                ]
            ),
            output_info=aiplatform_v1.OutputInfo(gcs_output_directory="gs://ds/reports/j/evaluation/"),
        ),
    )
    failed = aiplatform_v1.EvaluateDatasetRun(checkpoint_id="3", error={"code": 13, "message": "autorater failed"})
    return aiplatform_v1.TuningJob(
        name=f"{PARENT}/tuningJobs/1",
        state=aiplatform_v1.JobState.JOB_STATE_SUCCEEDED,
        evaluate_dataset_runs=[run, failed],
        experiment=f"{PARENT}/metadataStores/default/contexts/e1",
    )


def test_evaluation_runs_are_read_per_checkpoint_with_their_metrics() -> None:
    remote = to_remote(evaluated_job())
    first, failed = remote.evaluations
    assert first == {
        "checkpoint_id": "2",
        "operation_name": f"{PARENT}/operations/9",
        "metrics": [
            {"metric": "bleu", "aggregation": "AVERAGE", "value": 0.25},
            {"metric": "pointwise", "aggregation": "MEDIAN", "value": 4.0},
        ],
        "output_directory": "gs://ds/reports/j/evaluation/",
    }
    assert failed["checkpoint_id"] == "3" and failed["error"] == {"code": 13, "message": "autorater failed"}
    assert remote.experiment == f"{PARENT}/metadataStores/default/contexts/e1"


def test_a_job_without_evaluation_reads_as_none() -> None:
    remote = to_remote(aiplatform_v1.TuningJob(name=f"{PARENT}/tuningJobs/2"))
    assert (list(remote.evaluations), remote.experiment) == ([], "")


def test_tunedrop_job_shows_checkpoints_with_their_metrics_and_the_console_link() -> None:
    from dataclasses import replace

    from shared.cli import console_url, job_details
    from shared.jobs import new_job

    name = f"{PARENT}/tuningJobs/123"
    job = replace(
        new_job(job_id="j", bucket="ds", object_name="incoming/a.jsonl", generation="1", base_model="m", now=T0),
        vertex_job_name=name,
        checkpoints=[{"checkpoint_id": "1", "epoch": 1, "step": 10, "endpoint": "e1"}],
        evaluations=[
            {"checkpoint_id": "1", "metrics": [{"metric": "bleu", "aggregation": "AVERAGE", "value": 0.25}]},
        ],
    )
    lines = job_details(job)
    url = "https://console.cloud.google.com/vertex-ai/generative/language/locations/us-central1/tuning/tuningJob/123?project=demo"
    assert console_url(name) == url and any(line.strip() == f"console      {url}" for line in lines)
    assert "       1  epoch 1, step 10; bleu average 0.25" in lines
    assert console_url("") == "" and not any(
        "checkpoints:" in line for line in job_details(replace(job, checkpoints=[], evaluations=[]))
    )


def test_a_metric_without_a_score_or_with_a_nan_reads_as_no_value() -> None:
    def result(value: aiplatform_v1.PointwiseMetricResult) -> aiplatform_v1.AggregationResult:
        return aiplatform_v1.AggregationResult(
            aggregation_metric=aiplatform_v1.Metric.AggregationMetric.AVERAGE, pointwise_metric_result=value
        )

    run = aiplatform_v1.EvaluateDatasetRun(
        checkpoint_id="1",
        evaluate_dataset_response=aiplatform_v1.EvaluateDatasetResponse(
            aggregation_output=aiplatform_v1.AggregationOutput(
                aggregation_results=[
                    result(aiplatform_v1.PointwiseMetricResult(explanation="no score")),
                    result(aiplatform_v1.PointwiseMetricResult(score=float("nan"))),
                ]
            )
        ),
    )
    (evaluation,) = to_remote(
        aiplatform_v1.TuningJob(name=f"{PARENT}/tuningJobs/3", evaluate_dataset_runs=[run])
    ).evaluations
    assert [metric["value"] for metric in evaluation["metrics"]] == [None, None]
