"""Tuning-job records and their timeline.

A job's state is computed lazily from simulated time: PENDING at create, RUNNING after
``min(10% of its duration, 1 s)``, and SUCCEEDED (or FAILED, for a seeded share of jobs) at
``create + duration``. A cancel freezes it in CANCELLED. Callers hold the emulator's lock.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from typing import Any, Final

import grpc
from google.cloud import aiplatform_v1
from google.rpc import code_pb2

from .errors import EmulatorError

log = logging.getLogger(__name__)

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
OUTPUT_ONLY_FIELDS: Final = (
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
FAILURE_MESSAGE: Final = (
    "Tuning job failed: simulated failure injected by the Vertex AI emulator (TUNEDROP_EMULATOR_FAIL_RATE)."
)


def set_time(field: Any, seconds: float) -> None:
    # The real API reports microsecond precision.
    field.FromMicroseconds(round(seconds * 1_000_000))


def state_name(state: int) -> str:
    return str(JobState(state).name)


@dataclasses.dataclass
class TuningJobRecord:
    """One created job: the served protobuf plus the timeline the emulator decided at create."""

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

    @property
    def holds_quota(self) -> bool:
        return self.pb.state in ACTIVE_STATES

    def snapshot(self) -> aiplatform_v1.TuningJob:
        """A copy for a client, so later changes to the record do not reach it."""
        copy = type(self.pb)()
        copy.CopyFrom(self.pb)
        snapshot: aiplatform_v1.TuningJob = aiplatform_v1.TuningJob.wrap(copy)
        return snapshot

    def scheduled_state(self, now: float) -> int:
        """The state the timeline gives at ``now``, cancellation aside."""
        if now >= self.terminal_at:
            return JobState.JOB_STATE_FAILED if self.fails else JobState.JOB_STATE_SUCCEEDED
        if now >= self.running_at:
            return JobState.JOB_STATE_RUNNING
        return JobState.JOB_STATE_PENDING

    def advance(self, now: float) -> None:
        """Bring ``pb`` up to date with simulated time ``now``."""
        if self.cancelled_at is not None:
            return
        previous = self.pb.state
        target = self.scheduled_state(now)
        if target == previous:
            return
        # A poll may skip RUNNING entirely; still record when it would have started.
        if target != JobState.JOB_STATE_PENDING and not self.pb.HasField("start_time"):
            self._start()
        if target == JobState.JOB_STATE_SUCCEEDED:
            self._publish_tuned_model()
        elif target == JobState.JOB_STATE_FAILED:
            self.pb.error.code = code_pb2.INTERNAL
            self.pb.error.message = FAILURE_MESSAGE
        if target in TERMINAL_STATES:
            set_time(self.pb.end_time, self.terminal_at)
            set_time(self.pb.update_time, self.terminal_at)
        self.pb.state = target
        log.info(
            "tuning job state changed",
            extra={"job": self.pb.name, "previous_state": state_name(previous), "state": state_name(target)},
        )

    def cancel(self, now: float) -> int:
        """Move to CANCELLED at ``now`` and return the state it left; a finished job refuses."""
        self.advance(now)
        state: int = self.pb.state
        if state in TERMINAL_STATES:
            raise EmulatorError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Cannot cancel TuningJob {self.pb.name}: it is already in terminal state {state_name(state)}.",
            )
        self.cancelled_at = now
        self.pb.state = JobState.JOB_STATE_CANCELLED
        set_time(self.pb.end_time, now)
        set_time(self.pb.update_time, now)
        # The documented contract: a cancelled job carries error.code 1 (Code.CANCELLED).
        self.pb.error.code = code_pb2.CANCELLED
        self.pb.error.message = "The tuning job was cancelled."
        return state

    def _start(self) -> None:
        set_time(self.pb.start_time, self.running_at)
        fill_stats(self.pb, self.job_id)
        set_time(self.pb.update_time, self.running_at)

    def _publish_tuned_model(self) -> None:
        prefix = f"projects/{self.number}/locations/{self.location}"
        self.pb.tuned_model.model = f"{prefix}/models/{self.model_id}@1"
        self.pb.tuned_model.endpoint = f"{prefix}/endpoints/{self.endpoint_id}"


def fill_stats(pb: Any, job_id: str) -> None:
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
    for field, mean in (
        ("user_input_token_distribution", input_mean),
        ("user_output_token_distribution", output_mean),
        ("user_message_per_example_distribution", rng.uniform(2, 6)),
    ):
        _fill_distribution(getattr(stats, field), mean, examples)


def _fill_distribution(dist: Any, mean: float, count: int) -> None:
    total = round(mean * count)
    dist.sum = total
    dist.billable_sum = total
    dist.mean = mean
    dist.median = mean * 0.9
    dist.min_ = max(1.0, math.floor(mean * 0.1))
    dist.max_ = math.ceil(mean * 3)
    dist.p5 = max(1.0, mean * 0.3)
    dist.p95 = mean * 2.2
