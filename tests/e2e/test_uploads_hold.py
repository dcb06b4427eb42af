"""End to end: what is tuned is exactly what was validated, and an upload whose notification was lost
still becomes a job."""

from __future__ import annotations

import uuid

import pytest
from google.cloud import aiplatform_v1
from tunedrop_local.vertex_emulator import JOB_SECONDS_LABEL

from shared.bootstrap import build_app
from shared.jobs import JobState, job_id_for
from tests.e2e.helpers import bucket, dataset, job_record, list_tuning_jobs, tuning_client, wait_for
from tests.e2e.stacks import stack_fixture
from tests.fakes import crc32c_of

pytestmark = pytest.mark.e2e


def _blocking_jobs(env: dict[str, str], count: int) -> list[str]:
    """Jobs made by hand that hold Tunedrop's slots until the test cancels them."""
    client = tuning_client(env)
    parent = f"projects/{env['GOOGLE_CLOUD_PROJECT']}/locations/{env['TUNEDROP_REGION']}"
    names = []
    for _ in range(count):
        made = client.create_tuning_job(
            parent=parent,
            tuning_job=aiplatform_v1.TuningJob(
                base_model="gemini-3.5-flash",
                supervised_tuning_spec={"training_dataset_uri": f"gs://{env['TUNEDROP_BUCKET']}/elsewhere.jsonl"},
                labels={JOB_SECONDS_LABEL: "600"},
            ),
        )
        names.append(made.name)
    return names


def test_a_dataset_overwritten_while_queued_and_while_running_is_tuned_as_validated(
    stack_env: dict[str, str],
) -> None:
    env = stack_env
    store = build_app().store
    blockers = _blocking_jobs(env, int(env["TUNEDROP_QUOTA"]))
    original = dataset(4)
    blob = bucket(env).blob(f"incoming/overwrite-{uuid.uuid4().hex[:6]}.jsonl")
    blob.upload_from_string(original)
    job_id = job_id_for(env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))
    try:

        def state() -> JobState | None:
            found = store.get(job_id)
            return found.value.state if found else None

        assert wait_for(lambda: state() is JobState.QUEUED, 60), job_record(env, job_id)
        blob.upload_from_string(b'{"contents": [{"role": "user", "parts": [{"text": "new, never validated"}]}]}\n')
    finally:
        for name in blockers:
            tuning_client(env).cancel_tuning_job(name=name)
    assert wait_for(lambda: state() in (JobState.RUNNING, JobState.SUCCEEDED), 60), job_record(env, job_id)
    # Overwritten again while its Vertex job runs.
    blob.upload_from_string(b"garbage\n")
    assert wait_for(lambda: state() is JobState.SUCCEEDED, 60), job_record(env, job_id)

    job = store.get(job_id)
    assert job is not None
    (tuning_job,) = [t for t in list_tuning_jobs(env) if t.labels.get("tunedrop_job") == job_id]
    given = tuning_job.supervised_tuning_spec.training_dataset_uri
    assert given == job.value.tuning_training_uri and given != f"gs://{env['TUNEDROP_BUCKET']}/{blob.name}"
    tuned_bytes = bucket(env).blob(given.split("/", 3)[3]).download_as_bytes()
    assert tuned_bytes == original
    assert crc32c_of(tuned_bytes) == job.value.training_crc32c


lost_notifications_env = stack_fixture(
    "lost",
    {
        "TUNEDROP_LOCAL_NOTIFICATIONS": "0",  # the bucket's notifications go nowhere
        "TUNEDROP_POLL_SECONDS": "1",
        "TUNEDROP_RECONCILE_GRACE_SECONDS": "1",
        "TUNEDROP_EMULATOR_JOB_SECONDS": "2",
    },
)


def test_an_upload_whose_notification_was_lost_gets_a_job(lost_notifications_env: dict[str, str]) -> None:
    env = lost_notifications_env
    store = build_app().store
    blob = bucket(env).blob("incoming/never-notified.jsonl")
    blob.upload_from_string(dataset(3))
    job_id = job_id_for(env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))
    # Grace (1 s) and two ticks (1 s each), with room for a slow machine.
    assert wait_for(lambda: store.get(job_id) is not None, 30), "no job for an upload nobody was told about"
    assert wait_for(lambda: (found := store.get(job_id)) is not None and found.value.state is JobState.SUCCEEDED, 60), (
        job_record(env, job_id)
    )
