"""Tuning-job records and their timeline.

A job's state is computed lazily from simulated time: PENDING at create, RUNNING after
``min(10% of its duration, 1 s)``, and SUCCEEDED (or FAILED, for a seeded share of jobs) at
``create + duration``. A cancel freezes it in CANCELLED. In quota mode "wait" the clock starts when the job
is admitted to a slot instead of at create. Checkpoints are saved through the RUNNING time (their evaluation
runs appear as they are saved) and listed on the tuned model at the end. Callers hold the emulator's lock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import random
from typing import Any, Final

import grpc
from google.cloud import aiplatform_v1
from google.rpc import code_pb2

from shared.validation.registry import registry

from .checkpoints import DEFAULT_EPOCHS, EXAMPLES_PER_STEP, CheckpointPlan, derived_id, plan_checkpoints
from .errors import EmulatorError
from .evaluation import add_evaluation_run

log = logging.getLogger(__name__)

JobState = aiplatform_v1.JobState
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
# The per-example token limit of a model the registry does not know (the Gemini 2.x and 3.x figure).
DEFAULT_TOKEN_LIMIT: Final = 131_072
# How many dropped examples are listed by index: the reference calls the list "a partial sample".
DROPPED_SAMPLE_SIZE: Final = 10
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
    """One created job: the served protobuf plus the timeline the emulator decided at create.

    ``admitted_at`` is when the job took a quota slot: at create, except in quota mode "wait", where a job
    created beyond the quota waits (PENDING, no start time) until the emulator admits it into a freed slot.
    """

    seq: int  # creation order; lists sort on it and page tokens point at it
    number: str
    location: str
    job_id: str
    pb: Any  # the raw protobuf TuningJob, the single source of truth served to clients
    created_at: float
    duration: float
    fails: bool
    model_id: str
    endpoint_id: str
    admitted_at: float | None
    base_model: str  # the base model tuned, inherited from the pre-tuned model for continuous tuning
    model_version: int = 1
    dropped_examples: int = 0
    cancelled_at: float | None = None
    checkpoints: list[CheckpointPlan] = dataclasses.field(default_factory=list)

    @property
    def running_at(self) -> float | None:
        if self.admitted_at is None:
            return None
        return self.admitted_at + min(0.1 * self.duration, 1.0)

    @property
    def terminal_at(self) -> float | None:
        return None if self.admitted_at is None else self.admitted_at + self.duration

    @property
    def waiting(self) -> bool:
        """Accepted beyond the quota and not yet given a slot (quota mode "wait")."""
        return self.admitted_at is None and self.cancelled_at is None

    @property
    def slot_released_at(self) -> float | None:
        """When the job gives its slot back: cancelled or ended; None while it waits."""
        return self.cancelled_at if self.cancelled_at is not None else self.terminal_at

    def holds_slot(self, at: float) -> bool:
        released = self.slot_released_at
        return self.admitted_at is not None and self.admitted_at <= at and (released is None or at < released)

    def admit(self, at: float) -> None:
        self.admitted_at = at
        log.info(
            "tuning job admitted to a quota slot", extra={"job": self.pb.name, "waited_seconds": at - self.created_at}
        )

    def snapshot(self) -> aiplatform_v1.TuningJob:
        """A copy for a client, so later changes to the record do not reach it."""
        copy = type(self.pb)()
        copy.CopyFrom(self.pb)
        snapshot: aiplatform_v1.TuningJob = aiplatform_v1.TuningJob.wrap(copy)
        return snapshot

    def scheduled_state(self, now: float) -> int:
        """The state the timeline gives at ``now``, cancellation aside."""
        running_at, terminal_at = self.running_at, self.terminal_at
        if running_at is None or terminal_at is None or now < running_at:
            return JobState.JOB_STATE_PENDING
        if now >= terminal_at:
            return JobState.JOB_STATE_FAILED if self.fails else JobState.JOB_STATE_SUCCEEDED
        return JobState.JOB_STATE_RUNNING

    def advance(self, now: float) -> None:
        """Bring ``pb`` up to date with simulated time ``now``."""
        if self.cancelled_at is not None:
            return
        previous = self.pb.state
        target = self.scheduled_state(now)
        # A poll may skip RUNNING entirely; still record when it would have started.
        if target != JobState.JOB_STATE_PENDING and not self.pb.HasField("start_time"):
            self._start()
        self._evaluate_checkpoints(now)
        if target == previous:
            return
        if target == JobState.JOB_STATE_SUCCEEDED:
            self._publish_tuned_model()
        elif target == JobState.JOB_STATE_FAILED:
            self.pb.error.code = code_pb2.INTERNAL
            self.pb.error.message = FAILURE_MESSAGE
        if target in TERMINAL_STATES and self.terminal_at is not None:
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

    def checkpoint_at(self, plan: CheckpointPlan) -> float:
        """When ``plan`` is saved: its share of the way from RUNNING to the end."""
        running_at, terminal_at = self.running_at, self.terminal_at
        assert running_at is not None and terminal_at is not None, "only a started job saves checkpoints"
        return running_at + (terminal_at - running_at) * plan.share

    def endpoint_share(self, endpoint_id: str) -> float | None:
        """How far through training the model served on ``endpoint_id`` is (1.0: the tuned model's endpoint, an
        earlier checkpoint's share of the epochs for its own endpoint); None when the endpoint is not this
        job's, or the job has not SUCCEEDED."""
        if self.pb.state != JobState.JOB_STATE_SUCCEEDED:
            return None
        suffix = f"/endpoints/{endpoint_id}"
        if self.pb.tuned_model.endpoint.endswith(suffix):
            return 1.0
        shares = {plan.checkpoint_id: plan.share for plan in self.checkpoints}
        for checkpoint in self.pb.tuned_model.checkpoints:
            if checkpoint.endpoint.endswith(suffix):
                return shares.get(checkpoint.checkpoint_id, 1.0)
        return None

    def _start(self) -> None:
        assert self.running_at is not None
        set_time(self.pb.start_time, self.running_at)
        self.pb.experiment = self._experiment()
        fill_stats(self.pb, self.job_id, self.dropped_examples, _token_limit(self.base_model))
        stats = self.pb.tuning_data_stats.supervised_tuning_data_stats
        spec = self.pb.supervised_tuning_spec
        self.checkpoints = plan_checkpoints(
            spec.hyper_parameters.epoch_count or DEFAULT_EPOCHS,
            stats.tuning_step_count,
            spec.export_last_checkpoint_only,
        )
        set_time(self.pb.update_time, self.running_at)

    def _experiment(self) -> str:
        """The Vertex AI Experiment the job logs to, shaped like the supervised-tuning page's sample output
        (``.../metadataStores/default/contexts/tuning-experiment-2025010112345678``; https://docs.cloud.google.com/
        gemini-enterprise-agent-platform/models/tuning/supervised-tuning/use, read 2026-11-30): set once it runs."""
        created = dt.datetime.fromtimestamp(self.created_at, dt.UTC)
        stamp = f"{created:%Y%m%d%H%M%S}{created.microsecond // 10_000:02d}"
        store = f"projects/{self.number}/locations/{self.location}/metadataStores/default"
        return f"{store}/contexts/tuning-experiment-{stamp}"

    def _evaluate_checkpoints(self, now: float) -> None:
        """Add an evaluation run for each checkpoint saved by ``now`` (a failing job saves no final one)."""
        if not self.pb.supervised_tuning_spec.HasField("evaluation_config"):
            return
        for plan in self.checkpoints[len(self.pb.evaluate_dataset_runs) :]:
            at = self.checkpoint_at(plan)
            if at > now or (self.fails and plan.share >= 1.0):
                return
            add_evaluation_run(self.pb, self.job_id, plan, round(at * 1_000_000))

    def _publish_tuned_model(self) -> None:
        prefix = f"projects/{self.number}/locations/{self.location}"
        self.pb.tuned_model.model = f"{prefix}/models/{self.model_id}@{self.model_version}"
        self.pb.tuned_model.endpoint = f"{prefix}/endpoints/{self.endpoint_id}"
        for plan in self.checkpoints:
            checkpoint = self.pb.tuned_model.checkpoints.add()
            checkpoint.checkpoint_id = plan.checkpoint_id
            checkpoint.epoch = plan.epoch
            checkpoint.step = plan.step
            # The tuned model's endpoint is the default (here: last) checkpoint's; the others get their own.
            endpoint_id = (
                self.endpoint_id
                if plan is self.checkpoints[-1]
                else derived_id(self.job_id, "checkpoint-endpoint", plan.checkpoint_id)
            )
            checkpoint.endpoint = f"{prefix}/endpoints/{endpoint_id}"


def _token_limit(base_model: str) -> int:
    spec = registry().resolve(base_model)
    return spec.max_tokens_per_example if spec is not None else DEFAULT_TOKEN_LIMIT


def fill_stats(pb: Any, job_id: str, dropped: int = 0, token_limit: int = DEFAULT_TOKEN_LIMIT) -> None:
    """Plausible dataset statistics, deterministic per job (the emulator never reads the dataset).

    ``dropped`` examples (at most all but one) are reported as over the model's per-example token limit:
    counted in ``total_truncated_example_count`` ("the number of examples in the dataset that have been
    dropped"), a sample of their 1-based indices in ``truncated_example_indices`` with one reason each in
    ``dropped_example_reasons`` (SupervisedTuningDataStats, aiplatform_v1 2.7; read 2026-11-30), and left out
    of the billable tokens and steps. ``tuning_dataset_example_count`` stays the dataset's size. The billable
    token count keeps its meaning: tokens of the kept examples times epochs.
    """
    rng = random.Random(job_id)
    stats = pb.tuning_data_stats.supervised_tuning_data_stats
    examples = rng.randint(100, 5000)
    epochs = pb.supervised_tuning_spec.hyper_parameters.epoch_count or DEFAULT_EPOCHS
    input_mean = rng.uniform(50, 800)
    output_mean = rng.uniform(20, 400)
    dropped = min(dropped, examples - 1)
    kept = examples - dropped
    tokens = round(kept * (input_mean + output_mean))
    characters = tokens * 4  # ~4 characters per token for English text
    stats.tuning_dataset_example_count = examples
    stats.total_tuning_character_count = characters
    stats.total_billable_character_count = characters
    stats.total_billable_token_count = tokens * epochs  # tuning bills tokens x epochs
    stats.tuning_step_count = math.ceil(kept * epochs / EXAMPLES_PER_STEP)
    stats.total_truncated_example_count = dropped
    for field, mean in (
        ("user_input_token_distribution", input_mean),
        ("user_output_token_distribution", output_mean),
        ("user_message_per_example_distribution", rng.uniform(2, 6)),
    ):
        _fill_distribution(getattr(stats, field), mean, kept)
    _fill_dropped(stats, job_id, examples, dropped, token_limit)


def _fill_dropped(stats: Any, job_id: str, examples: int, dropped: int, token_limit: int) -> None:
    # A stream of its own, so the statistics above stay what they were for a job that drops nothing.
    rng = random.Random(f"{job_id}:dropped")
    for index in sorted(rng.sample(range(1, examples + 1), min(dropped, DROPPED_SAMPLE_SIZE))):
        stats.truncated_example_indices.append(index)
        over = token_limit + rng.randint(1, token_limit // 4)
        stats.dropped_example_reasons.append(
            f"Example {index} has {over} tokens, more than the {token_limit} tokens allowed per example."
        )


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
