"""The emulated service's state and the semantics of its RPCs, independent of gRPC transport."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import grpc
from google.cloud import aiplatform_v1
from google.rpc import error_details_pb2

from . import answers, generate, tokens
from .config import EmulatorConfig
from .continuous import Lineage, lineage_of
from .errors import EmulatorError
from .evaluate_instances import evaluate_instances
from .filters import FilterTerm, matches_all, parse_filter
from .names import JobKey, parse_job_name, parse_parent
from .paging import decode_page_token, encode_page_token, page_limit, query_fingerprint
from .state import OUTPUT_ONLY_FIELDS, JobState, TuningJobRecord, set_time, state_name
from .training import TrainingFiles
from .validation import (
    NOISE_LABEL,
    QUALITY_LABEL,
    check_base_model,
    check_cmek_allowed,
    labelled_dropped_examples,
    labelled_job_seconds,
    labelled_percent,
    validate_tuning_job,
)

log = logging.getLogger(__name__)

API_SERVICE: Final = "aiplatform.googleapis.com"
# The real quota is global across regions (one counter per project, not per location).
QUOTA_METRIC: Final = "aiplatform.googleapis.com/global_concurrent_tuning_jobs"


def quota_error(number: str, active: int, quota: int) -> EmulatorError:
    """RESOURCE_EXHAUSTED with the QuotaFailure detail the real service attaches."""
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


@dataclasses.dataclass(frozen=True)
class TunedEndpoint:
    """What a tuned model served on an endpoint answers from (see .answers)."""

    seed: str  # the tuning job's name: two jobs of one quality answer different prompts from training
    training_uri: str
    quality: int
    noise: int
    model_version: str


class VertexEmulator:
    """In-memory state of the emulated GenAiTuningService; thread-safe behind one lock.

    Methods take and return the proto-plus types of ``google.cloud.aiplatform_v1`` and raise
    :class:`EmulatorError` for anything the real service would reject. Knobs given here override
    the environment (see :mod:`.config`); ``clock`` lets tests drive simulated time.
    """

    def __init__(
        self,
        *,
        quota: int | None = None,
        job_seconds: float | None = None,
        fail_rate: float | None = None,
        unavailable_rate: float | None = None,
        seed: int | None = None,
        quota_mode: str | None = None,
        dropped_examples: int | None = None,
        tuned_quality: int | None = None,
        tuned_noise: int | None = None,
        clock: Callable[[], float] | None = None,
        env: Mapping[str, str] | None = None,
        read_training: Callable[[str], str] | None = None,
    ) -> None:
        self.config = EmulatorConfig.resolve(
            {
                "quota": quota,
                "job_seconds": job_seconds,
                "fail_rate": fail_rate,
                "unavailable_rate": unavailable_rate,
                "seed": seed,
                "quota_mode": quota_mode,
                "dropped_examples": dropped_examples,
                "tuned_quality": tuned_quality,
                "tuned_noise": tuned_noise,
            },
            os.environ if env is None else env,
        )
        # ``read_training`` (gs:// URI -> text) stands in for the storage emulator in tests.
        self._training = TrainingFiles(os.environ if env is None else env, read_training)
        self._clock = clock or time.time
        self._lock = threading.Lock()
        self._jobs: dict[JobKey, TuningJobRecord] = {}
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
        number, location = parse_parent(parent)
        src = aiplatform_v1.TuningJob.pb(tuning_job)
        validate_tuning_job(src, location)
        labelled = labelled_job_seconds(src)
        duration = self.config.job_seconds if labelled is None else labelled
        dropped = labelled_dropped_examples(src)
        for label in (QUALITY_LABEL, NOISE_LABEL):
            labelled_percent(src, label)
        with self._lock:
            now = self._clock()
            active = self._active_count(now)
            lineage = lineage_of(src, self._jobs.values())
            check_base_model(lineage.base_model, number, location, dt.datetime.fromtimestamp(now, dt.UTC).date())
            check_cmek_allowed(lineage.base_model, src)
            admitted_at = self._admission(number, active, now)
            job = self._new_record(src, number, location, now, duration, lineage, admitted_at)
            job.dropped_examples = self.config.dropped_examples if dropped is None else dropped
            self._jobs[(number, location, job.job_id)] = job
            log.info(
                "tuning job created",
                extra={
                    "method": "CreateTuningJob",
                    "job": job.pb.name,
                    "state": "JOB_STATE_PENDING",
                    "base_model": lineage.base_model,
                    "active_jobs": active + (admitted_at is not None),
                    "waiting_for_quota": admitted_at is None,
                    "quota": self.config.quota,
                },
            )
            return job.snapshot()

    def _admission(self, number: str, active: int, now: float) -> float | None:
        """When a job created at ``now`` takes its slot: now, or None to wait (quota mode "wait") behind the
        jobs already waiting; in mode "refuse" a create beyond the quota is refused."""
        if active < self.config.quota and not any(job.waiting for job in self._jobs.values()):
            return now
        if self.config.waits_for_quota:
            return None
        raise quota_error(number, active, self.config.quota)

    def get_tuning_job(self, name: str) -> aiplatform_v1.TuningJob:
        key = parse_job_name(name)
        with self._lock:
            job = self._lookup(key, name)
            now = self._clock()
            self._admit_waiting(now)
            job.advance(now)
            return job.snapshot()

    def list_tuning_jobs(
        self, parent: str, filter: str = "", page_size: int = 0, page_token: str = ""
    ) -> aiplatform_v1.ListTuningJobsResponse:
        number, location = parse_parent(parent)
        terms = parse_filter(filter)
        size = page_limit(page_size)
        fingerprint = query_fingerprint(number, location, filter)
        before = decode_page_token(page_token, fingerprint) if page_token else None
        with self._lock:
            self._admit_waiting(self._clock())
            page, more = self._select_page(self._newest_first(number, location, before), terms, size, self._clock())
            return aiplatform_v1.ListTuningJobsResponse(
                tuning_jobs=[job.snapshot() for job in page],
                next_page_token=encode_page_token(page[-1].seq, fingerprint) if more else "",
            )

    def cancel_tuning_job(self, name: str) -> None:
        key = parse_job_name(name)
        with self._lock:
            job = self._lookup(key, name)
            now = self._clock()
            self._admit_waiting(now)
            previous = job.cancel(now)
            log.info(
                "tuning job cancelled",
                extra={
                    "method": "CancelTuningJob",
                    "job": job.pb.name,
                    "previous_state": state_name(previous),
                    "state": "JOB_STATE_CANCELLED",
                },
            )

    def count_tokens(self, request: aiplatform_v1.CountTokensRequest) -> aiplatform_v1.CountTokensResponse:
        return tokens.count_tokens(request)

    def generate_content(self, request: aiplatform_v1.GenerateContentRequest) -> aiplatform_v1.GenerateContentResponse:
        target = generate.parse_model(request.model)
        prompt = generate.prompt_text(request)
        now = self._clock()
        if not target.is_endpoint:
            name = generate.serving_model(target, dt.datetime.fromtimestamp(now, dt.UTC).date())
            return generate.response(request, answers.generic_answer(prompt), name, now)
        tuned = self._tuned_endpoint(target, request.model)
        # Read outside the lock: the first read of a training file goes to the storage emulator.
        examples = self._training.examples(tuned.training_uri)
        text = answers.tuned_answer(examples, prompt, seed=tuned.seed, quality=tuned.quality, noise=tuned.noise)
        return generate.response(request, text, tuned.model_version, now)

    def evaluate_instances(
        self, request: aiplatform_v1.EvaluateInstancesRequest
    ) -> aiplatform_v1.EvaluateInstancesResponse:
        return evaluate_instances(request)

    def _tuned_endpoint(self, target: generate.Target, model: str) -> TunedEndpoint:
        """The SUCCEEDED job whose tuned model (or one of its checkpoints) ``target`` serves, or NOT_FOUND."""
        with self._lock:
            now = self._clock()
            for job in self._jobs.values():
                if (job.number, job.location) != (target.number, target.location):
                    continue
                job.advance(now)
                share = job.endpoint_share(target.resource_id)
                if share is None:
                    continue
                quality = labelled_percent(job.pb, QUALITY_LABEL)
                noise = labelled_percent(job.pb, NOISE_LABEL)
                return TunedEndpoint(
                    seed=job.pb.name,
                    training_uri=job.pb.supervised_tuning_spec.training_dataset_uri,
                    quality=round((self.config.tuned_quality if quality is None else quality) * share),
                    noise=self.config.tuned_noise if noise is None else noise,
                    model_version=job.pb.tuned_model.model,
                )
        raise generate.endpoint_missing(model)

    # ---- helpers for tests and operators

    def active_job_count(self) -> int:
        """Jobs currently holding a quota slot, at the clock's current time."""
        with self._lock:
            return self._active_count(self._clock())

    def waiting_job_count(self) -> int:
        """Jobs accepted beyond the quota and still waiting for a slot (quota mode "wait")."""
        with self._lock:
            self._admit_waiting(self._clock())
            return sum(1 for job in self._jobs.values() if job.waiting)

    # ---- internals (callers hold the lock)

    def _active_count(self, now: float) -> int:
        self._admit_waiting(now)
        for job in self._jobs.values():
            job.advance(now)
        return sum(1 for job in self._jobs.values() if job.holds_slot(now))

    def _admit_waiting(self, now: float) -> None:
        """Give waiting jobs, oldest first, the slots that freed up to ``now``, each at the moment it freed."""
        for job in sorted((job for job in self._jobs.values() if job.waiting), key=lambda job: job.seq):
            admitted_at = self._first_free_slot(job.created_at, now)
            if admitted_at is None:
                return  # later jobs wait behind this one
            job.admit(admitted_at)

    def _first_free_slot(self, since: float, until: float) -> float | None:
        """The first moment in [since, until] when fewer than ``quota`` admitted jobs hold a slot."""
        releases = (job.slot_released_at for job in self._jobs.values())
        moments = sorted({since, *(t for t in releases if t is not None and since < t <= until)})
        for moment in moments:
            if sum(1 for job in self._jobs.values() if job.holds_slot(moment)) < self.config.quota:
                return moment
        return None

    def _newest_first(self, number: str, location: str, before: int | None) -> list[TuningJobRecord]:
        """The parent's jobs, newest first, from below sequence number ``before`` when given."""
        scoped = [
            job
            for job in self._jobs.values()
            if job.number == number and job.location == location and (before is None or job.seq < before)
        ]
        return sorted(scoped, key=lambda job: job.seq, reverse=True)

    @staticmethod
    def _select_page(
        newest_first: Iterable[TuningJobRecord], terms: list[FilterTerm], size: int, now: float
    ) -> tuple[list[TuningJobRecord], bool]:
        """Up to ``size`` matching jobs, and whether more match after them."""
        page: list[TuningJobRecord] = []
        for job in newest_first:
            job.advance(now)
            if not matches_all(job.pb, terms):
                continue
            if len(page) == size:
                return page, True
            page.append(job)
        return page, False

    def _lookup(self, key: JobKey, name: str) -> TuningJobRecord:
        job = self._jobs.get(key)
        if job is None:
            raise EmulatorError(grpc.StatusCode.NOT_FOUND, f"TuningJob {name} not found.")
        return job

    def _new_record(
        self,
        src: Any,
        number: str,
        location: str,
        now: float,
        duration: float,
        lineage: Lineage,
        admitted_at: float | None,
    ) -> TuningJobRecord:
        job_id = self._new_id()
        pb = type(src)()
        pb.CopyFrom(src)
        for field in OUTPUT_ONLY_FIELDS:
            pb.ClearField(field)
        pb.name = f"projects/{number}/locations/{location}/tuningJobs/{job_id}"
        pb.state = JobState.JOB_STATE_PENDING
        pb.tuned_model_display_name = lineage.display_name
        if pb.HasField("pre_tuned_model"):
            # Output only: the base model the pre-tuned model was tuned from.
            pb.pre_tuned_model.base_model = lineage.base_model
        set_time(pb.create_time, now)
        set_time(pb.update_time, now)
        self._seq += 1
        # Draw the ids in the same order whatever the lineage, so one job's options do not shift others' ids.
        fails = self._fail_rng.random() < self.config.fail_rate  # random() < 1.0 always holds
        model_id, endpoint_id = self._new_id(), self._new_id()
        return TuningJobRecord(
            seq=self._seq,
            number=number,
            location=location,
            job_id=job_id,
            pb=pb,
            created_at=now,
            duration=duration,
            fails=fails,
            model_id=lineage.model_id or model_id,
            endpoint_id=endpoint_id,
            admitted_at=admitted_at,
            base_model=lineage.base_model,
            model_version=lineage.model_version,
        )

    def _new_id(self) -> str:
        # Real ids are positive int64s rendered as 19 digits.
        taken = {job.job_id for job in self._jobs.values()}
        while True:
            candidate = str(self._id_rng.randrange(10**18, 2**63))
            if candidate not in taken:
                return candidate
