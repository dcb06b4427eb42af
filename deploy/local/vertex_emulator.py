"""An emulator for the Vertex AI ``GenAiTuningService`` (v1), served over insecure gRPC.

Google ships no emulator for Vertex AI tuning, so the local stack uses this one. It speaks the
real wire protocol, so the real ``google.cloud.aiplatform_v1.GenAiTuningServiceClient`` works
against it unchanged:

    channel = grpc.insecure_channel("127.0.0.1:PORT")
    transport = GenAiTuningServiceGrpcTransport(channel=channel)
    client = aiplatform_v1.GenAiTuningServiceClient(transport=transport)

Implemented RPCs: CreateTuningJob, GetTuningJob, ListTuningJobs, CancelTuningJob. Anything else
(e.g. RebaseTunedModel) answers UNIMPLEMENTED.

The same server also answers CountTokens, so that the dataset validator can count tokens
locally: as ``google.cloud.aiplatform.v1.PredictionService/CountTokens`` (where older clients call
it) and as ``google.cloud.aiplatform.v1.LlmUtilityService/CountTokens`` (where the installed
``aiplatform_v1.LlmUtilityServiceClient.count_tokens`` calls it). It does not have Gemini's tokenizer; it uses a
deterministic approximation (see :func:`approximate_tokens`): each run of word characters costs
one token per started 5 characters, every other non-space character one token, and each
``fileData`` part 258 tokens (Gemini's figure for one image). Like the real tokenizer it never
gives more tokens than the text has UTF-8 bytes. Other RPCs of those services answer UNIMPLEMENTED.

Job states are computed lazily from an injectable clock, so tests drive simulated time instead
of sleeping: PENDING at create, RUNNING after ``min(10% of job_seconds, 1 s)``, and SUCCEEDED
(or FAILED for a seeded share of jobs) at ``create + job_seconds``.

Knobs (constructor arguments override the environment):

* ``TUNEDROP_EMULATOR_QUOTA``: concurrent jobs allowed across everything served
  (default: ``TUNEDROP_QUOTA``, else 1).
* ``TUNEDROP_EMULATOR_JOB_SECONDS``: seconds from create to terminal state (default 5).
* ``TUNEDROP_EMULATOR_FAIL_RATE``: share of jobs that end FAILED (default 0).
* ``TUNEDROP_EMULATOR_UNAVAILABLE_RATE``: share of calls answered UNAVAILABLE (default 0).
* ``TUNEDROP_EMULATOR_SEED``: seed for ids, failures and unavailability (default 0).

One knob is per job: a label ``tunedrop_emulator_job_seconds`` on the created job (a whole number
of seconds) overrides the job's duration, so a test can start one long job by hand beside short
ones. The real service has no such label; it is kept on the job like any other.

Run standalone with ``python -m tunedrop_local.vertex_emulator --host 127.0.0.1 --port 8089``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import os
import random
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from types import FrameType
from typing import Any, Final

import grpc
from google.cloud import aiplatform_v1
from google.protobuf import any_pb2, empty_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from shared.validation.registry import ModelStatus, registry

__all__ = [
    "API_SERVICE",
    "JOB_SECONDS_LABEL",
    "LLM_UTILITY_SERVICE_NAME",
    "PREDICTION_SERVICE_NAME",
    "QUOTA_METRIC",
    "SERVICE_NAME",
    "ConfigError",
    "EmulatorError",
    "VertexEmulator",
    "approximate_tokens",
    "main",
    "project_number",
    "serve",
]

SERVICE_NAME: Final = "google.cloud.aiplatform.v1.GenAiTuningService"
PREDICTION_SERVICE_NAME: Final = "google.cloud.aiplatform.v1.PredictionService"
LLM_UTILITY_SERVICE_NAME: Final = "google.cloud.aiplatform.v1.LlmUtilityService"
API_SERVICE: Final = "aiplatform.googleapis.com"
# The real quota is global across regions (one counter per project, not per location).
QUOTA_METRIC: Final = "aiplatform.googleapis.com/global_concurrent_tuning_jobs"

DEFAULT_PORT: Final = 8089
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000

JOB_SECONDS_LABEL: Final = "tunedrop_emulator_job_seconds"

_LOGGER_NAME: Final = "tunedrop_local.vertex_emulator"  # not __name__: that is "__main__" under -m
log = logging.getLogger(_LOGGER_NAME)

JobState = aiplatform_v1.JobState
# States that hold a slot of the concurrent-jobs quota.
ACTIVE_STATES: Final = frozenset(
    {
        JobState.JOB_STATE_QUEUED,
        JobState.JOB_STATE_PENDING,
        JobState.JOB_STATE_RUNNING,
        JobState.JOB_STATE_CANCELLING,
    }
)
TERMINAL_STATES: Final = frozenset(
    {
        JobState.JOB_STATE_SUCCEEDED,
        JobState.JOB_STATE_FAILED,
        JobState.JOB_STATE_CANCELLED,
        JobState.JOB_STATE_EXPIRED,
    }
)

# Fields the server owns; whatever a client sends in them is dropped, as the real service does.
_OUTPUT_ONLY_FIELDS: Final = (
    "name",
    "state",
    "create_time",
    "start_time",
    "end_time",
    "update_time",
    "error",
    "experiment",
    "tuned_model",
    "tuning_data_stats",
    "evaluate_dataset_runs",
)

_PARENT_RE: Final = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)$")
_NAME_RE: Final = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/tuningJobs/(?P<job>[^/]+)$")
_MODEL_RE: Final = re.compile(r"^projects/[^/]+/locations/[^/]+/(publishers/[^/]+/models/[^/]+|endpoints/[^/]+)$")
_WORD_RE: Final = re.compile(r"\w+|[^\w\s]")
TOKENS_PER_FILE: Final = 258  # Gemini's token count for one image up to 384x384 px
CHARS_PER_WORD_TOKEN: Final = 5


def approximate_tokens(text: str) -> int:
    """Deterministic stand-in for Gemini's tokenizer: at most one token per UTF-8 byte."""
    return sum(
        -(-len(m) // CHARS_PER_WORD_TOKEN) if m[0].isalnum() or m[0] == "_" else 1 for m in _WORD_RE.findall(text)
    )


class ConfigError(ValueError):
    """A knob (environment variable or constructor argument) has an invalid value."""


class EmulatorError(Exception):
    """A request failed; carries the gRPC code, message and rich-status details to send back."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Sequence[Message] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = tuple(details)

    def to_status(self) -> status_pb2.Status:
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        for detail in self.details:
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        return status


def project_number(project: str) -> str:
    """The stable 12-digit project number the emulator uses for ``project`` (an id or a number).

    Real project ids must start with a letter, so an all-digit value is already a number.
    """
    if project.isdigit():
        return project
    digest = hashlib.sha256(project.encode("utf-8")).digest()
    return str(10**11 + int.from_bytes(digest[:8], "big") % (9 * 10**11))


# --------------------------------------------------------------------------------------------
# Knobs


def _pick(arg_name: str, arg: object, env: Mapping[str, str], names: Sequence[str]) -> tuple[str, object] | None:
    """(source, raw value) from the argument if given, else the first non-empty env var."""
    if arg is not None:
        return arg_name, arg
    for name in names:
        raw = env.get(name, "").strip()
        if raw:
            return name, raw
    return None


def _as_int(source: str, raw: object, minimum: int | None) -> int:
    value: int | None = None
    if isinstance(raw, bool):
        pass  # bool is an int subclass, but True is no sensible quota or seed
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, str):
        with contextlib.suppress(ValueError):
            value = int(raw)
    if value is None:
        raise ConfigError(f"{source} must be an integer, got {raw!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{source} must be >= {minimum}, got {value}")
    return value


def _as_float(source: str, raw: object, lo: float, hi: float | None) -> float:
    value: float | None = None
    if isinstance(raw, bool):
        pass
    elif isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        with contextlib.suppress(ValueError):
            value = float(raw)
    if value is None:
        raise ConfigError(f"{source} must be a number, got {raw!r}")
    if not math.isfinite(value) or value < lo or (hi is not None and value > hi):
        bound = f"between {lo:g} and {hi:g}" if hi is not None else f">= {lo:g}"
        raise ConfigError(f"{source} must be {bound}, got {raw!r}")
    return value


@dataclasses.dataclass(frozen=True)
class EmulatorConfig:
    quota: int
    job_seconds: float
    fail_rate: float
    unavailable_rate: float
    seed: int

    @classmethod
    def resolve(
        cls,
        *,
        quota: int | None,
        job_seconds: float | None,
        fail_rate: float | None,
        unavailable_rate: float | None,
        seed: int | None,
        env: Mapping[str, str],
    ) -> EmulatorConfig:
        picked = _pick("quota", quota, env, ("TUNEDROP_EMULATOR_QUOTA", "TUNEDROP_QUOTA"))
        q = _as_int(*picked, minimum=0) if picked else 1
        picked = _pick("job_seconds", job_seconds, env, ("TUNEDROP_EMULATOR_JOB_SECONDS",))
        secs = _as_float(*picked, lo=0.0, hi=None) if picked else 5.0
        picked = _pick("fail_rate", fail_rate, env, ("TUNEDROP_EMULATOR_FAIL_RATE",))
        fail = _as_float(*picked, lo=0.0, hi=1.0) if picked else 0.0
        picked = _pick("unavailable_rate", unavailable_rate, env, ("TUNEDROP_EMULATOR_UNAVAILABLE_RATE",))
        unavailable = _as_float(*picked, lo=0.0, hi=1.0) if picked else 0.0
        picked = _pick("seed", seed, env, ("TUNEDROP_EMULATOR_SEED",))
        sd = _as_int(*picked, minimum=None) if picked else 0
        return cls(quota=q, job_seconds=secs, fail_rate=fail, unavailable_rate=unavailable, seed=sd)


# --------------------------------------------------------------------------------------------
# List filters


@dataclasses.dataclass(frozen=True)
class _Term:
    field: str  # "state", "create_time" or "labels.<key>"
    op: str
    value: str


_TERM_RE: Final = re.compile(
    r"""\s*(?P<field>labels\.[^\s=!<>:"]+|state|create_time|createTime)\s*
        (?P<op>!=|>=|<=|=|:|<|>)\s*
        (?P<value>"(?:[^"\\]|\\.)*"|[^\s"()]+)\s*""",
    re.VERBOSE,
)
_AND_RE: Final = re.compile(r"AND(?:\s+|$)")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _parse_rfc3339(value: str) -> int:
    """Microseconds since the epoch; the real service requires RFC 3339 for create_time."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise EmulatorError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f'create_time must be an RFC 3339 timestamp such as "2025-05-18T00:00:00Z", got {value!r}.',
        ) from None
    if parsed.tzinfo is None:
        raise EmulatorError(grpc.StatusCode.INVALID_ARGUMENT, f"create_time {value!r} lacks a UTC offset (use ...Z).")
    delta = parsed - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _parse_filter(text: str) -> list[_Term]:
    """Parse the subset of AIP-160 the emulator supports: terms joined by AND.

    Terms: ``labels.KEY="VALUE"``, ``labels.KEY!="VALUE"``, ``labels.KEY:*``,
    ``state=JOB_STATE_X``, ``state!=JOB_STATE_X`` and ``create_time<op>"RFC3339"``.
    """
    supported = (
        'supported: labels.KEY="VALUE", labels.KEY!="VALUE", labels.KEY:*, state=JOB_STATE_X, '
        'state!=JOB_STATE_X, create_time>="RFC3339" (also =, !=, <, <=, >), joined with AND'
    )
    terms: list[_Term] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TERM_RE.match(text, pos)
        if match is None:
            raise EmulatorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Unsupported filter {text!r} at position {pos}; {supported}.",
            )
        field = "create_time" if match["field"] == "createTime" else match["field"]
        term = _Term(field=field, op=match["op"], value=_unquote(match["value"]))
        _check_term(term, text, supported)
        terms.append(term)
        pos = match.end()
        if pos < len(text):
            joiner = _AND_RE.match(text, pos)
            if joiner is None or joiner.end() == len(text):
                raise EmulatorError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Unsupported filter {text!r} at position {pos}; {supported}.",
                )
            pos = joiner.end()
    return terms


