"""An emulator for the Vertex AI ``GenAiTuningService`` (v1), served over insecure gRPC, with the other
calls Tunedrop makes: CountTokens, GenerateContent and EvaluateInstances.

Google ships no emulator for Vertex AI tuning, so the local stack uses this one. It speaks the
real wire protocol, so the real ``google.cloud.aiplatform_v1.GenAiTuningServiceClient`` works
against it unchanged:

    channel = grpc.insecure_channel("127.0.0.1:PORT")
    transport = GenAiTuningServiceGrpcTransport(channel=channel)
    client = aiplatform_v1.GenAiTuningServiceClient(transport=transport)

Run standalone with ``python -m tunedrop_local.vertex_emulator --host 127.0.0.1 --port 8089``.

The modules, each one concern:

* :mod:`.config`: the knobs (quota and quota mode, job duration, failure and unavailability rates,
  dropped examples, seed), from constructor arguments or ``TUNEDROP_EMULATOR_*`` variables.
* :mod:`.service`: :class:`VertexEmulator`, the state and the semantics of every RPC, and the quota
  (refuse beyond it, or hold jobs PENDING until a slot frees).
* :mod:`.state`: a tuning job's record and its timeline (PENDING, RUNNING, SUCCEEDED/FAILED on a
  simulated clock; CANCELLED on request), its statistics and its tuned model.
* :mod:`.checkpoints`, :mod:`.evaluation`, :mod:`.continuous`: checkpoints per epoch, evaluation of each
  checkpoint during tuning, and continuous tuning from a model an earlier job tuned.
* :mod:`.validation`, :mod:`.names`, :mod:`.filters`, :mod:`.paging`: what a request may say.
* :mod:`.tokens`: CountTokens with a deterministic approximation of Gemini's tokenizer.
* :mod:`.generate`, :mod:`.answers`, :mod:`.training`: GenerateContent on publisher models and tuned
  endpoints; a tuned model answers like its training data (read once from the storage emulator), a base
  model generically (pure rules, shared with the in-memory fakes).
* :mod:`.evaluate_instances`, :mod:`.scores`: EvaluateInstances with exact match, BLEU, ROUGE and a pairwise
  metric (the emulator's own simple implementations, shared with the in-memory fakes).
* :mod:`.server`: the gRPC services and :func:`serve`; :mod:`.__main__`: the command line.

A label ``tunedrop_emulator_job_seconds`` on a created job (a whole number of seconds) overrides
that job's duration, so a test can start one long job by hand beside short ones; a label
``tunedrop_emulator_dropped_examples`` sets how many of its examples are reported dropped. Labels
``emulator_quality`` and ``emulator_noise`` (percents) set how its tuned model answers GenerateContent.

The detail state some SDKs document (``tuning_job_state``: WAITING_FOR_QUOTA, PROCESSING_DATASET, ...)
has no field in ``aiplatform_v1`` 2.7's TuningJob (nor in ``aiplatform_v1beta1``'s), so the emulator
cannot send it over v1: a job waiting for quota is JOB_STATE_PENDING without a start time.
"""

from __future__ import annotations

from .config import ConfigError, EmulatorConfig
from .errors import EmulatorError
from .names import project_number
from .server import (
    EVALUATION_SERVICE_NAME,
    LLM_UTILITY_SERVICE_NAME,
    PREDICTION_SERVICE_NAME,
    SERVICE_NAME,
    serve,
)
from .service import API_SERVICE, QUOTA_METRIC, VertexEmulator
from .tokens import TOKENS_PER_FILE, approximate_tokens
from .validation import DROPPED_EXAMPLES_LABEL, JOB_SECONDS_LABEL, NOISE_LABEL, QUALITY_LABEL

__all__ = [
    "API_SERVICE",
    "DROPPED_EXAMPLES_LABEL",
    "EVALUATION_SERVICE_NAME",
    "JOB_SECONDS_LABEL",
    "LLM_UTILITY_SERVICE_NAME",
    "NOISE_LABEL",
    "PREDICTION_SERVICE_NAME",
    "QUALITY_LABEL",
    "QUOTA_METRIC",
    "SERVICE_NAME",
    "TOKENS_PER_FILE",
    "ConfigError",
    "EmulatorConfig",
    "EmulatorError",
    "VertexEmulator",
    "approximate_tokens",
    "project_number",
    "serve",
]
