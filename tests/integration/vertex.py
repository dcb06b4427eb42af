"""An in-process Vertex AI emulator for integration tests, reached through the real client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.gen_ai_tuning_service.transports.grpc import (
    GenAiTuningServiceGrpcTransport,
)
from tunedrop_local.vertex_emulator import VertexEmulator, serve

from shared.adapters.vertex_tuning import VertexTuning


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