def _check_term(term: _Term, text: str, supported: str) -> None:
    bad = EmulatorError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Unsupported filter term {term.field}{term.op}{term.value!r} in {text!r}; {supported}.",
    )
    if term.field == "state":
        if term.op not in ("=", "!="):
            raise bad
        if term.value not in JobState.__members__:
            raise EmulatorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Unknown job state {term.value!r} in filter {text!r}; expected e.g. JOB_STATE_RUNNING.",
            )
    elif term.field == "create_time":
        if term.op == ":":
            raise bad
        _parse_rfc3339(term.value)
    elif term.op not in ("=", "!=", ":") or (term.op == ":" and term.value != "*"):
        raise bad


def _matches(pb: Any, terms: Sequence[_Term]) -> bool:
    for term in terms:
        if term.field == "state":
            equal = pb.state == JobState.__members__[term.value]
            ok = equal if term.op == "=" else not equal
        elif term.field == "create_time":
            left, right = pb.create_time.ToMicroseconds(), _parse_rfc3339(term.value)
            ok = {
                "=": left == right,
                "!=": left != right,
                "<": left < right,
                "<=": left <= right,
                ">": left > right,
                ">=": left >= right,
            }[term.op]
        else:
            key = term.field.removeprefix("labels.")
            if term.op == ":":
                ok = key in pb.labels
            elif term.op == "=":
                ok = pb.labels.get(key) == term.value
            else:
                ok = pb.labels.get(key) != term.value
        if not ok:
            return False
    return True


