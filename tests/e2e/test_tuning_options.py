"""Today's TuningJob end to end (issue 14's first acceptance point): a manifest with evaluation,
export_last_checkpoint_only and continue_from reaches Vertex AI (our emulator, through the real client) as those
fields, and the completion events carry the checkpoints with their evaluation metrics, valid against the schema."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from shared.jobs import job_id_for
from tests.e2e.helpers import Completion, CompletionReader, bucket, dataset, list_tuning_jobs
from tests.eventschema import assert_valid_completion

pytestmark = pytest.mark.e2e

TEAM = "evals"
EVALUATION = {
    "metrics": [
        {"name": "fluency", "prompt_template": "Rate the fluency of {response} from 1 to 5."},
        {"name": "overlap", "kind": "rouge", "rouge_type": "rougeL", "aggregations": ["average", "median"]},
    ],
    "autorater": {"sampling_count": 2},
}


def _upload_manifest(env: dict[str, str], run: str, name: str, manifest: dict[str, Any]) -> str:
    blob = bucket(env).blob(f"incoming/{TEAM}/{run}-{name}.json")
    blob.upload_from_string(json.dumps(manifest), content_type="application/json")
    return job_id_for(env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))


def _completed(reader: CompletionReader, job_id: str) -> Completion:
    events = reader.read_until(lambda got: any(e.attributes["ce-subject"] == job_id for e in got), timeout=120)
    (event,) = [e for e in events if e.attributes["ce-subject"] == job_id]
    assert_valid_completion(event.attributes, event.data)
    assert event.data["state"] == "SUCCEEDED", event.data
    return event


def _per_checkpoint(event: Completion) -> dict[str, list[tuple[str, str]]]:
    """Each checkpoint's evaluated metrics, as (metric name, aggregation)."""
    runs = {run["checkpoint_id"]: run for run in event.data["evaluations"]}
    return {
        checkpoint["checkpoint_id"]: [
            (m["name"], m["aggregation"]) for m in runs[checkpoint["checkpoint_id"]]["metrics"]
        ]
        for checkpoint in event.data["checkpoints"]
    }


def test_evaluation_checkpoints_and_continuous_tuning_reach_vertex_ai_and_the_completion_event(
    stack_env: dict[str, str],
) -> None:
    env = stack_env
    run = uuid.uuid4().hex[:6]
    target = bucket(env)
    for part in ("train", "val", "more"):
        target.blob(f"datasets/{TEAM}/{run}-{part}.jsonl").upload_from_string(dataset(6))
    datasets = f"datasets/{TEAM}/{run}"
    reader = CompletionReader(env)
    try:
        first = _upload_manifest(
            env,
            run,
            "first",
            {
                "training_dataset": f"{datasets}-train.jsonl",
                "validation_dataset": f"{datasets}-val.jsonl",
                "hyper_parameters": {"epochs": 3},
                "evaluation": EVALUATION,
            },
        )
        first_event = _completed(reader, first)
        second = _upload_manifest(
            env,
            run,
            "second",
            {
                "training_dataset": f"{datasets}-more.jsonl",
                "validation_dataset": f"{datasets}-val.jsonl",
                "hyper_parameters": {"epochs": 2},
                "continue_from": {"job": first, "checkpoint_id": "2"},
                "export_last_checkpoint_only": True,
                "evaluation": EVALUATION,
                "description": "refresh with more data",
            },
        )
        second_event = _completed(reader, second)
    finally:
        reader.close()

    expected_metrics = [
        ("fluency", "AVERAGE"),
        ("fluency", "STANDARD_DEVIATION"),
        ("overlap", "AVERAGE"),
        ("overlap", "MEDIAN"),
    ]
    # Three epochs: a checkpoint after each, each evaluated on the validation set with every metric asked for.
    assert _per_checkpoint(first_event) == dict.fromkeys(["1", "2", "3"], expected_metrics)
    assert all(isinstance(m["value"], float) for r in first_event.data["evaluations"] for m in r["metrics"])
    # Only the last checkpoint exported (the emulator lists that one), and it is evaluated too.
    assert len(second_event.data["checkpoints"]) == 1
    assert list(_per_checkpoint(second_event).values()) == [expected_metrics]

    (vertex_job,) = list_tuning_jobs(env, f'labels.tunedrop_job="{second}"')
    assert vertex_job.pre_tuned_model.tuned_model_name == first_event.data["tuned_model"]
    assert vertex_job.pre_tuned_model.checkpoint_id == "2"
    assert not vertex_job.base_model  # one oneof with pre_tuned_model: the continuation names no base model
    spec = vertex_job.supervised_tuning_spec
    assert spec.export_last_checkpoint_only is True
    evaluation = spec.evaluation_config
    assert [m.rouge_spec.rouge_type for m in evaluation.metrics] == ["", "rougeL"]
    assert evaluation.output_config.gcs_destination.output_uri_prefix == (
        f"gs://{env['TUNEDROP_BUCKET']}/reports/{TEAM}/{second}/evaluation/"
    )
    assert evaluation.autorater_config.sampling_count == 2
    assert vertex_job.description == "refresh with more data"
    assert second_event.data["evaluations"][0]["output_directory"].startswith(
        evaluation.output_config.gcs_destination.output_uri_prefix
    )
