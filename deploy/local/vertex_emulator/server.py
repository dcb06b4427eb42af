"""gRPC glue: the services the emulator answers on, and :func:`serve` to start them.

Implemented: GenAiTuningService's CreateTuningJob, GetTuningJob, ListTuningJobs and
CancelTuningJob; CountTokens on both PredictionService (where older clients call it) and
LlmUtilityService (where ``aiplatform_v1.LlmUtilityServiceClient.count_tokens`` calls it);
PredictionService's GenerateContent; EvaluationService's EvaluateInstances. Any other method of those
services answers UNIMPLEMENTED.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from typing import Any, Final

import grpc
from google.cloud import aiplatform_v1
from google.protobuf import empty_pb2
from grpc_status import rpc_status

from .errors import EmulatorError
from .service import VertexEmulator

log = logging.getLogger(__name__)

SERVICE_NAME: Final = "google.cloud.aiplatform.v1.GenAiTuningService"
PREDICTION_SERVICE_NAME: Final = "google.cloud.aiplatform.v1.PredictionService"
LLM_UTILITY_SERVICE_NAME: Final = "google.cloud.aiplatform.v1.LlmUtilityService"
EVALUATION_SERVICE_NAME: Final = "google.cloud.aiplatform.v1.EvaluationService"


class _Servicer:
    def __init__(self, emulator: VertexEmulator) -> None:
        self._emulator = emulator

    def _run(self, method: str, context: grpc.ServicerContext, target: dict[str, str], call: Callable[[], Any]) -> Any:
        """Run ``call``; turn an EmulatorError into a gRPC error. ``target`` is logged (job or parent)."""
        log.debug("call", extra={"method": method, **target})
        try:
            self._emulator.check_available(method)
            return call()
        except EmulatorError as err:
            log.warning(err.message, extra={"method": method, **target, "code": err.code.name})
            # Rich status so clients can read details (e.g. QuotaFailure) from grpc-status-details-bin.
            context.abort_with_status(rpc_status.to_status(err.to_status()))
            raise AssertionError("unreachable: abort_with_status raises") from err

    def create(self, request: aiplatform_v1.CreateTuningJobRequest, context: grpc.ServicerContext) -> Any:
        return self._run(
            "CreateTuningJob",
            context,
            {"parent": request.parent},
            lambda: self._emulator.create_tuning_job(request.parent, request.tuning_job),
        )

    def get(self, request: aiplatform_v1.GetTuningJobRequest, context: grpc.ServicerContext) -> Any:
        return self._run(
            "GetTuningJob", context, {"job": request.name}, lambda: self._emulator.get_tuning_job(request.name)
        )

    def list(self, request: aiplatform_v1.ListTuningJobsRequest, context: grpc.ServicerContext) -> Any:
        return self._run(
            "ListTuningJobs",
            context,
            {"parent": request.parent},
            lambda: self._emulator.list_tuning_jobs(
                request.parent, request.filter, request.page_size, request.page_token
            ),
        )

    def cancel(self, request: aiplatform_v1.CancelTuningJobRequest, context: grpc.ServicerContext) -> Any:
        def call() -> empty_pb2.Empty:
            self._emulator.cancel_tuning_job(request.name)
            return empty_pb2.Empty()

        return self._run("CancelTuningJob", context, {"job": request.name}, call)

    def count_tokens(self, request: aiplatform_v1.CountTokensRequest, context: grpc.ServicerContext) -> Any:
        return self._run(
            "CountTokens", context, {"endpoint": request.endpoint}, lambda: self._emulator.count_tokens(request)
        )

    def generate_content(self, request: aiplatform_v1.GenerateContentRequest, context: grpc.ServicerContext) -> Any:
        return self._run(
            "GenerateContent", context, {"model": request.model}, lambda: self._emulator.generate_content(request)
        )

    def evaluate_instances(self, request: aiplatform_v1.EvaluateInstancesRequest, context: grpc.ServicerContext) -> Any:
        return self._run(
            "EvaluateInstances",
            context,
            {"location": request.location},
            lambda: self._emulator.evaluate_instances(request),
        )


def _unary(
    behaviour: Callable[..., Any], request_type: Any, serialize: Callable[[Any], bytes]
) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=request_type.deserialize, response_serializer=serialize
    )


def _handlers(servicer: _Servicer) -> tuple[grpc.GenericRpcHandler, ...]:
    tuning_job = aiplatform_v1.TuningJob.serialize
    count_tokens = _unary(
        servicer.count_tokens, aiplatform_v1.CountTokensRequest, aiplatform_v1.CountTokensResponse.serialize
    )
    tuning = {
        "CreateTuningJob": _unary(servicer.create, aiplatform_v1.CreateTuningJobRequest, tuning_job),
        "GetTuningJob": _unary(servicer.get, aiplatform_v1.GetTuningJobRequest, tuning_job),
        "ListTuningJobs": _unary(
            servicer.list, aiplatform_v1.ListTuningJobsRequest, aiplatform_v1.ListTuningJobsResponse.serialize
        ),
        "CancelTuningJob": _unary(
            servicer.cancel, aiplatform_v1.CancelTuningJobRequest, empty_pb2.Empty.SerializeToString
        ),
    }
    prediction = {
        "CountTokens": count_tokens,
        "GenerateContent": _unary(
            servicer.generate_content,
            aiplatform_v1.GenerateContentRequest,
            aiplatform_v1.GenerateContentResponse.serialize,
        ),
    }
    evaluation = {
        "EvaluateInstances": _unary(
            servicer.evaluate_instances,
            aiplatform_v1.EvaluateInstancesRequest,
            aiplatform_v1.EvaluateInstancesResponse.serialize,
        )
    }
    return (
        grpc.method_handlers_generic_handler(SERVICE_NAME, tuning),
        grpc.method_handlers_generic_handler(PREDICTION_SERVICE_NAME, prediction),
        grpc.method_handlers_generic_handler(LLM_UTILITY_SERVICE_NAME, {"CountTokens": count_tokens}),
        grpc.method_handlers_generic_handler(EVALUATION_SERVICE_NAME, evaluation),
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    emulator: VertexEmulator | None = None,
    max_workers: int = 16,
) -> tuple[grpc.Server, int]:
    """Start the emulator on ``host:port`` (0 picks a free port); returns the server and bound port.

    Stop it with ``server.stop(grace)``.
    """
    state = emulator if emulator is not None else VertexEmulator()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="vertex-emulator"))
    server.add_generic_rpc_handlers(_handlers(_Servicer(state)))
    address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as err:
        raise RuntimeError(f"Vertex AI emulator could not bind {address}: {err}") from err
    if bound == 0:
        raise RuntimeError(f"Vertex AI emulator could not bind {address}")
    server.start()
    return server, bound