# --------------------------------------------------------------------------------------------
# State


@dataclasses.dataclass
class _Job:
    seq: int  # creation order; lists sort on it and page tokens point at it
    number: str
    location: str
    job_id: str
    pb: Any  # the raw protobuf TuningJob, the single source of truth served to clients
    running_at: float
    terminal_at: float
    fails: bool
    model_id: str
    endpoint_id: str
    cancelled_at: float | None = None


def _set_time(field: Any, seconds: float) -> None:
    # The real API reports microsecond precision.
    field.FromMicroseconds(round(seconds * 1_000_000))


def _state_name(state: int) -> str:
    return str(JobState(state).name)


class VertexEmulator:
    """In-memory state of the emulated GenAiTuningService; thread-safe behind one lock.

    Methods take and return the proto-plus types of ``google.cloud.aiplatform_v1`` and raise
    :class:`EmulatorError` for anything the real service would reject.
    """

    def __init__(
        self,
        *,
        quota: int | None = None,
        job_seconds: float | None = None,
        fail_rate: float | None = None,
        unavailable_rate: float | None = None,
        seed: int | None = None,
        clock: Callable[[], float] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = EmulatorConfig.resolve(
            quota=quota,
            job_seconds=job_seconds,
            fail_rate=fail_rate,
            unavailable_rate=unavailable_rate,
            seed=seed,
            env=os.environ if env is None else env,
        )
        self._clock = clock or time.time
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str, str], _Job] = {}
        self._seq = 0
        # Separate streams so that, e.g., turning on unavailability doesn't change job ids.
        seed_value = self.config.seed
        self._id_rng = random.Random(f"{seed_value}:ids")
        self._fail_rng = random.Random(f"{seed_value}:failures")
        self._unavailable_rng = random.Random(f"{seed_value}:unavailable")

    # ---- knobs, read-only

    @property
    def quota(self) -> int:
        return self.config.quota

    @property
    def job_seconds(self) -> float:
        return self.config.job_seconds

    # ---- RPCs

    def check_available(self, method: str) -> None:
        """Raise UNAVAILABLE for a seeded share of calls, before the call does anything."""
        if self.config.unavailable_rate <= 0:
            return
        with self._lock:
            hit = self._unavailable_rng.random() < self.config.unavailable_rate
        if hit:
            raise EmulatorError(grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable.")

    def create_tuning_job(self, parent: str, tuning_job: aiplatform_v1.TuningJob) -> aiplatform_v1.TuningJob:
        project, location = self._parse_parent(parent)
        number = project_number(project)
        src = aiplatform_v1.TuningJob.pb(tuning_job)
        self._validate(src)
        self._check_base_model(src.base_model, number, location)
        secs = self._job_seconds(src)
        with self._lock:
            now = self._clock()
            self._refresh_all(now)
            active = sum(1 for job in self._jobs.values() if job.pb.state in ACTIVE_STATES)
            if active >= self.config.quota:
                raise self._quota_error(number, active)
            job_id = self._new_id()
            pb = type(src)()
            pb.CopyFrom(src)
            for field in _OUTPUT_ONLY_FIELDS:
                pb.ClearField(field)
            pb.name = f"projects/{number}/locations/{location}/tuningJobs/{job_id}"
            pb.state = JobState.JOB_STATE_PENDING
            _set_time(pb.create_time, now)
            _set_time(pb.update_time, now)
            self._seq += 1
            job = _Job(
                seq=self._seq,
                number=number,
                location=location,
                job_id=job_id,
                pb=pb,
                running_at=now + min(0.1 * secs, 1.0),
                terminal_at=now + secs,
                # random() < 1.0 always holds, so a rate of 1 fails every job.
                fails=self._fail_rng.random() < self.config.fail_rate,
                model_id=self._new_id(),
                endpoint_id=self._new_id(),
            )
            self._jobs[(number, location, job_id)] = job
            log.info(
                "tuning job created",
                extra={
                    "method": "CreateTuningJob",
                    "job": pb.name,
                    "state": "JOB_STATE_PENDING",
                    "base_model": pb.base_model,
                    "active_jobs": active + 1,
                    "quota": self.config.quota,
                },
            )
            return self._snapshot(job)

    def get_tuning_job(self, name: str) -> aiplatform_v1.TuningJob:
        key = self._parse_name(name)
        with self._lock:
            job = self._lookup(key, name)
            self._refresh(job, self._clock())
            return self._snapshot(job)

    def list_tuning_jobs(
        self, parent: str, filter: str = "", page_size: int = 0, page_token: str = ""
    ) -> aiplatform_v1.ListTuningJobsResponse:
        project, location = self._parse_parent(parent)
        number = project_number(project)
        terms = _parse_filter(filter)
        if page_size < 0:
            raise EmulatorError(grpc.StatusCode.INVALID_ARGUMENT, f"page_size must be >= 0, got {page_size}.")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        # Tokens are bound to the query so a token from another parent or filter is rejected.
        fingerprint = hashlib.sha256(f"{number}/{location}|{filter}".encode()).hexdigest()[:16]
        before = self._decode_token(page_token, fingerprint) if page_token else None
        with self._lock:
            now = self._clock()
            scoped = sorted(
                (j for j in self._jobs.values() if j.number == number and j.location == location),
                key=lambda j: j.seq,
                reverse=True,  # newest first
            )
            page: list[_Job] = []
            more = False
            for job in scoped:
                if before is not None and job.seq >= before:
                    continue
                self._refresh(job, now)
                if not _matches(job.pb, terms):
                    continue
                if len(page) == size:
                    more = True
                    break
                page.append(job)
            response = aiplatform_v1.ListTuningJobsResponse(
                tuning_jobs=[self._snapshot(job) for job in page],
                next_page_token=self._encode_token(page[-1].seq, fingerprint) if more else "",
            )
            return response

    def cancel_tuning_job(self, name: str) -> None:
        key = self._parse_name(name)
        with self._lock:
            job = self._lookup(key, name)
            now = self._clock()
            self._refresh(job, now)
            state = job.pb.state
            if state in TERMINAL_STATES:
                raise EmulatorError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Cannot cancel TuningJob {job.pb.name}: it is already in terminal state {_state_name(state)}.",
                )
            job.cancelled_at = now
            job.pb.state = JobState.JOB_STATE_CANCELLED
            _set_time(job.pb.end_time, now)
            _set_time(job.pb.update_time, now)
            # The documented contract: a cancelled job carries error.code 1 (Code.CANCELLED).
            job.pb.error.code = code_pb2.CANCELLED
            job.pb.error.message = "The tuning job was cancelled."
            log.info(
                "tuning job cancelled",
                extra={
                    "method": "CancelTuningJob",
                    "job": job.pb.name,
                    "previous_state": _state_name(state),
                    "state": "JOB_STATE_CANCELLED",
                },
            )

    def count_tokens(self, request: aiplatform_v1.CountTokensRequest) -> aiplatform_v1.CountTokensResponse:
        target = request.endpoint or request.model
        if not _MODEL_RE.match(target):
            raise EmulatorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid endpoint {target!r}: expected projects/{{project}}/locations/{{location}}/publishers/google/"
                "models/{model}.",
            )
        if not request.contents:
            raise EmulatorError(grpc.StatusCode.INVALID_ARGUMENT, "contents is required: give at least one Content.")
        turns = list(request.contents)
        if request.system_instruction.parts:
            turns.append(request.system_instruction)
        tokens = 0
        characters = 0
        for turn in turns:
            for part in turn.parts:
                if part.text:
                    tokens += approximate_tokens(part.text)
                    characters += sum(1 for c in part.text if not c.isspace())
                elif part.file_data.file_uri:
                    tokens += TOKENS_PER_FILE
                elif part.function_call.name or part.function_response.name:
                    call = part.function_call if part.function_call.name else part.function_response
                    tokens += approximate_tokens(call.name) + 1
        return aiplatform_v1.CountTokensResponse(total_tokens=tokens, total_billable_characters=characters)

    # ---- helpers for tests and operators

    def active_job_count(self) -> int:
        """Jobs currently holding a quota slot, at the clock's current time."""
        with self._lock:
            self._refresh_all(self._clock())
            return sum(1 for job in self._jobs.values() if job.pb.state in ACTIVE_STATES)

    # ---- internals (callers hold the lock where noted)

    @staticmethod
    def _parse_parent(parent: str) -> tuple[str, str]:
        match = _PARENT_RE.match(parent)
        if match is None:
            raise EmulatorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid parent {parent!r}: expected projects/{{project}}/locations/{{location}}.",
            )
        return match["project"], match["location"]

    @staticmethod
    def _parse_name(name: str) -> tuple[str, str, str]:
        match = _NAME_RE.match(name)
        if match is None:
            raise EmulatorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid TuningJob name {name!r}: expected "
                "projects/{project}/locations/{location}/tuningJobs/{tuning_job}.",
            )
        return project_number(match["project"]), match["location"], match["job"]

    def _lookup(self, key: tuple[str, str, str], name: str) -> _Job:
        job = self._jobs.get(key)
        if job is None:
            raise EmulatorError(grpc.StatusCode.NOT_FOUND, f"TuningJob {name} not found.")
        return job

    @staticmethod
    def _validate(pb: Any) -> None:
        def invalid(message: str) -> EmulatorError:
            return EmulatorError(grpc.StatusCode.INVALID_ARGUMENT, message)

        if not pb.base_model:
            if pb.HasField("pre_tuned_model"):
                raise invalid("tuning_job.pre_tuned_model (continuous tuning) is not supported by the emulator.")
            raise invalid("tuning_job.base_model is required, e.g. gemini-3.5-flash.")
        if not pb.HasField("supervised_tuning_spec"):
            raise invalid("tuning_job.supervised_tuning_spec is required.")
        spec = pb.supervised_tuning_spec
        if not spec.training_dataset_uri:
            raise invalid("tuning_job.supervised_tuning_spec.training_dataset_uri is required.")
        for field in ("training_dataset_uri", "validation_dataset_uri"):
            uri = getattr(spec, field)
            if uri and (not uri.startswith("gs://") or len(uri) <= len("gs://")):
                raise invalid(
                    f"tuning_job.supervised_tuning_spec.{field} must be a Cloud Storage URI "
                    f"(gs://bucket/path.jsonl), got {uri!r}."
                )
        hp = spec.hyper_parameters
        if hp.epoch_count < 0:
            raise invalid(f"hyper_parameters.epoch_count must be positive, got {hp.epoch_count}.")
        if hp.learning_rate_multiplier < 0:
            raise invalid(
                f"hyper_parameters.learning_rate_multiplier must be positive, got {hp.learning_rate_multiplier}."
            )
        if len(pb.tuned_model_display_name) > 128:
            raise invalid("tuning_job.tuned_model_display_name must be at most 128 characters.")
        _validate_labels(dict(pb.labels))

    def _check_base_model(self, base_model: str, number: str, location: str) -> None:
        """Refuse a base model that cannot be tuned today, as the real service does.

        A retired model answers NOT_FOUND with the "Publisher Model ... was not found" wording Vertex AI
        gives for retired model ids (the model-versions page: requests naming a retired model return 404;
        googlecodelabs/feedback#1881 shows the text). No public source shows the answer for a model whose
        new tuning is blocked (the month before retirement) or for an unknown model: INVALID_ARGUMENT naming it.
        """
        spec = registry().resolve(base_model)
        if spec is None:
            raise EmulatorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Base model {base_model} is not supported for supervised tuning.",
            )
        today = dt.datetime.fromtimestamp(self._clock(), dt.UTC).date()
        status = spec.status(today)
        if status is ModelStatus.RETIRED:
            raise EmulatorError(
                grpc.StatusCode.NOT_FOUND,
                f"Publisher Model `projects/{number}/locations/{location}/publishers/google/models/{spec.name}` "
                "was not found or your project does not have access to it. Please ensure you are using a valid "
                "model version.",
            )
        if status is ModelStatus.TUNING_CLOSED:
            raise EmulatorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Base model {spec.name} is no longer available for new tuning jobs: it retires on "
                f"{spec.lifecycle.retires}.",
            )

    def _job_seconds(self, pb: Any) -> float:
        """The job's duration: its JOB_SECONDS_LABEL when present, else the configured one."""
        raw = pb.labels.get(JOB_SECONDS_LABEL)
        if raw is None:
            return self.config.job_seconds
        if not raw.isdigit() or int(raw) == 0:
            raise EmulatorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Label {JOB_SECONDS_LABEL} must be a whole number of seconds above 0, got {raw!r}.",
            )
        return float(raw)

    def _quota_error(self, number: str, active: int) -> EmulatorError:
        quota = self.config.quota
        violation = error_details_pb2.QuotaFailure.Violation(
            subject=f"projects/{number}",
            description=(
                f"Quota exceeded for {QUOTA_METRIC}: limit {quota} concurrent tuning job(s), "
                f"{active} already PENDING/QUEUED/RUNNING/CANCELLING across all locations."
            ),
            api_service=API_SERVICE,
            quota_metric=QUOTA_METRIC,
            quota_value=quota,
        )
        return EmulatorError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"The following quota metrics exceed quota limits: {QUOTA_METRIC}",
            [error_details_pb2.QuotaFailure(violations=[violation])],
        )

    def _new_id(self) -> str:
        # Real ids are positive int64s rendered as 19 digits.
        taken = {job.job_id for job in self._jobs.values()}
        while True:
            candidate = str(self._id_rng.randrange(10**18, 2**63))
            if candidate not in taken:
                return candidate

    def _refresh_all(self, now: float) -> None:
        for job in self._jobs.values():
            self._refresh(job, now)

    def _refresh(self, job: _Job, now: float) -> None:
        """Bring ``job.pb`` up to date with simulated time ``now``. Caller holds the lock."""
        if job.cancelled_at is not None:
            return
        pb = job.pb
        previous = pb.state
        if now >= job.terminal_at:
            target = JobState.JOB_STATE_FAILED if job.fails else JobState.JOB_STATE_SUCCEEDED
        elif now >= job.running_at:
            target = JobState.JOB_STATE_RUNNING
        else:
            target = JobState.JOB_STATE_PENDING
        if target == previous:
            return
        # A poll may skip RUNNING entirely; still record when it would have started.
        if target != JobState.JOB_STATE_PENDING and not pb.HasField("start_time"):
            _set_time(pb.start_time, job.running_at)
            _fill_stats(pb, job.job_id)
            _set_time(pb.update_time, job.running_at)
        if target == JobState.JOB_STATE_SUCCEEDED:
            prefix = f"projects/{job.number}/locations/{job.location}"
            pb.tuned_model.model = f"{prefix}/models/{job.model_id}@1"
            pb.tuned_model.endpoint = f"{prefix}/endpoints/{job.endpoint_id}"
        elif target == JobState.JOB_STATE_FAILED:
            pb.error.code = code_pb2.INTERNAL
            pb.error.message = (
                "Tuning job failed: simulated failure injected by the Vertex AI emulator (TUNEDROP_EMULATOR_FAIL_RATE)."
            )
        if target in TERMINAL_STATES:
            _set_time(pb.end_time, job.terminal_at)
            _set_time(pb.update_time, job.terminal_at)
        pb.state = target
        log.info(
            "tuning job state changed",
            extra={
                "job": pb.name,
                "previous_state": _state_name(previous),
                "state": _state_name(target),
            },
        )

    @staticmethod
    def _snapshot(job: _Job) -> aiplatform_v1.TuningJob:
        copy = type(job.pb)()
        copy.CopyFrom(job.pb)
        snapshot: aiplatform_v1.TuningJob = aiplatform_v1.TuningJob.wrap(copy)
        return snapshot

    @staticmethod
    def _encode_token(seq: int, fingerprint: str) -> str:
        raw = json.dumps({"before": seq, "query": fingerprint}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _decode_token(token: str, fingerprint: str) -> int:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            before = data["before"]
            query = data["query"]
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise EmulatorError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid page_token {token!r}.") from None
        if query != fingerprint or not isinstance(before, int):
            raise EmulatorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "page_token does not match this request: parent and filter must stay the same across pages.",
            )
        return before


