"""What Tunedrop's Vertex AI adapter sends for issue 14's options, through the emulator over gRPC: description,
export_last_checkpoint_only and service account on the TuningJob, and a continuation naming the pre-tuned model
(and checkpoint) instead of a base model."""

from __future__ import annotations

import time

import pytest
from google.cloud import aiplatform_v1

from shared.ports import RemoteState, TuningRequest
from tests.integration.vertex import WatchedEmulator, vertex_emulator, vertex_tuning

pytestmark = pytest.mark.integration
TUNER = "tuner@itest-project.iam.gserviceaccount.com"


def request(job_id: str, **options: object) -> TuningRequest:
    return TuningRequest(
        job_id=job_id,
        attempt=1,
        base_model="gemini-3.5-flash",
        training_dataset_uri="gs://ds/tunedrop-staging/j/training-1.jsonl",
        hyper_parameters={"epochs": 2},
        **options,  # type: ignore[arg-type]
    )


def test_options_and_a_continuation_reach_vertex_ai() -> None:
    emulator = WatchedEmulator(quota=5, job_seconds=0.3, seed=7)
    with vertex_emulator(emulator) as host:
        tuning = vertex_tuning(host)
        first = tuning.create(
            request("first", description="v1", export_last_checkpoint_only=False, service_account=TUNER)
        )
        deadline = time.monotonic() + 30
        while tuning.get(first.name).state != RemoteState.SUCCEEDED and time.monotonic() < deadline:
            time.sleep(0.1)
        done = tuning.get(first.name)
        assert done.state == RemoteState.SUCCEEDED and done.tuned_model
        assert [c["checkpoint_id"] for c in done.checkpoints] == ["1", "2"]

        second = tuning.create(request("second", pre_tuned_model=done.tuned_model, pre_tuned_checkpoint="1"))

        sent: aiplatform_v1.TuningJob = emulator.get_tuning_job(first.name)
        assert (sent.description, sent.service_account) == ("v1", TUNER)
        assert sent.supervised_tuning_spec.export_last_checkpoint_only is False
        continued: aiplatform_v1.TuningJob = emulator.get_tuning_job(second.name)
        assert continued.base_model == ""  # one oneof with pre_tuned_model
        assert continued.pre_tuned_model.tuned_model_name == done.tuned_model
        assert continued.pre_tuned_model.checkpoint_id == "1"
        assert continued.pre_tuned_model.base_model == "gemini-3.5-flash"
