"""An in-process Vertex AI emulator for integration tests, reached through the real client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.gen_ai_tuning_service.transports.grpc import (
    GenAiTuningServiceGrpcTransport,
)
from tunedrop_local.vertex_emulator import VertexEmulator, project_number, serve

from shared.adapters.vertex_tuning import VertexTuning

PROJECT = "tunedrop-dev"
NUMBER = project_number(PROJECT)
PARENT = f"projects/{PROJECT}/locations/us-central1"


class FakeClock:
    """Simulated time for an emulator: tests advance it instead of sleeping."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def tuning_job(**overrides: Any) -> aiplatform_v1.TuningJob:
    """A valid TuningJob to create, with ``overrides`` on top."""
    fields: dict[str, Any] = {
        "base_model": "gemini-3.5-flash",
        "supervised_tuning_spec": {"training_dataset_uri": "gs://tunedrop-in/train.jsonl"},
    }
    fields.update(overrides)
    return aiplatform_v1.TuningJob(**fields)


def evaluation_config() -> dict[str, Any]:
    """A valid supervised_tuning_spec.evaluation_config: a pointwise metric with two aggregations, then BLEU."""
    return {
        "metrics": [
            {
                "pointwise_metric_spec": {"metric_prompt_template": "Rate the fluency of {response} from 1 to 5."},
                "aggregation_metrics": ["AVERAGE", "STANDARD_DEVIATION"],
            },
            {"bleu_spec": {}, "aggregation_metrics": ["AVERAGE"]},
        ],
        "output_config": {"gcs_destination": {"output_uri_prefix": "gs://tunedrop-out/reports/job-1/evaluation/"}},
        "autorater_config": {"sampling_count": 4},
    }


# mypy cannot follow the editable install's mapping of tunedrop_local to deploy/local, so it sees Any here.
class WatchedEmulator(VertexEmulator):  # type: ignore[misc]
    """Remembers the most jobs ever active right after a create: the overlap Vertex AI saw."""

    peak_active = 0

    def create_tuning_job(self, parent: str, tuning_job: aiplatform_v1.TuningJob) -> aiplatform_v1.TuningJob:
        created: aiplatform_v1.TuningJob = super().create_tuning_job(parent, tuning_job)
        self.peak_active = max(self.peak_active, self.active_job_count())
        return created


@contextmanager
def vertex_emulator(emulator: VertexEmulator) -> Iterator[str]:
    server, port = serve(port=0, emulator=emulator)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def vertex_tuning(host: str, project: str = "itest", region: str = "us-central1") -> VertexTuning:
    client = aiplatform_v1.GenAiTuningServiceClient(
        transport=GenAiTuningServiceGrpcTransport(channel=grpc.insecure_channel(host))
    )
    return VertexTuning(lambda _region: client, project, region)