def _validate_labels(labels: Mapping[str, str]) -> None:
    """Google Cloud label rules: <= 64 labels; keys and values <= 64 chars of lowercase letters,
    digits, '_' and '-' (international letters allowed); keys start with a letter."""

    def allowed(text: str) -> bool:
        return all(c.isdigit() or c in "_-" or (c.isalpha() and not c.isupper()) for c in text)

    if len(labels) > 64:
        raise EmulatorError(grpc.StatusCode.INVALID_ARGUMENT, f"At most 64 labels are allowed, got {len(labels)}.")
    for key, value in labels.items():
        if not key or len(key) > 64 or not allowed(key) or not key[0].isalpha():
            raise EmulatorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid label key {key!r}: must start with a lowercase letter and contain at most 64 "
                "lowercase letters, digits, underscores or dashes.",
            )
        if len(value) > 64 or not allowed(value):
            raise EmulatorError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid value {value!r} for label {key!r}: at most 64 lowercase letters, digits, "
                "underscores or dashes.",
            )


def _fill_stats(pb: Any, job_id: str) -> None:
    """Plausible dataset statistics, deterministic per job (the emulator never reads the dataset)."""
    rng = random.Random(job_id)
    stats = pb.tuning_data_stats.supervised_tuning_data_stats
    examples = rng.randint(100, 5000)
    epochs = pb.supervised_tuning_spec.hyper_parameters.epoch_count or 3
    input_mean = rng.uniform(50, 800)
    output_mean = rng.uniform(20, 400)
    tokens = round(examples * (input_mean + output_mean))
    characters = tokens * 4  # ~4 characters per token for English text
    stats.tuning_dataset_example_count = examples
    stats.total_tuning_character_count = characters
    stats.total_billable_character_count = characters
    stats.total_billable_token_count = tokens * epochs  # tuning bills tokens x epochs
    stats.tuning_step_count = math.ceil(examples * epochs / 16)
    stats.total_truncated_example_count = 0
    for field, mean, count in (
        ("user_input_token_distribution", input_mean, examples),
        ("user_output_token_distribution", output_mean, examples),
        ("user_message_per_example_distribution", rng.uniform(2, 6), examples),
    ):
        dist = getattr(stats, field)
        total = round(mean * count)
        dist.sum = total
        dist.billable_sum = total
        dist.mean = mean
        dist.median = mean * 0.9
        dist.min_ = max(1.0, math.floor(mean * 0.1))
        dist.max_ = math.ceil(mean * 3)
        dist.p5 = max(1.0, mean * 0.3)
        dist.p95 = mean * 2.2


