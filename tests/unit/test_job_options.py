"""A job's own TuningJob options (issue 14, item 1): description, export_last_checkpoint_only, service_account
and encryption_key, from a manifest or object metadata; the service account and key only from the operators'
allow-lists, with their defaults; all of them on the Vertex AI request."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from shared.jobs import JobState
from shared.manifest import parse_manifest, settings_from_metadata
from shared.services.submission import request_for
from tests.fakes import VALID_DATASET, Harness, make_harness

TUNER = "tuner@ml-project.iam.gserviceaccount.com"
OTHER = "other@ml-project.iam.gserviceaccount.com"
KEY = "projects/ml-project/locations/us-central1/keyRings/tuning/cryptoKeys/jobs"
OTHER_KEY = "projects/ml-project/locations/us-central1/keyRings/tuning/cryptoKeys/other"
OPERATORS = {
    "TUNEDROP_TUNING_SERVICE_ACCOUNTS": f"{TUNER},{OTHER}",
    "TUNEDROP_DEFAULT_TUNING_SERVICE_ACCOUNT": TUNER,
    "TUNEDROP_ENCRYPTION_KEYS": KEY,
}


def manifest(**options: object) -> bytes:
    return json.dumps({"training_dataset": "datasets/train.jsonl", **options}).encode()


def upload(h: Harness, **options: object) -> str:
    h.blobs.put("ds", "datasets/train.jsonl", VALID_DATASET)
    return h.upload("incoming/job.json", data=manifest(**options))


def test_the_options_reach_the_vertex_ai_request() -> None:
    h = make_harness(OPERATORS)
    job_id = upload(
        h, description="weekly refresh\nof the support bot", export_last_checkpoint_only=True, service_account=OTHER
    )
    job = h.job(job_id)
    assert job.state is JobState.QUEUED, job.validation
    assert (job.service_account, job.export_last_checkpoint_only) == (OTHER, True)

    h.app.dispatcher.dispatch()

    (request,) = h.tuning.requests
    assert request.description == "weekly refresh\nof the support bot"
    assert (request.service_account, request.export_last_checkpoint_only) == (OTHER, True)
    # No model open for tuning supports CMEK today (see below), so a key reaches a request only from a job
    # that carries one.
    assert request_for(replace(job, encryption_key=KEY)).encryption_key == KEY


def test_a_job_naming_none_gets_the_operators_defaults() -> None:
    h = make_harness(OPERATORS)
    job = h.job(upload(h))
    assert (job.service_account, job.encryption_key, job.export_last_checkpoint_only) == (TUNER, "", None)


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"service_account": "stranger@elsewhere.iam.gserviceaccount.com"}, "service_account_not_allowed"),
        ({"encryption_key": OTHER_KEY}, "encryption_key_not_allowed"),
    ],
)
def test_a_service_account_or_key_the_operators_did_not_allow_is_rejected(options: dict[str, str], code: str) -> None:
    h = make_harness(OPERATORS)
    job = h.job(upload(h, **options))
    assert job.state is JobState.REJECTED
    assert job.error is not None
    (first,) = [e for e in job.error["first_errors"] if e["code"] == code]
    assert "allowed:" in first["message"] and first["path"] == f"$.{next(iter(options))}"


def test_without_allow_lists_no_service_account_or_key_may_be_named() -> None:
    h = make_harness()
    job = h.job(upload(h, service_account=TUNER))
    assert job.state is JobState.REJECTED
    assert job.error is not None
    (first,) = job.error["first_errors"]
    assert first["code"] == "service_account_not_allowed" and "none: ask an operator" in first["message"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"export_last_checkpoint_only": "yes"}, "export_last_checkpoint_only must be true or false"),
        ({"service_account": "me@gmail.com"}, "service_account must be a service account email"),
        ({"encryption_key": "my-key"}, "encryption_key must be a Cloud KMS key"),
        ({"description": "x" * 2001}, "description must be text of at most 2000 characters"),
        ({"description": "bell\x07"}, "description must be text of at most 2000 characters"),
    ],
)
def test_malformed_options_are_reported(options: dict[str, object], message: str) -> None:
    _, issues = parse_manifest(manifest(**options), name="incoming/m.json", bucket="ds")
    (issue,) = issues
    assert issue.code == "manifest_bad_value" and issue.message.startswith(message)
    assert issue.path == f"$.{next(iter(options))}"


def test_object_metadata_says_the_single_valued_options() -> None:
    settings, issues = settings_from_metadata(
        {"export_last_checkpoint_only": "true", "service_account": TUNER, "encryption_key": KEY, "description": "d"},
        "gs://ds/incoming/a.jsonl",
    )
    assert issues == []
    assert (settings.export_last_checkpoint_only, settings.service_account, settings.encryption_key) == (
        True,
        TUNER,
        KEY,
    )
    _, bad = settings_from_metadata({"export_last_checkpoint_only": "maybe"}, "gs://ds/incoming/a.jsonl")
    assert [issue.code for issue in bad] == ["bad_metadata"]


def test_object_metadata_keys_may_be_written_with_hyphens() -> None:
    hyphenated = {"export-last-checkpoint-only": "false", "service-account": TUNER, "encryption-key": KEY}
    settings, issues = settings_from_metadata(hyphenated, "gs://ds/incoming/a.jsonl")
    assert issues == []
    assert (settings.export_last_checkpoint_only, settings.service_account, settings.encryption_key) == (
        False,
        TUNER,
        KEY,
    )
    _, bad = settings_from_metadata({"service-account": "not an email"}, "gs://ds/incoming/a.jsonl")
    assert [issue.code for issue in bad] == ["bad_metadata"]
    assert "service-account=" in bad[0].message  # the key as the user wrote it


def test_a_key_on_a_model_without_cmek_is_rejected_naming_the_rule() -> None:
    # The registry records "CMEK support: Not supported" for the Gemini 3.x tuning tables.
    h = make_harness(OPERATORS)
    job = h.job(upload(h, encryption_key=KEY, base_model="gemini-3.5-flash"))
    assert job.state is JobState.REJECTED
    assert job.error is not None
    (first,) = [e for e in job.error["first_errors"] if e["code"] == "model_no_cmek"]
    assert first["message"].startswith("gemini-3.5-flash does not support customer-managed encryption keys")
    # The operators' default key counts too: a job cannot silently go unencrypted by it.
    defaults = make_harness({**OPERATORS, "TUNEDROP_DEFAULT_ENCRYPTION_KEY": KEY})
    assert defaults.job(upload(defaults)).state is JobState.REJECTED


def test_a_google_service_agent_is_not_an_account_a_job_runs_as() -> None:
    from shared.errors import ConfigError
    from tests.fakes import make_settings

    agent = "service-123@gcp-sa-aiplatform.iam.gserviceaccount.com"
    with pytest.raises(ConfigError, match="not a service account email"):
        make_settings(TUNEDROP_TUNING_SERVICE_ACCOUNTS=agent)
    _, issues = parse_manifest(manifest(service_account=agent), name="incoming/m.json", bucket="ds")
    assert [issue.code for issue in issues] == ["manifest_bad_value"]
