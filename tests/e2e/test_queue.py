"""The quota-respecting queue end to end, each scenario on a stack with its own settings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from tests.e2e.helpers import list_tuning_jobs, max_overlap, tuning_client
from tests.e2e.scenarios import upload_burst
from tests.stackfixture import running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def quota_three_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    settings = {
        "TUNEDROP_QUOTA": "3",
        "TUNEDROP_EMULATOR_QUOTA": "10",
        "TUNEDROP_EMULATOR_JOB_SECONDS": "3",
        "TUNEDROP_POLL_SECONDS": "1",
        "TUNEDROP_LOCAL_DUPLICATE_UPLOADS": "1",  # every upload notification is delivered twice
    }
    with running_stack(tmp_path_factory.mktemp("quota3"), settings) as env:
        yield env


def test_forty_uploads_delivered_twice_run_once_each_within_quota_three(quota_three_env: dict[str, str]) -> None:
    result = upload_burst(quota_three_env, 40, label="forty")
    assert result.outcomes == Counter({"tunedrop.job.v1.succeeded": 40})
    assert result.vertex_jobs_per_dataset == Counter(dict.fromkeys(result.job_ids, 1))
    assert result.peak_overlap == 3


@pytest.fixture(scope="module")
def tight_vertex_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    settings = {
        "TUNEDROP_QUOTA": "3",
        "TUNEDROP_EMULATOR_QUOTA": "3",
        # Long enough that the burst is validated and dispatched while the hand-made job still runs.
        "TUNEDROP_EMULATOR_JOB_SECONDS": "8",
        "TUNEDROP_POLL_SECONDS": "1",
    }
    with running_stack(tmp_path_factory.mktemp("tight"), settings) as env:
        yield env


def test_a_job_started_by_hand_takes_a_slot_and_nothing_fails(tight_vertex_env: dict[str, str]) -> None:
    from google.cloud import aiplatform_v1

    env = tight_vertex_env
    parent = f"projects/{env['GOOGLE_CLOUD_PROJECT']}/locations/{env['TUNEDROP_REGION']}"
    by_hand = tuning_client(env).create_tuning_job(
        parent=parent,
        tuning_job=aiplatform_v1.TuningJob(
            base_model="gemini-2.5-flash",
            supervised_tuning_spec=aiplatform_v1.SupervisedTuningSpec(training_dataset_uri="gs://other/data.jsonl"),
            labels={"owner": "someone-else"},
        ),
    )
    result = upload_burst(env, 6, label="beside")
    assert result.outcomes == Counter({"tunedrop.job.v1.succeeded": 6}), "no job FAILS because of quota"
    (manual,) = [t for t in list_tuning_jobs(env) if t.name == by_hand.name]
    # Tunedrop's jobs clipped to the hand-made job's lifetime.
    window = [(max(s, manual.create_time), min(e, manual.end_time)) for s, e in result.intervals]
    during = [(s, e) for s, e in window if s < e]
    assert during, "the burst started while the hand-made job was running"
    assert max_overlap(during) <= 2, "while the hand-made job runs, Tunedrop holds at most two"
