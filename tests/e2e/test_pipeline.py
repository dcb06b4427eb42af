"""End to end on the local stack, through public surfaces only: upload with the Cloud Storage
client, completion events from a subscription of our own, tuning jobs read back from the
Vertex AI emulator with the real client."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from shared.jobs import job_id_for
from tests.e2e.helpers import CompletionReader, bucket, dataset, list_tuning_jobs, max_overlap

pytestmark = pytest.mark.e2e


def _upload(env: dict[str, str], names: list[str], body: bytes, metadata: dict[str, str] | None = None) -> dict:
    target = bucket(env)
    job_ids = {}
    for name in names:
        blob = target.blob(f"incoming/{name}")
        if metadata:
            blob.metadata = metadata
        blob.upload_from_string(body, content_type="application/jsonl")
        job_ids[job_id_for(env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))] = name
    return job_ids


def test_ten_datasets_with_quota_two_all_succeed_without_exceeding_it(stack_env: dict[str, str]) -> None:
    run = uuid.uuid4().hex[:6]
    reader = CompletionReader(stack_env)
    try:
        job_ids = _upload(stack_env, [f"ten-{run}-{i}.jsonl" for i in range(10)], dataset())
        events = reader.read_until(lambda got: {e.attributes["ce-subject"] for e in got} >= set(job_ids), 120)
    finally:
        reader.close()

    ours = [e for e in events if e.attributes["ce-subject"] in job_ids]
    assert {e.attributes["ce-subject"] for e in ours} == set(job_ids), "every dataset has a completion event"
    assert {e.attributes["ce-type"] for e in ours} == {"tunedrop.job.v1.succeeded"}
    assert all(e.data["tuned_model"] and e.data["endpoint"] for e in ours)
    # Redeliveries may repeat an event, but never with a different id for the same job.
    ids_per_job = {j: {e.attributes["ce-id"] for e in ours if e.attributes["ce-subject"] == j} for j in job_ids}
    assert all(len(ids) == 1 for ids in ids_per_job.values())

    tuning_jobs = [t for t in list_tuning_jobs(stack_env) if t.labels.get("tunedrop_job") in job_ids]
    per_dataset = Counter(t.labels["tunedrop_job"] for t in tuning_jobs)
    assert per_dataset == Counter(dict.fromkeys(job_ids, 1)), "exactly one tuning job per dataset"
    assert all(t.state.name == "JOB_STATE_SUCCEEDED" for t in tuning_jobs)
    # A slot is taken from create to end; quota 2 means never three at once.
    assert max_overlap([(t.create_time, t.end_time) for t in tuning_jobs]) <= 2


def test_invalid_dataset_is_rejected_with_a_report_and_its_lines(stack_env: dict[str, str]) -> None:
    run = uuid.uuid4().hex[:6]
    reader = CompletionReader(stack_env)
    body = dataset(2) + b"{not json\n" + b'{"contents": []}\n'
    try:
        job_ids = _upload(stack_env, [f"bad-{run}.jsonl"], body)
        events = reader.read_until(lambda got: any(e.attributes["ce-subject"] in job_ids for e in got), 60)
    finally:
        reader.close()
    (event,) = {e.attributes["ce-id"]: e for e in events if e.attributes["ce-subject"] in job_ids}.values()
    assert event.attributes["ce-type"] == "tunedrop.job.v1.rejected"
    assert event.data["state"] == "REJECTED"
    assert [(e["line"], e["code"]) for e in event.data["error"]["first_errors"]][:2] == [
        (3, "not_json"),
        (4, "missing_contents"),
    ]
    report = bucket(stack_env).blob(event.data["report_uri"].split("/", 3)[3]).download_as_bytes()
    assert b'"not_json"' in report
    # The user's object is never moved, changed or deleted.
    assert bucket(stack_env).blob(f"incoming/bad-{run}.jsonl").download_as_bytes() == body


def test_objects_outside_incoming_make_no_job_and_others_under_it_are_answered(stack_env: dict[str, str]) -> None:
    run = uuid.uuid4().hex[:6]
    reader = CompletionReader(stack_env)
    try:
        target = bucket(stack_env)
        notes = target.blob(f"incoming/notes-{run}.txt")
        notes.upload_from_string(b"hello")
        notes_job = job_id_for(stack_env["TUNEDROP_BUCKET"], notes.name, str(notes.generation))
        target.blob(f"elsewhere/x-{run}.jsonl").upload_from_string(dataset())
        marker = _upload(stack_env, [f"marker-{run}.jsonl"], dataset())
        wanted = {notes_job, *marker}
        events = reader.read_until(lambda got: wanted <= {e.attributes["ce-subject"] for e in got}, 60)
    finally:
        reader.close()
    by_subject = {e.attributes["ce-subject"]: e for e in events}
    assert set(by_subject) == wanted, "only objects under incoming/ became jobs"
    # What Tunedrop does not take is answered, not ignored: REJECTED, saying what it accepts.
    answer = by_subject[notes_job]
    assert answer.data["state"] == "REJECTED"
    assert answer.data["validation"]["error_counts"] == {"unsupported_object": 1}
