"""Upload service: one uploaded dataset becomes one job, QUEUED or REJECTED, exactly once."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest

from shared.errors import ConfigError, TransientError
from shared.jobs import Job, JobState, job_id_for
from shared.ports import ObjectMissing
from shared.services.upload import VALIDATION_LEASE, UploadedObject, UploadOutcome
from tests.fakes import INVALID_DATASET, VALID_DATASET, Harness, jsonl, make_settings


def job_id(obj: UploadedObject) -> str:
    return job_id_for(obj.bucket, obj.name, obj.generation)


def read_report(harness: Harness, job: Job, suffix: str = ".json") -> bytes:
    """The report the job names (its .json, or the .md beside it)."""
    assert job.report_uri.startswith("gs://ds/") and job.report_uri.endswith(".json")
    return harness.blobs.read("ds", job.report_uri.removeprefix("gs://ds/").removesuffix(".json") + suffix)


def test_valid_dataset_is_queued_and_wakes_the_dispatcher(harness: Harness) -> None:
    obj = harness.put_dataset("a.jsonl", VALID_DATASET)
    assert harness.app.uploads.handle(obj) is UploadOutcome.QUEUED

    job = harness.job(job_id(obj))
    assert job.state is JobState.QUEUED
    assert [h.to_state for h in job.history] == ["VALIDATING", "QUEUED"]
    assert job.enqueued_at == harness.clock.now
    assert job.base_model == "gemini-3.5-flash"
    assert job.priority == 0
    assert job.generation == obj.generation
    assert job.upload_event_id == obj.event_id
    assert job.validation["valid"] is True and job.validation["example_count"] == 3
    assert not job.completion_pending

    assert [m.json() for m in harness.dispatch_messages()] == [{"reason": "queued", "job_id": job.job_id}]
    assert harness.completions() == []
    assert len(harness.publisher.messages) == 1
    # A top-level upload is the default team's, and so is its report's folder.
    assert job.team == "default"
    report = json.loads(harness.blobs.read("ds", f"reports/default/{job.job_id}.json"))
    assert job.report_uri == f"gs://ds/reports/default/{job.job_id}.json"
    assert report["valid"] is True and report["errors"] == []


def test_invalid_dataset_is_rejected_with_a_report_and_one_event(harness: Harness) -> None:
    obj = harness.put_dataset("bad.jsonl", INVALID_DATASET)
    assert harness.app.uploads.handle(obj) is UploadOutcome.REJECTED

    job = harness.job(job_id(obj))
    assert job.state is JobState.REJECTED
    assert job.ended_at == harness.clock.now
    assert job.error is not None and job.error["code"] == "INVALID_DATASET"
    assert [(e["line"], e["code"]) for e in job.error["first_errors"]] == [(2, "not_json"), (3, "missing_contents")]

    report = json.loads(read_report(harness, job))
    assert report["job_id"] == job.job_id
    assert report["valid"] is False
    assert report["error_count"] == 2
    assert [(e["line"], e["code"]) for e in report["errors"]] == [(2, "not_json"), (3, "missing_contents")]

    events = harness.completions()
    assert len(events) == 1
    assert events[0].attributes["ce-type"] == "tunedrop.job.v1.rejected"
    assert events[0].attributes["ce-id"] == f"{job.job_id}/1/rejected"
    assert events[0].json()["report_uri"] == job.report_uri
    assert harness.dispatch_messages() == []
    assert not job.completion_pending  # marked published


@pytest.mark.parametrize("data", [VALID_DATASET, INVALID_DATASET])
def test_duplicate_notification_changes_nothing(harness: Harness, data: bytes) -> None:
    obj = harness.put_dataset("a.jsonl", data)
    first = harness.app.uploads.handle(obj)
    stored = harness.store.get(job_id(obj))
    messages = list(harness.publisher.messages)
    opens = harness.blobs.opens

    harness.clock.advance(3600)
    # The same message redelivered, and the same upload announced by a second route (new id).
    assert harness.app.uploads.handle(obj) is UploadOutcome.DUPLICATE
    assert harness.app.uploads.handle(replace(obj, event_id="another-route")) is UploadOutcome.DUPLICATE

    assert first in (UploadOutcome.QUEUED, UploadOutcome.REJECTED)
    assert harness.store.get(job_id(obj)) == stored  # same version: not even rewritten
    assert len(harness.store.jobs()) == 1
    assert harness.publisher.messages == messages
    assert harness.blobs.opens == opens  # not validated again


def test_a_new_generation_of_the_same_name_is_a_new_job(harness: Harness) -> None:
    harness.app.uploads.handle(harness.put_dataset("a.jsonl"))
    harness.app.uploads.handle(harness.put_dataset("a.jsonl"))
    assert len(harness.store.jobs()) == 2
    assert len(harness.dispatch_messages()) == 2


def test_rejection_event_survives_a_failed_publish(harness: Harness) -> None:
    obj = harness.put_dataset("bad.jsonl", INVALID_DATASET)
    harness.publisher.fail_next(topic=harness.settings.completions_topic)
    with pytest.raises(TransientError):
        harness.app.uploads.handle(obj)  # recorded REJECTED, event not published: redelivered
    assert harness.job(job_id(obj)).completion_pending
    assert harness.completions() == []

    assert harness.app.uploads.handle(obj) is UploadOutcome.DUPLICATE
    assert len(harness.completions()) == 1
    assert not harness.job(job_id(obj)).completion_pending
    harness.app.uploads.handle(obj)
    assert len(harness.completions()) == 1


def test_object_metadata_sets_base_model_and_priority(harness: Harness) -> None:
    obj = harness.put_dataset("a.jsonl", metadata={"base_model": "gemini-2.0-flash-001", "priority": "7"})
    harness.app.uploads.handle(obj)
    job = harness.job(job_id(obj))
    assert (job.base_model, job.priority) == ("gemini-2.0-flash-001", 7)


@pytest.mark.parametrize(
    ("metadata", "base_model", "priority"),
    [
        ({"base-model": "gemini-2.0-flash-001", "tunedrop-priority": "-3"}, "gemini-2.0-flash-001", -3),
        ({"tunedrop-base-model": " gemini-2.5-pro ", "priority": "+4"}, "gemini-2.5-pro", 4),
        ({"base_model": "  ", "priority": "1000"}, "gemini-3.5-flash", 1000),
        ({"priority": "-1000"}, "gemini-3.5-flash", -1000),
        ({"unrelated": "x"}, "gemini-3.5-flash", 0),
        ({"base_model": "GEMINI-3.5-FLASH"}, "gemini-3.5-flash", 0),
        (
            {"base_model": "projects/demo/locations/us-central1/publishers/google/models/gemini-3.1-flash-lite"},
            "gemini-3.1-flash-lite",
            0,
        ),
        ({"base_model": "publishers/google/models/gemini-3.5-flash-lite@001"}, "gemini-3.5-flash-lite", 0),
    ],
)
def test_metadata_keys_and_limits(harness: Harness, metadata: dict[str, str], base_model: str, priority: int) -> None:
    obj = harness.put_dataset("a.jsonl", metadata=metadata)
    assert harness.app.uploads.handle(obj) is UploadOutcome.QUEUED
    job = harness.job(job_id(obj))
    assert (job.base_model, job.priority) == (base_model, priority)


@pytest.mark.parametrize("priority", ["high", "1.5", "--5", "²", "+-3", "99999", "-1001", "9" * 5000])
def test_bad_priority_metadata_rejects_the_upload(harness: Harness, priority: str) -> None:
    obj = harness.put_dataset("a.jsonl", metadata={"priority": priority})
    assert harness.app.uploads.handle(obj) is UploadOutcome.REJECTED
    job = harness.job(job_id(obj))
    assert job.validation["error_counts"] == {"bad_metadata": 1}
    assert job.error is not None and "priority" in job.error["first_errors"][0]["message"]


def test_object_replaced_before_validation_is_rejected_as_changed(harness: Harness) -> None:
    obj = harness.put_dataset("a.jsonl")
    harness.blobs.put("ds", obj.name, VALID_DATASET)  # replaced: that generation no longer exists
    assert harness.app.uploads.handle(obj) is UploadOutcome.REJECTED
    job = harness.job(job_id(obj))
    assert job.validation["error_counts"] == {"dataset_changed": 1}
    assert len(harness.completions()) == 1


def test_object_deleted_before_validation_is_rejected_as_missing(harness: Harness) -> None:
    obj = harness.put_dataset("a.jsonl")
    harness.blobs.delete("ds", obj.name)
    assert harness.app.uploads.handle(obj) is UploadOutcome.REJECTED
    assert harness.job(job_id(obj)).validation["error_counts"] == {"object_missing": 1}


@pytest.mark.parametrize("name", ["other/a.jsonl", "a.jsonl", "reports/x.jsonl", "incoming/team/"])
def test_objects_that_are_not_uploads_are_ignored(harness: Harness, name: str) -> None:
    obj = UploadedObject(bucket="ds", name=name, generation="1", event_id="e")
    assert harness.app.uploads.handle(obj) is UploadOutcome.IGNORED
    assert harness.store.jobs() == []
    assert harness.publisher.messages == []
    assert harness.blobs.opens == 0


def test_other_buckets_are_ignored(harness: Harness) -> None:
    obj = harness.put_dataset("a.jsonl", bucket="someone-elses")
    assert harness.app.uploads.handle(obj) is UploadOutcome.IGNORED
    assert harness.store.jobs() == []


def test_custom_incoming_prefix(make_app: Callable[..., Harness]) -> None:
    h = make_app(env={"TUNEDROP_INCOMING_PREFIX": "drop/"})
    assert h.app.uploads.handle(h.put_dataset("drop/a.jsonl")) is UploadOutcome.QUEUED
    assert h.app.uploads.handle(h.put_dataset("incoming/a.jsonl")) is UploadOutcome.IGNORED


def test_a_concurrent_delivery_waits_for_the_validating_one(harness: Harness) -> None:
    obj = harness.put_dataset("a.jsonl")
    harness.blobs.fail_open(TransientError("storage hiccup"))
    with pytest.raises(TransientError):
        harness.app.uploads.handle(obj)  # the first delivery dies while VALIDATING
    assert harness.job(job_id(obj)).state is JobState.VALIDATING

    other = replace(obj, event_id="eventarc-route")
    with pytest.raises(TransientError, match="being validated"):
        harness.app.uploads.handle(other)  # another route: backs off while the lease is fresh

    # Pub/Sub redelivers the first message: it is the same delivery, so it carries on at once.
    assert harness.app.uploads.handle(obj) is UploadOutcome.QUEUED
    assert len(harness.store.jobs()) == 1
    assert len(harness.dispatch_messages()) == 1


def test_an_abandoned_validation_is_taken_over_after_the_lease(harness: Harness) -> None:
    obj = harness.put_dataset("a.jsonl")
    harness.blobs.fail_open(TransientError("storage hiccup"))
    with pytest.raises(TransientError):
        harness.app.uploads.handle(obj)
    harness.clock.advance(VALIDATION_LEASE.total_seconds() + 1)
    assert harness.app.uploads.handle(replace(obj, event_id="other")) is UploadOutcome.QUEUED


def test_a_notification_without_an_event_id_still_creates_and_validates(harness: Harness) -> None:
    obj = harness.put_dataset("a.jsonl", event_id="")
    assert harness.app.uploads.handle(obj) is UploadOutcome.QUEUED
    assert harness.job(job_id(obj)).state is JobState.QUEUED


def test_many_lines_many_errors(harness: Harness) -> None:
    data = jsonl(*[{"contents": []}] * 150)
    obj = harness.put_dataset("big.jsonl", data)
    harness.app.uploads.handle(obj)
    job = harness.job(job_id(obj))
    assert job.validation["error_count"] == 150
    assert len(job.error["first_errors"]) == 10  # type: ignore[index]
    report = json.loads(read_report(harness, job))
    assert len(report["errors"]) == 100 and report["error_counts"] == {"missing_contents": 150}


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("incoming/a.txt", "unsupported_object"),
        ("incoming/a.jsonl.tmp", "unsupported_object"),
        ("incoming/a.jsonl.gz", "unsupported_object"),
        ("incoming/data.csv", "unsupported_object"),
        ("incoming/team/sub/a.jsonl", "nested_too_deep"),
    ],
)
def test_every_object_under_incoming_gets_an_answer(harness: Harness, name: str, code: str) -> None:
    obj = harness.put_dataset(name, b"whatever")
    assert harness.app.uploads.handle(obj) is UploadOutcome.REJECTED
    job = harness.job(job_id(obj))
    assert job.error is not None and [e["code"] for e in job.error["first_errors"]] == [code]
    report = read_report(harness, job)
    assert code.encode() in report and b".jsonl" in report  # it says what Tunedrop accepts
    (event,) = harness.completions()
    assert event.json()["state"] == "REJECTED"
    assert harness.blobs.read("ds", name) == b"whatever"  # the user's object is left alone


@pytest.mark.parametrize(
    "name",
    [
        "incoming/A.JSONL",
        "incoming/team-a/a.jsonl",
        "incoming/b2/B.Jsonl",
        "incoming/9/a.jsonl",
        "incoming/9-x/a.jsonl",
    ],
)
def test_jsonl_in_any_letter_case_and_a_team_folder_are_taken(harness: Harness, name: str) -> None:
    obj = harness.put_dataset(name)
    assert harness.app.uploads.handle(obj) is UploadOutcome.QUEUED
    job = harness.job(job_id(obj))
    assert job.team == (name.split("/")[1] if name.count("/") == 2 else "default")


def test_a_team_upload_is_the_teams_with_its_report_in_the_teams_folder(harness: Harness) -> None:
    obj = harness.put_dataset("incoming/kitchen/bad.jsonl", INVALID_DATASET)
    assert harness.app.uploads.handle(obj) is UploadOutcome.REJECTED
    job = harness.job(job_id(obj))
    assert job.team == "kitchen"
    assert job.report_uri == f"gs://ds/reports/kitchen/{job.job_id}.json"
    assert json.loads(read_report(harness, job))["valid"] is False
    assert read_report(harness, job, ".md").startswith(b"#")
    with pytest.raises(ObjectMissing):
        harness.blobs.read("ds", f"reports/{job.job_id}.json")
    (event,) = harness.completions()
    assert event.json()["team"] == "kitchen"


def test_the_default_team_is_a_setting(make_app: Callable[..., Harness]) -> None:
    h = make_app(env={"TUNEDROP_DEFAULT_TEAM": "platform"})
    job = h.job(h.upload("a.jsonl"))
    assert (job.team, job.report_uri) == ("platform", f"gs://ds/reports/platform/{job.job_id}.json")
    # A folder named like the default team is that team too.
    assert h.job(h.upload("incoming/platform/b.jsonl")).team == "platform"


@pytest.mark.parametrize("team", ["Platform", "plat form", "-platform", "platform-", "x" * 64, "platform\n-x"])
def test_a_default_team_that_is_no_team_name_stops_the_configuration(team: str) -> None:
    with pytest.raises(ConfigError, match=r"TUNEDROP_DEFAULT_TEAM=.* is not a team name"):
        make_settings(TUNEDROP_DEFAULT_TEAM=team)


@pytest.mark.parametrize(
    "folder", ["Team_B", "under_score", "-dash", "dash-", "caf\u00e9", "x" * 64, "with space", "a.b"]
)
def test_an_upload_in_a_folder_that_is_no_team_name_is_rejected(harness: Harness, folder: str) -> None:
    obj = harness.put_dataset(f"incoming/{folder}/a.jsonl")
    assert harness.app.uploads.handle(obj) is UploadOutcome.REJECTED
    job = harness.job(job_id(obj))
    assert job.error is not None and [e["code"] for e in job.error["first_errors"]] == ["bad_team_folder"]
    assert "is not a team name" in job.error["first_errors"][0]["message"]
    # It belongs to no team; its report is kept with the default team's.
    assert job.team == ""
    assert job.report_uri == f"gs://ds/reports/default/{job.job_id}.json"
    assert b"bad_team_folder" in read_report(harness, job)


def test_a_retune_stays_in_the_original_jobs_team(harness: Harness) -> None:
    original = harness.upload("incoming/kitchen/a.jsonl")
    harness.app.operations.cancel(original)
    retuned = harness.app.uploads.retune(original, "gemini-3.5-flash")
    assert retuned.state is JobState.QUEUED
    assert (retuned.team, retuned.report_uri) == ("kitchen", f"gs://ds/reports/kitchen/{retuned.job_id}.json")


def test_a_base_model_path_of_another_project_or_region_is_rejected(harness: Harness) -> None:
    for path in (
        "projects/other/locations/us-central1/publishers/google/models/gemini-3.5-flash",
        "projects/demo/locations/europe-west4/publishers/google/models/gemini-3.5-flash",
    ):
        obj = harness.put_dataset("a.jsonl", metadata={"base_model": path})
        assert harness.app.uploads.handle(obj) is UploadOutcome.REJECTED
        assert "bad_base_model" in harness.job(job_id(obj)).validation["error_counts"]


# ---- team policies (TUNEDROP_TEAM_POLICIES): a value beyond the team's policy is REJECTED, never lowered

SEARCH_POLICY = json.dumps(
    {
        "default": {"max_priority": 5},
        "teams": {
            "search": {
                "allowed_models": ["gemini-3.5-flash"],
                "max_priority": 10,
                "max_epochs": 4,
                "allowed_label_keys": ["owner"],
            }
        },
    }
)


def upload_manifest(h: Harness, team: str, **fields: object) -> Job:
    h.blobs.put("ds", f"datasets/{team}/train.jsonl", VALID_DATASET)
    manifest = {"training_dataset": f"datasets/{team}/train.jsonl", **fields}
    return h.job(h.upload(f"incoming/{team}/m.json", data=json.dumps(manifest)))


def policy_errors(job: Job) -> list[tuple[str, str, str]]:
    assert job.error is not None
    return [(e["code"], e.get("path", ""), e["message"]) for e in job.error["first_errors"]]


def test_within_its_policy_a_manifest_is_queued_as_asked(make_app: Callable[..., Harness]) -> None:
    h = make_app(env={"TUNEDROP_TEAM_POLICIES": SEARCH_POLICY})
    job = upload_manifest(
        h, "search", priority=10, base_model="gemini-3.5-flash", hyper_parameters={"epochs": 4}, labels={"owner": "x"}
    )
    assert job.state is JobState.QUEUED
    assert (job.priority, job.hyper_parameters["epochs"], job.labels) == (10, 4, {"owner": "x"})


def test_a_priority_above_the_policy_is_rejected_naming_the_policy(make_app: Callable[..., Harness]) -> None:
    h = make_app(env={"TUNEDROP_TEAM_POLICIES": SEARCH_POLICY})
    job = upload_manifest(h, "search", priority=50)
    assert job.state is JobState.REJECTED
    assert job.priority == 50  # recorded as asked: never lowered to fit
    assert policy_errors(job) == [
        (
            "policy_priority_too_high",
            "$.priority",
            'team "search" policy allows priority up to 10; this manifest asks 50: '
            "ask an operator to change the team's policy.",
        )
    ]
    assert job.validation["error_counts"] == {"policy_priority_too_high": 1}


def test_every_value_beyond_the_policy_is_reported(make_app: Callable[..., Harness]) -> None:
    h = make_app(env={"TUNEDROP_TEAM_POLICIES": SEARCH_POLICY})
    job = upload_manifest(
        h,
        "search",
        base_model="gemini-2.5-pro",
        hyper_parameters={"epochs": 5},
        labels={"owner": "x", "cost-center": "y", "zone": "z"},
    )
    assert job.state is JobState.REJECTED
    found = {code: (path, message) for code, path, message in policy_errors(job)}
    assert set(found) == {"policy_model_not_allowed", "policy_epochs_too_high", "policy_label_key_not_allowed"}
    assert found["policy_model_not_allowed"][0] == "$.base_model"
    assert (
        "allows base models gemini-3.5-flash; this upload asks gemini-2.5-pro" in found["policy_model_not_allowed"][1]
    )
    assert "allows at most 4 epochs; this manifest asks 5" in found["policy_epochs_too_high"][1]
    assert "allows label keys owner; this manifest sets cost-center, zone" in found["policy_label_key_not_allowed"][1]
    report = json.loads(read_report(h, job))
    assert {e["code"] for e in report["errors"]} >= set(found)


def test_a_team_without_a_policy_gets_the_default_policy(make_app: Callable[..., Harness]) -> None:
    h = make_app(env={"TUNEDROP_TEAM_POLICIES": SEARCH_POLICY})
    assert upload_manifest(h, "ads", priority=5, base_model="gemini-2.5-pro").state is JobState.QUEUED
    job = upload_manifest(h, "kitchen", priority=6)
    assert [code for code, _, _ in policy_errors(job)] == ["policy_priority_too_high"]
    assert 'team "kitchen" policy allows priority up to 5' in policy_errors(job)[0][2]


def test_a_bare_uploads_metadata_is_held_to_the_default_teams_policy(make_app: Callable[..., Harness]) -> None:
    h = make_app(env={"TUNEDROP_TEAM_POLICIES": json.dumps({"teams": {"default": {"max_priority": 3}}})})
    obj = h.put_dataset("a.jsonl", metadata={"priority": "4"})
    assert h.app.uploads.handle(obj) is UploadOutcome.REJECTED
    # No manifest: the error points at no manifest path.
    assert policy_errors(h.job(job_id(obj)))[0][:2] == ("policy_priority_too_high", "")
    assert h.app.uploads.handle(h.put_dataset("b.jsonl", metadata={"priority": "3"})) is UploadOutcome.QUEUED


def test_a_retune_onto_a_model_the_teams_policy_does_not_allow_is_rejected(make_app: Callable[..., Harness]) -> None:
    h = make_app(env={"TUNEDROP_TEAM_POLICIES": SEARCH_POLICY})
    original = upload_manifest(h, "search")
    h.app.operations.cancel(original.job_id)
    retuned = h.app.uploads.retune(original.job_id, "gemini-2.5-pro")
    assert retuned.state is JobState.REJECTED
    assert [code for code, _, _ in policy_errors(retuned)] == ["policy_model_not_allowed"]


def test_without_policies_the_extremes_are_still_taken(harness: Harness) -> None:
    assert harness.app.policies.for_team("anyone") == harness.app.policies.default
    job = upload_manifest(harness, "search", priority=1000, base_model="gemini-2.5-pro", labels={"any": "x"})
    assert (job.state, job.priority) == (JobState.QUEUED, 1000)


def test_a_bad_policy_stops_the_configuration_naming_team_and_field() -> None:
    bad = json.dumps({"teams": {"search": {"max_priority": 5000, "weight": 0}}})
    with pytest.raises(ConfigError, match=r'team "search": max_priority=5000 is outside -1000..1000; team "search": w'):
        make_settings(TUNEDROP_TEAM_POLICIES=bad)