# --------------------------------------------------------------------------------------------
# gRPC glue


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


def _count_tokens_handler(servicer: _Servicer, service: str) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        service,
        {
            "CountTokens": grpc.unary_unary_rpc_method_handler(
                servicer.count_tokens,
                request_deserializer=aiplatform_v1.CountTokensRequest.deserialize,
                response_serializer=aiplatform_v1.CountTokensResponse.serialize,
            ),
        },
    )


def _generic_handler(servicer: _Servicer) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            "CreateTuningJob": grpc.unary_unary_rpc_method_handler(
                servicer.create,
                request_deserializer=aiplatform_v1.CreateTuningJobRequest.deserialize,
                response_serializer=aiplatform_v1.TuningJob.serialize,
            ),
            "GetTuningJob": grpc.unary_unary_rpc_method_handler(
                servicer.get,
                request_deserializer=aiplatform_v1.GetTuningJobRequest.deserialize,
                response_serializer=aiplatform_v1.TuningJob.serialize,
            ),
            "ListTuningJobs": grpc.unary_unary_rpc_method_handler(
                servicer.list,
                request_deserializer=aiplatform_v1.ListTuningJobsRequest.deserialize,
                response_serializer=aiplatform_v1.ListTuningJobsResponse.serialize,
            ),
            "CancelTuningJob": grpc.unary_unary_rpc_method_handler(
                servicer.cancel,
                request_deserializer=aiplatform_v1.CancelTuningJobRequest.deserialize,
                response_serializer=empty_pb2.Empty.SerializeToString,
            ),
        },
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
    servicer = _Servicer(state)
    server.add_generic_rpc_handlers(
        (
            _generic_handler(servicer),
            _count_tokens_handler(servicer, PREDICTION_SERVICE_NAME),
            _count_tokens_handler(servicer, LLM_UTILITY_SERVICE_NAME),
        )
    )
    address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as err:
        raise RuntimeError(f"Vertex AI emulator could not bind {address}: {err}") from err
    if bound == 0:
        raise RuntimeError(f"Vertex AI emulator could not bind {address}")
    server.start()
    return server, bound


