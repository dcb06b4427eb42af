"""Evaluation during tuning (issue 14, item 1): a manifest's `evaluation` is checked against a declared schema,
needs a validation dataset and us-central1, is sent as SupervisedTuningSpec.evaluation_config, and its results
reach the completion event named after the manifest's metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.adapters.vertex_tuning import evaluation_config
from shared.evaluation import named_results
from shared.jobs import JobState
from shared.manifest import parse_manifest
from tests.eventschema import assert_valid_completion
from tests.fakes import VALID_DATASET, Harness, make_harness

FLUENCY = {"name": "fluency", "prompt_template": "Rate the fluency of {response} from 1 to 5."}
EXACT = {"name": "exact", "kind": "exact_match", "aggregations": ["average"]}
EVALUATION = {"metrics": [FLUENCY, EXACT], "autorater": {"sampling_count": 4}}


def manifest(**fields: Any) -> bytes:
    base = {"training_dataset": "datasets/t.jsonl", "validation_dataset": "datasets/v.jsonl", **fields}
    return json.dumps(base).encode()


def problems(raw: bytes, name: str = "m.json") -> list[tuple[str, str, str]]:
    _, issues = parse_manifest(raw, name=name, bucket="b")
    return [(i.code, i.path, i.message) for i in issues]


def test_a_valid_evaluation_is_kept_as_plain_data_without_what_was_left_to_defaults() -> None:
    asked = {"metrics": [{**FLUENCY, "kind": "pointwise", "use_stemmer": None}, EXACT], "autorater": {}}
    parsed, issues = parse_manifest(manifest(evaluation=asked), name="m.json", bucket="b")
    assert issues == []
    assert parsed.evaluation == {"metrics": [FLUENCY, EXACT], "autorater": {}}


def test_yaml_nesting_of_metrics_and_aggregations_is_allowed_but_labels_stay_flat() -> None:
    yaml_text = (
        "training_dataset: datasets/t.jsonl\nvalidation_dataset: datasets/v.jsonl\nevaluation:\n  metrics:\n"
        "    - name: overlap\n      kind: rouge\n      rouge_type: rougeL\n      aggregations: [average, median]\n"
    )
    assert problems(yaml_text.encode(), "m.yaml") == []
    deep_labels = manifest(labels={"a": {"b": {"c": "d"}}})
    assert [code for code, _, _ in problems(deep_labels)] == ["manifest_too_deep"]


@pytest.mark.parametrize(
    ("evaluation", "path", "fragment"),
    [
        ({"metrics": [{"name": "fluency"}]}, "$.evaluation.metrics[0]", "a pointwise metric needs a prompt_template"),
        ({"metrics": []}, "$.evaluation.metrics", "length >= 1"),
        ({"metrics": [{"name": "b", "kind": "bleu", "rouge_type": "rougeL"}]}, "$.evaluation.metrics[0]", "for rouge"),
        ({"metrics": [{"name": "b", "kind": "bleu", "prompt_template": "x"}]}, "$.evaluation.metrics[0]", "pointwise"),
        (
            {"metrics": [{"name": "r", "kind": "rouge", "rouge_type": "rouge0"}]},
            "$.evaluation.metrics[0].rouge_type",
            "",
        ),
        ({"metrics": [{"name": "x", "kind": "perplexity"}]}, "$.evaluation.metrics[0].kind", "pointwise"),
        ({"metrics": [EXACT, EXACT]}, "$.evaluation", "exact is used twice"),
        ({"metrics": [{**EXACT, "aggregations": ["average", "average"]}]}, "$.evaluation.metrics[0]", "twice"),
        ({"metrics": [EXACT], "autorater": {"sampling_count": 33}}, "$.evaluation.autorater.sampling_count", "32"),
        ({"metrics": [EXACT], "autorater": {"judge": "me"}}, "$.evaluation.autorater", "unknown field `judge`"),
        ({"metrics": [{"name": "Fluency!", "kind": "bleu"}]}, "$.evaluation.metrics[0].name", ""),
        ("fluency", "$.evaluation", "Expected `object`"),
    ],
)
def test_an_evaluation_vertex_ai_would_refuse_is_reported_at_its_path(
    evaluation: Any, path: str, fragment: str
) -> None:
    (found,) = problems(manifest(evaluation=evaluation))
    code, where, message = found
    assert (code, where) == ("manifest_bad_evaluation", path)
    assert fragment in message
    assert message.startswith("evaluation is not one Vertex AI can run")


def upload_with_evaluation(h: Harness, team: str = "kitchen", **fields: Any) -> str:
    h.blobs.put("ds", f"datasets/{team}/t.jsonl", VALID_DATASET)
    h.blobs.put("ds", f"datasets/{team}/v.jsonl", VALID_DATASET)
    body = {
        "training_dataset": f"datasets/{team}/t.jsonl",
        "validation_dataset": f"datasets/{team}/v.jsonl",
        "evaluation": EVALUATION,
        **fields,
    }
    return h.upload(f"incoming/{team}/m.json", data=json.dumps({k: v for k, v in body.items() if v is not None}))


def error_codes(h: Harness, job_id: str) -> set[str]:
    job = h.job(job_id)
    assert job.state is JobState.REJECTED
    return set(job.validation["error_counts"])


def test_the_evaluation_is_recorded_with_where_its_results_go_and_sent_to_vertex_ai() -> None:
    h = make_harness()
    job_id = upload_with_evaluation(h)
    job = h.job(job_id)
    assert job.state is JobState.QUEUED, job.validation
    assert job.evaluation is not None
    assert job.evaluation["output_uri_prefix"] == f"gs://{h.settings.bucket}/reports/kitchen/{job_id}/evaluation/"

    h.app.dispatcher.dispatch()

    request = h.tuning.requests[-1]
    assert request.evaluation == job.evaluation
    config = evaluation_config(request.evaluation or {}, "projects/p/locations/us-central1")
    assert [m.WhichOneof("metric_spec") for m in type(config).pb(config).metrics] == [
        "pointwise_metric_spec",
        "exact_match_spec",
    ]
    assert [[a.name for a in m.aggregation_metrics] for m in config.metrics] == [
        ["AVERAGE", "STANDARD_DEVIATION"],
        ["AVERAGE"],
    ]
    assert config.output_config.gcs_destination.output_uri_prefix == job.evaluation["output_uri_prefix"]
    assert config.autorater_config.sampling_count == 4


def test_an_autorater_model_is_a_google_model_of_the_jobs_region() -> None:
    stored = {"metrics": [FLUENCY], "autorater": {"model": "gemini-2.5-flash"}, "output_uri_prefix": "gs://b/r/"}
    config = evaluation_config(stored, "projects/p/locations/us-central1")
    assert config.autorater_config.autorater_model == (
        "projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash"
    )


def test_an_evaluation_without_a_validation_dataset_is_rejected() -> None:
    h = make_harness()
    job_id = upload_with_evaluation(h, validation_dataset=None)
    assert "evaluation_needs_validation" in error_codes(h, job_id)


def test_an_evaluation_outside_us_central1_is_rejected() -> None:
    h = make_harness({"TUNEDROP_REGION": "europe-west4"})
    job_id = upload_with_evaluation(h)
    assert error_codes(h, job_id) == {"evaluation_not_in_region"}


def evaluation_run(checkpoint: str, *results: tuple[str, str, float]) -> dict[str, Any]:
    return {
        "checkpoint_id": checkpoint,
        "operation_name": "",
        "metrics": [
            {"metric": kind, "aggregation": aggregation, "value": value} for kind, aggregation, value in results
        ],
        "output_directory": "gs://b/reports/kitchen/j/evaluation/evaluation_1",
    }


def test_the_completion_event_carries_each_checkpoints_metrics_by_name() -> None:
    h = make_harness()
    job_id = upload_with_evaluation(h)
    h.app.dispatcher.dispatch()
    name = h.job(job_id).vertex_job_name
    checkpoints = [{"checkpoint_id": "1", "epoch": 1, "step": 5}, {"checkpoint_id": "2", "epoch": 2, "step": 10}]
    runs = [
        evaluation_run(
            c,
            ("pointwise", "AVERAGE", 3.5 + n),
            ("pointwise", "STANDARD_DEVIATION", 0.4),
            ("exact_match", "AVERAGE", 0.5),
        )
        for n, c in enumerate(("1", "2"))
    ]
    h.tuning.succeed(name)
    h.tuning.set_state(name, "JOB_STATE_SUCCEEDED", checkpoints=checkpoints, evaluations=runs)
    h.app.poller.poll()

    (event,) = h.completions()
    data = json.loads(event.data)
    assert_valid_completion(dict(event.attributes), data)
    assert [c["checkpoint_id"] for c in data["checkpoints"]] == ["1", "2"]
    second = data["evaluations"][1]
    assert [(m["name"], m["aggregation"], m["value"]) for m in second["metrics"]] == [
        ("fluency", "AVERAGE", 4.5),
        ("fluency", "STANDARD_DEVIATION", 0.4),
        ("exact", "AVERAGE", 0.5),
    ]


def test_results_that_do_not_line_up_with_the_metrics_stay_unnamed() -> None:
    stored = {"metrics": [FLUENCY, EXACT], "output_uri_prefix": "gs://b/r/"}
    short = evaluation_run("1", ("pointwise", "AVERAGE", 3.0))
    swapped = evaluation_run(
        "2", ("exact_match", "AVERAGE", 1.0), ("pointwise", "AVERAGE", 3.0), ("pointwise", "STANDARD_DEVIATION", 0.1)
    )
    named = named_results([short, swapped], stored)
    assert named == [short, swapped]
    assert all("name" not in m for run in named for m in run["metrics"])
    assert named_results([short], {"metrics": "not a list"}) == [short]


def test_tunedrop_job_names_each_checkpoints_metrics_as_the_manifest_did() -> None:
    """Two pointwise metrics would read alike by kind alone: `tunedrop job` names them as the completion event does."""
    from shared.cli import job_details

    h = make_harness()
    job_id = upload_with_evaluation(h)
    h.app.dispatcher.dispatch()
    name = h.job(job_id).vertex_job_name
    run = evaluation_run(
        "1", ("pointwise", "AVERAGE", 3.5), ("pointwise", "STANDARD_DEVIATION", 0.4), ("exact_match", "AVERAGE", 0.5)
    )
    checkpoints = [{"checkpoint_id": "1", "epoch": 1, "step": 5}]
    h.tuning.succeed(name)
    h.tuning.set_state(name, "JOB_STATE_SUCCEEDED", checkpoints=checkpoints, evaluations=[run])
    h.app.poller.poll()

    lines = job_details(h.job(job_id))
    expected = "epoch 1, step 5; fluency (pointwise) average 3.5, fluency (pointwise) standard_deviation 0.4, "
    assert f"       1  {expected}exact (exact_match) average 0.5" in lines, lines


def test_a_hostile_unknown_key_in_the_evaluation_is_quoted_short_and_cannot_move_the_path() -> None:
    key = "x - at `$.autorater.model`" + "y" * 5000
    (found,) = problems(manifest(evaluation={"metrics": [EXACT], key: 1}))
    code, where, message = found
    assert (code, where) == ("manifest_bad_evaluation", "$.evaluation")
    assert "unknown field `x - at" in message and len(message) < 700


def test_checkpoints_and_their_metrics_are_recorded_while_the_job_tunes_and_written_once() -> None:
    h = make_harness()
    job_id = upload_with_evaluation(h)
    h.app.dispatcher.dispatch()
    name = h.job(job_id).vertex_job_name
    run = evaluation_run("1", ("pointwise", "AVERAGE", 3.5), ("pointwise", "STANDARD_DEVIATION", 0.4))
    checkpoints = [{"checkpoint_id": "1", "epoch": 1, "step": 5}]
    h.tuning.set_state(name, "JOB_STATE_RUNNING", checkpoints=checkpoints, evaluations=[run])
    h.app.poller.poll()

    job = h.job(job_id)
    assert (job.checkpoints, job.evaluations) == (checkpoints, [run])
    written = h.store.get(job_id)
    h.app.poller.poll()
    assert written is not None and h.store.get(job_id) == written  # nothing new: no write
