"""Manifest drops: parsing with every problem reported, and a manifest through the upload service."""

from __future__ import annotations

import json

import pytest

from shared.jobs import JobState
from shared.manifest import HYPER_PARAMETER_TYPES, parse_manifest
from shared.validation.hyperparams import HYPER_PARAMETER_NAMES, HYPER_PARAMETERS
from tests.fakes import VALID_DATASET, Harness

GOOD = {
    "training_dataset": "datasets/support/train.jsonl",
    "validation_dataset": "gs://ds/datasets/support/val.jsonl",
    "base_model": "gemini-2.0-flash-001",
    "hyper_parameters": {"epochs": 3, "adapter_size": 4, "learning_rate_multiplier": 1.5},
    "display_name": "support-bot-v2",
    "labels": {"team": "support", "cost_center": 42},
    "priority": 7,
}


def test_a_good_json_manifest() -> None:
    manifest, issues = parse_manifest(json.dumps(GOOD).encode(), name="incoming/m.json", bucket="ds")
    assert issues == []
    assert manifest.training_uri == "gs://ds/datasets/support/train.jsonl"
    assert manifest.validation_uri == "gs://ds/datasets/support/val.jsonl"
    assert manifest.labels == {"team": "support", "cost_center": "42"}
    assert (manifest.base_model, manifest.priority, manifest.display_name) == (
        "gemini-2.0-flash-001",
        7,
        "support-bot-v2",
    )
    assert manifest.hyper_parameters == {"epochs": 3, "adapter_size": 4, "learning_rate_multiplier": 1.5}


def test_a_good_yaml_manifest() -> None:
    text = b"training_dataset: datasets/t.jsonl\nbase_model: gemini-2.5-flash\nhyper_parameters:\n  epochs: 2\n"
    manifest, issues = parse_manifest(text, name="incoming/m.yaml", bucket="ds")
    assert issues == []
    assert (manifest.training_uri, manifest.hyper_parameters) == ("gs://ds/datasets/t.jsonl", {"epochs": 2})


def test_every_problem_is_reported_with_its_line_and_path() -> None:
    text = (
        "{\n"
        '  "training_dataset": "gs://elsewhere/t.jsonl",\n'
        '  "validation_dataset": "val.csv",\n'
        '  "labels": {"Team": "x"},\n'
        '  "priority": "high",\n'
        '  "colour": "blue"\n'
        "}\n"
    )
    _, issues = parse_manifest(text.encode(), name="incoming/m.json", bucket="ds")
    found = {(i.code, i.line, i.path) for i in issues}
    assert found == {
        ("manifest_other_bucket", 2, "$.training_dataset"),
        ("manifest_bad_dataset", 3, "$.validation_dataset"),
        ("manifest_bad_label", 4, "$.labels.Team"),
        ("manifest_bad_value", 5, "$.priority"),
        ("manifest_unknown_key", 6, "$.colour"),
    }
    assert all(i.message.endswith((".", ")")) for i in issues)


@pytest.mark.parametrize(
    ("raw", "name", "code", "line"),
    [
        (b'{"training_dataset": "a.jsonl",\n  oops}', "incoming/m.json", "manifest_not_json", 2),
        (b"training_dataset: [unclosed\n", "incoming/m.yaml", "manifest_not_yaml", 2),
        (b"- just\n- a list\n", "incoming/m.yml", "manifest_not_object", 1),
        (b"\xff\xfe", "incoming/m.json", "manifest_not_utf8", 0),
        (b"{}", "incoming/m.json", "manifest_missing_training", 0),
        (
            b'{"training_dataset": "t.jsonl", "validation_dataset": "t.jsonl"}',
            "incoming/m.json",
            "manifest_same_datasets",
            1,
        ),
    ],
)
def test_malformed_manifests(raw: bytes, name: str, code: str, line: int) -> None:
    _, issues = parse_manifest(raw, name=name, bucket="ds")
    assert [(i.code, i.line) for i in issues] == [(code, line)]


