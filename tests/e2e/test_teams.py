"""Teams by prefix on the local stack, through public surfaces only: a manifest dropped in one team's folder
may tune on that team's datasets, and one naming another team's dataset is REJECTED naming the rule; a manifest
asking for a priority or model beyond its team's policy is REJECTED naming the policy."""

from __future__ import annotations

import json
import uuid

import pytest

from shared.jobs import job_id_for
from tests.e2e.helpers import Completion, CompletionReader, bucket, dataset, job_document
from tests.e2e.stacks import stack_fixture

pytestmark = pytest.mark.e2e


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
    assert job_document(stack_env, job_ids["own"])["team"] == kitchen


# The operators' policies, as Terraform renders them into TUNEDROP_TEAM_POLICIES.
POLICIES = {
    "default": {"max_priority": 5},
    "teams": {"search": {"allowed_models": ["gemini-3.5-flash"], "max_priority": 10}},
}
policies_env = stack_fixture(
    "policies",
    {
        "TUNEDROP_QUOTA": "2",
        "TUNEDROP_EMULATOR_QUOTA": "10",
        "TUNEDROP_EMULATOR_JOB_SECONDS": "3",
        "TUNEDROP_POLL_SECONDS": "1",
        "TUNEDROP_TEAM_POLICIES": json.dumps(POLICIES),
    },
    scope="module",
)


def _completions(env: dict[str, str], uploads: dict[str, tuple[str, str]]) -> dict[str, Completion]:
    """Drop each (object name, manifest) and return its completion event by upload name."""
    target = bucket(env)
    reader = CompletionReader(env)
    job_ids: dict[str, str] = {}
    try:
        for name, (object_name, body) in uploads.items():
            blob = target.blob(object_name)
            blob.upload_from_string(body.encode(), content_type="application/yaml")
            job_ids[name] = job_id_for(env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))
        events = reader.read_until(lambda got: {e.attributes["ce-subject"] for e in got} >= set(job_ids.values()), 90)
    finally:
        reader.close()
    by_job = {event.attributes["ce-subject"]: event for event in events}
    return {name: by_job[job_id] for name, job_id in job_ids.items()}


def test_a_priority_or_model_beyond_the_teams_policy_is_rejected_naming_the_policy(
    policies_env: dict[str, str],
) -> None:
    target = bucket(policies_env)
    for team in ("search", "ads"):
        target.blob(f"datasets/{team}/train.jsonl").upload_from_string(dataset())
    train = "training_dataset: datasets/{}/train.jsonl\n"
    outcome = _completions(
        policies_env,
        {
            "too_urgent": ("incoming/search/urgent.yaml", train.format("search") + "priority: 50\n"),
            "other_model": ("incoming/search/pro.yaml", train.format("search") + "base_model: gemini-2.5-pro\n"),
            "default_policy": ("incoming/ads/urgent.yaml", train.format("ads") + "priority: 6\n"),
            "within": ("incoming/search/ok.yaml", train.format("search") + "priority: 10\n"),
        },
    )

    def only_error(name: str) -> dict[str, str]:
        """The one policy error of a rejected upload (the model's own checks may find more on another model)."""
        event = outcome[name]
        assert event.attributes["ce-type"] == "tunedrop.job.v1.rejected", name
        (first,) = [e for e in event.data["error"]["first_errors"] if e["code"].startswith("policy_")]
        return dict(first)

    urgent = only_error("too_urgent")
    assert urgent["code"] == "policy_priority_too_high"
    assert urgent["message"].startswith('team "search" policy allows priority up to 10; this manifest asks 50')
    model = only_error("other_model")
    assert model["code"] == "policy_model_not_allowed"
    assert (
        'team "search" policy allows base models gemini-3.5-flash; this upload asks gemini-2.5-pro'
        in (model["message"])
    )
    # A team without a policy of its own is held to the default policy.
    assert only_error("default_policy")["message"].startswith('team "ads" policy allows priority up to 5;')
    # Nothing was lowered to fit: the rejected job keeps the priority it asked for.
    assert job_document(policies_env, outcome["too_urgent"].attributes["ce-subject"])["priority"] == 50
    within = outcome["within"]
    assert within.attributes["ce-type"] == "tunedrop.job.v1.succeeded", within.data["error"]