# --------------------------------------------------------------------------------------------
# Command line

_SEVERITY: Final = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}
_RECORD_ATTRS: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line with Cloud Logging's ``severity`` and ``message`` keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "logger": record.name,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _configure_logging(level: int) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tunedrop_local.vertex_emulator",
        description="Serve an emulated Vertex AI GenAiTuningService over insecure gRPC.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to bind, 0 for any free port (default {DEFAULT_PORT})",
    )
    parser.add_argument("--verbose", action="store_true", help="also log every Get/List call")
    args = parser.parse_args(argv)
    _configure_logging(logging.DEBUG if args.verbose else logging.INFO)

    try:
        emulator = VertexEmulator()
        server, port = serve(args.host, args.port, emulator=emulator)
    except (ConfigError, RuntimeError) as err:
        log.error(str(err))
        return 2

    stop = threading.Event()
    received: list[str] = []

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        # Only record and flag here: logging from a signal handler can interleave with a log call
        # the main thread was in the middle of.
        received.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    cfg = emulator.config
    log.info(
        "Vertex AI tuning emulator serving",
        extra={
            "host": args.host,
            "port": port,
            "service": SERVICE_NAME,
            "quota": cfg.quota,
            "job_seconds": cfg.job_seconds,
            "fail_rate": cfg.fail_rate,
            "unavailable_rate": cfg.unavailable_rate,
            "seed": cfg.seed,
        },
    )
    # Poll rather than block forever so the signal handler always gets to run promptly.
    while not stop.wait(0.2):
        pass
    log.info("stopping gracefully", extra={"signal": received[0] if received else None})
    server.stop(grace=5).wait()
    log.info("Vertex AI tuning emulator stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
