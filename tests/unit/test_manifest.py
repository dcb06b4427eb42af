"""Manifest drops: parsing with every problem reported, and a manifest through the upload service."""

from __future__ import annotations

import json

import pytest

from shared.jobs import JobState
from shared.manifest import HYPER_PARAMETER_TYPES, TeamPrefixes, parse_manifest
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
    job_id = harness.upload("incoming/support/support.json", data=json.dumps(GOOD))
    job = harness.job(job_id)
    assert job.state is JobState.QUEUED, job.validation
    assert job.team == "support"
    assert job.dataset_uri == "gs://ds/datasets/support/train.jsonl"
    assert job.validation_uri == "gs://ds/datasets/support/val.jsonl"
    assert job.manifest_uri == "gs://ds/incoming/support/support.json"
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
    assert harness.blobs.read("ds", f"reports/default/{job_id}.md").startswith(b"#")
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


# ---- teams: a manifest names only its own team's datasets

TEAMS = TeamPrefixes(incoming_prefix="incoming/", default_team="default")


def _team_issues(manifest_name: str, training: str, validation: str | None = None) -> list[tuple[str, str | None]]:
    body = {"training_dataset": training, **({"validation_dataset": validation} if validation else {})}
    _, issues = parse_manifest(json.dumps(body).encode(), name=manifest_name, bucket="ds", teams=TEAMS)
    return [(i.code, i.path) for i in issues]


@pytest.mark.parametrize(
    ("manifest_name", "dataset"),
    [
        ("incoming/kitchen/m.json", "datasets/kitchen/t.jsonl"),
        ("incoming/kitchen/m.json", "gs://ds/datasets/kitchen/2026/t.jsonl"),
        ("incoming/kitchen/m.json", "incoming/kitchen/t.jsonl"),
        ("incoming/m.json", "datasets/t.jsonl"),
        ("incoming/m.json", "incoming/t.jsonl"),
        ("incoming/m.json", "datasets/default/t.jsonl"),
        ("incoming/default/m.json", "/datasets/t.jsonl"),
    ],
)
def test_a_manifest_may_name_its_own_teams_datasets(manifest_name: str, dataset: str) -> None:
    assert _team_issues(manifest_name, dataset) == []


@pytest.mark.parametrize(
    ("manifest_name", "dataset", "whose"),
    [
        ("incoming/kitchen/m.json", "datasets/support/t.jsonl", "team support's"),
        ("incoming/kitchen/m.json", "incoming/support/t.jsonl", "team support's"),
        ("incoming/kitchen/m.json", "datasets/t.jsonl", "team default's"),
        ("incoming/kitchen/m.json", "incoming/t.jsonl", "team default's"),
        ("incoming/m.json", "datasets/kitchen/t.jsonl", "team kitchen's"),
        ("incoming/kitchen/m.json", "datasets/kitchen-old/t.jsonl", "team kitchen-old's"),
        ("incoming/kitchen/m.json", "gs://ds/reports/kitchen/x.jsonl", "no team's"),
        ("incoming/kitchen/m.json", "tunedrop-staging/j/training-1.jsonl", "no team's"),
        ("incoming/kitchen/m.json", "kitchen/t.jsonl", "no team's"),
        ("incoming/kitchen/m.json", "datasets/Kitchen/t.jsonl", "no team's"),
        ("incoming/kitchen/m.json", "datasets//t.jsonl", "no team's"),
        ("incoming/kitchen/m.json", "datasets/kitchen-/t.jsonl", "no team's"),
        ("incoming/42/m.json", "datasets/4/t.jsonl", "team 4's"),
    ],
)
def test_a_manifest_naming_another_teams_object_breaks_the_rule(manifest_name: str, dataset: str, whose: str) -> None:
    body = json.dumps({"training_dataset": dataset}, indent=1).encode()
    manifest, issues = parse_manifest(body, name=manifest_name, bucket="ds", teams=TEAMS)
    assert manifest.training_uri == ""
    (issue,) = issues
    assert (issue.code, issue.line, issue.path) == ("manifest_other_team", 2, "$.training_dataset")
    team = manifest_name.split("/")[1] if manifest_name.count("/") == 2 else "default"
    assert f"is {whose}, and a manifest of team {team} may name only its own team's datasets" in issue.message
    assert f"datasets/{team}/" in issue.message and f"incoming/{team}/" in issue.message


def test_each_dataset_of_a_manifest_is_checked() -> None:
    issues = _team_issues("incoming/kitchen/m.json", "datasets/kitchen/t.jsonl", "datasets/support/v.jsonl")
    assert issues == [("manifest_other_team", "$.validation_dataset")]


def test_a_custom_incoming_prefix_and_default_team_move_the_teams_folders() -> None:
    teams = TeamPrefixes(incoming_prefix="drop/", default_team="platform")
    assert teams.owner("drop/x.jsonl") == teams.owner("datasets/x.jsonl") == "platform"
    assert teams.owner("drop/kitchen/x.jsonl") == "kitchen"
    assert teams.owner("incoming/kitchen/x.jsonl") is None


def test_a_manifest_naming_another_teams_dataset_is_rejected_and_never_reads_it(harness: Harness) -> None:
    harness.blobs.put("ds", "datasets/support/train.jsonl", VALID_DATASET)
    manifest = {"training_dataset": "datasets/support/train.jsonl"}
    job = harness.job(harness.upload("incoming/kitchen/m.json", data=json.dumps(manifest)))
    assert job.state is JobState.REJECTED
    assert (job.team, job.training_uri, job.tuning_training_uri) == ("kitchen", "", "")
    assert job.error is not None
    (first,) = job.error["first_errors"]
    assert first["code"] == "manifest_other_team" and "team support's" in first["message"]
    assert job.report_uri == f"gs://ds/reports/kitchen/{job.job_id}.json"
    report = json.loads(harness.blobs.read("ds", f"reports/kitchen/{job.job_id}.json"))
    assert report["error_counts"] == {"manifest_other_team": 1}
    assert not [name for (_, name, _) in harness.blobs.objects if name.startswith("tunedrop-staging/")]
    (event,) = harness.completions()
    assert (event.json()["state"], event.json()["team"]) == ("REJECTED", "kitchen")