def test_a_manifest_upload_queues_a_job_with_its_datasets_and_settings(harness: Harness) -> None:
    harness.blobs.put("ds", "datasets/support/train.jsonl", VALID_DATASET)
    harness.blobs.put(
        "ds", "datasets/support/val.jsonl", VALID_DATASET.replace(b"France", b"Spain").replace(b"Paris", b"Madrid")
    )
    job_id = harness.upload("support.json", data=json.dumps(GOOD))
    job = harness.job(job_id)
    assert job.state is JobState.QUEUED, job.validation
    assert job.dataset_uri == "gs://ds/datasets/support/train.jsonl"
    assert job.validation_uri == "gs://ds/datasets/support/val.jsonl"
    assert job.manifest_uri == "gs://ds/incoming/support.json"
    assert (job.base_model, job.priority, job.labels["team"]) == ("gemini-2.0-flash-001", 7, "support")
    assert job.validation["validation_example_count"] == 3
    harness.app.dispatcher.dispatch()
    (request,) = harness.tuning.requests
    assert (
        request.training_dataset_uri
        == job.tuning_training_uri
        == f"gs://ds/tunedrop-staging/{job.job_id}/training-{job.training_generation}.jsonl"
    )
    assert request.validation_dataset_uri == job.tuning_validation_uri
    assert (
        request.validation_dataset_uri
        == f"gs://ds/tunedrop-staging/{job.job_id}/validation-{job.validation_generation}.jsonl"
    )
    # The copies hold exactly the bytes validated, whatever happens to the originals later.
    harness.blobs.put("ds", "datasets/support/train.jsonl", b"overwritten\n")
    assert harness.blobs.read("ds", job.tuning_training_uri.removeprefix("gs://ds/")) == VALID_DATASET
    assert job.training_crc32c == harness.blobs.describe("ds", job.tuning_training_uri.removeprefix("gs://ds/")).crc32c
    assert dict(request.hyper_parameters) == {"epochs": 3, "adapter_size": 4, "learning_rate_multiplier": 1.5}
    assert request.display_name == "support-bot-v2"


def test_a_manifest_naming_a_missing_dataset_is_rejected_with_a_report(harness: Harness) -> None:
    job_id = harness.upload("m.yaml", data=b"training_dataset: datasets/none.jsonl\n")
    job = harness.job(job_id)
    assert job.state is JobState.REJECTED
    assert job.error is not None
    (first,) = job.error["first_errors"]
    assert first["code"] == "object_missing"
    assert first["file"] == "gs://ds/datasets/none.jsonl"
    assert harness.blobs.read("ds", f"reports/{job_id}.md").startswith(b"#")
    (event,) = harness.completions()
    assert event.attributes["ce-type"] == "tunedrop.job.v1.rejected"


def test_bad_hyper_parameters_in_a_manifest_are_rejected_against_the_model(harness: Harness) -> None:
    harness.blobs.put("ds", "datasets/t.jsonl", VALID_DATASET)
    manifest = {
        "training_dataset": "datasets/t.jsonl",
        "base_model": "gemini-1.5-pro-002",
        "hyper_parameters": {"adapter_size": 8},
    }
    job = harness.job(harness.upload("m.json", data=json.dumps(manifest)))
    assert job.state is JobState.REJECTED
    assert "bad_adapter_size" in job.validation["error_counts"]


def test_every_supported_hyper_parameter_has_a_declared_type() -> None:
    """The manifest takes the names of shared.validation.hyperparams' one table, each with a type of its own."""
    assert set(HYPER_PARAMETER_TYPES) == set(HYPER_PARAMETER_NAMES) == {p.name for p in HYPER_PARAMETERS}
    manifest, issues = parse_manifest(
        json.dumps({"training_dataset": "t.jsonl", "hyper_parameters": {"epoch_count": 3}}).encode(),
        name="incoming/m.json",
        bucket="ds",
    )
    assert manifest.hyper_parameters == {}
    assert [(i.code, i.message) for i in issues] == [
        (
            "manifest_unknown_key",
            "Unknown hyper-parameter 'epoch_count': use adapter_size, epochs, learning_rate_multiplier.",
        )
    ]
