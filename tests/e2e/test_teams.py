"""Teams by prefix on the local stack, through public surfaces only: a manifest dropped in one team's folder
may tune on that team's datasets, and one naming another team's dataset is REJECTED naming the rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from shared.jobs import job_id_for
from tests.e2e.helpers import Completion, CompletionReader, bucket, dataset

pytestmark = pytest.mark.e2e


def _job_document(env: dict[str, str], job_id: str) -> dict[str, object]:
    """`tunedrop job JOB_ID --json`: the job as operators see it."""
    done = subprocess.run(
        [sys.executable, "-c", "from shared.cli import main; main()", "job", job_id, "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    document: dict[str, object] = json.loads(done.stdout)
    return document


def test_a_manifest_naming_another_teams_dataset_is_rejected_and_its_own_is_tuned(
    stack_env: dict[str, str],
) -> None:
    run = uuid.uuid4().hex[:6]
    kitchen, support = f"kitchen-{run}", f"support-{run}"
    target = bucket(stack_env)
    target.blob(f"datasets/{kitchen}/train.jsonl").upload_from_string(dataset())
    target.blob(f"datasets/{support}/train.jsonl").upload_from_string(dataset())
    manifests = {
        "steals": f"training_dataset: datasets/{support}/train.jsonl\n",
        "own": f"training_dataset: datasets/{kitchen}/train.jsonl\n",
    }
    reader = CompletionReader(stack_env)
    job_ids: dict[str, str] = {}
    try:
        for name, body in manifests.items():
            blob = target.blob(f"incoming/{kitchen}/{name}.yaml")
            blob.upload_from_string(body.encode(), content_type="application/yaml")
            job_ids[name] = job_id_for(stack_env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))
        events = reader.read_until(lambda got: {e.attributes["ce-subject"] for e in got} >= set(job_ids.values()), 90)
    finally:
        reader.close()
    outcome: dict[str, Completion] = {}
    for event in events:
        for name, job_id in job_ids.items():
            if event.attributes["ce-subject"] == job_id:
                outcome[name] = event
    assert set(outcome) == set(manifests), "each manifest has a completion event"

    stolen = outcome["steals"]
    assert stolen.attributes["ce-type"] == "tunedrop.job.v1.rejected"
    assert stolen.data["team"] == kitchen
    (first,) = stolen.data["error"]["first_errors"]
    assert first["code"] == "manifest_other_team"
    assert f"team {support}'s" in first["message"] and f"datasets/{kitchen}/" in first["message"]
    assert (
        stolen.data["report_uri"] == f"gs://{stack_env['TUNEDROP_BUCKET']}/reports/{kitchen}/{job_ids['steals']}.json"
    )
    report = json.loads(target.blob(f"reports/{kitchen}/{job_ids['steals']}.json").download_as_bytes())
    assert report["error_counts"] == {"manifest_other_team": 1}
    # The other team's dataset was never copied for tuning.
    assert not list(target.list_blobs(prefix=f"tunedrop-staging/{job_ids['steals']}/"))

    own = outcome["own"]
    assert own.attributes["ce-type"] == "tunedrop.job.v1.succeeded", own.data["error"]
    assert (own.data["team"], own.data["dataset_uri"]) == (
        kitchen,
        f"gs://{stack_env['TUNEDROP_BUCKET']}/datasets/{kitchen}/train.jsonl",
    )
    assert _job_document(stack_env, job_ids["own"])["team"] == kitchen
