"""End to end on the local stack: base models that can no longer be tuned, and re-tuning on a successor.

The stack runs on the real clock, and on the day these tests were written (2026-11-29) every model of
the seeds had retired, so an upload naming one is refused before anything reaches Vertex AI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime

import pytest

from shared.jobs import job_id_for
from shared.validation.registry import ModelStatus, get_model, registry
from tests.e2e.helpers import Completion, CompletionReader, bucket, dataset, list_tuning_jobs
from tests.eventschema import assert_valid_completion

pytestmark = pytest.mark.e2e

SEEDS = (
    "gemini-1.0-pro-002",
    "gemini-1.5-pro-002",
    "gemini-1.5-flash-002",
    "gemini-2.0-flash-001",
    "gemini-2.0-flash-lite-001",
)


# gemini-1.0-pro-002 reads the legacy messages format; the other seeds read contents.
LEGACY_DATASET = b'{"messages": [{"role": "user", "content": "Q"}, {"role": "model", "content": "A"}]}\n' * 16
RETUNED_SEED = "gemini-2.0-flash-001"
SUCCESSOR = "gemini-3.1-flash-lite"


def _tunedrop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from shared.cli import main; main()", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_uploads_naming_retired_models_are_rejected_and_one_is_retuned_on_its_successor(
    stack_env: dict[str, str],
) -> None:
    today = datetime.now(UTC).date()
    assert all(get_model(m).status(today) is ModelStatus.RETIRED for m in SEEDS)  # type: ignore[union-attr]
    reader = CompletionReader(stack_env)
    try:
        job_models = _upload_one_per_seed(stack_env)
        events = reader.read_until(lambda got: {e.attributes["ce-subject"] for e in got} >= set(job_models), 90)
        _assert_each_is_rejected_naming_its_successor(events, job_models, today)
        labels = {t.labels.get("tunedrop_job") for t in list_tuning_jobs(stack_env)}
        assert not labels & set(job_models), "nothing was sent to Vertex AI"

        # The operator re-tunes one of them on its successor: a new job, validated afresh, tuned there.
        original = next(j for j, m in job_models.items() if m == RETUNED_SEED)
        retuned = _retune(stack_env, original)
        events = reader.read_until(lambda got: any(e.attributes["ce-subject"] == retuned for e in got), 90)
    finally:
        reader.close()
    _assert_tuned_on_the_successor_from_the_original_bytes(stack_env, events, retuned)


def _upload_one_per_seed(env: dict[str, str]) -> dict[str, str]:
    """One upload naming each seed model; job id -> the model it names."""
    run = uuid.uuid4().hex[:6]
    target = bucket(env)
    job_models: dict[str, str] = {}
    for model in SEEDS:
        blob = target.blob(f"incoming/seed-{run}-{model}.jsonl")
        blob.metadata = {"base_model": model}
        body = LEGACY_DATASET if model == "gemini-1.0-pro-002" else dataset(3)
        blob.upload_from_string(body, content_type="application/jsonl")
        job_models[job_id_for(env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))] = model
    return job_models


def _assert_each_is_rejected_naming_its_successor(
    events: list[Completion], job_models: dict[str, str], today: date
) -> None:
    ours = {e.attributes["ce-id"]: e for e in events if e.attributes["ce-subject"] in job_models}
    assert {e.attributes["ce-subject"] for e in ours.values()} == set(job_models)
    for event in ours.values():
        spec = get_model(job_models[event.data["job_id"]])
        assert spec is not None
        successor = registry().successor(spec, today)
        assert successor is not None
        assert event.attributes["ce-type"] == "tunedrop.job.v1.rejected"
        assert event.data["error"]["code"] == "model_retired"
        assert f"Use {successor.name} instead" in event.data["error"]["message"]
        # Only the model is wrong: the data passed the retired model's own rules.
        assert event.data["validation"]["error_counts"] == {"model_retired": 1}
        assert_valid_completion(event.attributes, event.data)


def _retune(env: dict[str, str], original: str) -> str:
    """`tunedrop retune` of the original job; the new job's id, as the command prints it."""
    done = _tunedrop(env, "retune", original, "--reason", "its base model retired")
    assert done.returncode == 0, done.stdout + done.stderr
    # Validated and queued; the dispatcher may have taken it by the time the command reads it back.
    said = re.search(
        rf"^(\S+): (?:QUEUED|SUBMITTING|RUNNING|SUCCEEDED) on {re.escape(SUCCESSOR)} \(retuned from (\S+)\)$",
        done.stdout,
        re.MULTILINE,
    )
    assert said is not None, done.stdout
    retuned = said.group(1)
    assert said.group(2) == original and retuned != original
    return retuned


def _assert_tuned_on_the_successor_from_the_original_bytes(
    env: dict[str, str], events: list[Completion], retuned: str
) -> None:
    (finished,) = {e.attributes["ce-id"]: e for e in events if e.attributes["ce-subject"] == retuned}.values()
    assert finished.attributes["ce-type"] == "tunedrop.job.v1.succeeded"
    assert finished.data["base_model"] == SUCCESSOR
    (tuning_job,) = [t for t in list_tuning_jobs(env) if t.labels.get("tunedrop_job") == retuned]
    assert tuning_job.base_model == SUCCESSOR
    # Vertex AI was given Tunedrop's copy of the validated bytes, which are the original upload's.
    given = tuning_job.supervised_tuning_spec.training_dataset_uri
    assert given.startswith(f"gs://{env['TUNEDROP_BUCKET']}/tunedrop-staging/{retuned}/")
    original_name = finished.data["dataset_uri"].split("/", 3)[3]
    assert bucket(env).blob(given.split("/", 3)[3]).download_as_bytes() == (
        bucket(env).blob(original_name).download_as_bytes()
    )
