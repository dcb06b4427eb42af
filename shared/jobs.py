"""The job record and its guarded state machine."""

from __future__ import annotations

import hashlib
import re
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    VALIDATING = "VALIDATING"
    QUEUED = "QUEUED"
    SUBMITTING = "SUBMITTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def holds_slot(self) -> bool:
        return self in (JobState.SUBMITTING, JobState.RUNNING)


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.REJECTED})

# Every move a job may make. Anything else is a stale or duplicate delivery and is refused,
# so no message can move a job backwards or out of a terminal state.
# FAILED -> QUEUED is the operator's explicit retry, which starts a new attempt.
ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    # VALIDATING -> FAILED: validation never finished (every delivery crashed or was lost), or the dataset
    # changed before it could be kept.
    JobState.VALIDATING: frozenset({JobState.QUEUED, JobState.REJECTED, JobState.CANCELLED, JobState.FAILED}),
    # QUEUED -> FAILED: the base model closed for tuning before the job could be submitted.
    # QUEUED -> REJECTED: it would take its team past the monthly budget, and the team's policy says reject.
    JobState.QUEUED: frozenset({JobState.SUBMITTING, JobState.CANCELLED, JobState.FAILED, JobState.REJECTED}),
    JobState.SUBMITTING: frozenset(
        {JobState.RUNNING, JobState.QUEUED, JobState.FAILED, JobState.CANCELLED, JobState.SUCCEEDED}
    ),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset(),
    JobState.REJECTED: frozenset(),
}


MAX_HISTORY = 200
# The version of the job document's layout. Readers tolerate fields they do not know; a document of a
# later version with a state they do not know is skipped (UnknownJobState), never a crash, so a release
# can be rolled back over documents the newer one wrote.
JOB_SCHEMA_VERSION = 1


class UnknownJobState(ValueError):
    """A job document holds a state this release does not know (written by a newer one)."""


class TransitionRefused(Exception):
    """The job is not in a state from which this move is allowed."""


def can_transition(current: JobState, target: JobState) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


_SLUG = re.compile(r"[^a-z0-9]+")


def job_id_for(bucket: str, object_name: str, generation: str | int) -> str:
    """A stable id for one upload: the same notification twice maps to the same job.

    It is also a valid Vertex AI label value (lowercase, digits, dashes; at most 63 chars),
    so the Vertex job can carry it and be found again after a crash.
    """
    digest = hashlib.sha256(f"{bucket}/{object_name}#{generation}".encode()).hexdigest()[:12]
    stem = object_name.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
    slug = _SLUG.sub("-", stem).strip("-")[:40].strip("-") or "dataset"
    if not slug[0].isalpha():
        slug = "d-" + slug[:38]
    return f"{slug}-{digest}"


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    from_state: str | None
    to_state: str
    reason: str
    # Who made the move when it was an operator's action (`tunedrop cancel` ...): their identity; "" for Tunedrop.
    actor: str = ""


# Marks the fields that describe one attempt (its Vertex job, its outcome): a retry starts them afresh.
_PER_ATTEMPT = {"per_attempt": True}


@dataclass(frozen=True)
class Job:
    """One dataset's way from upload to a tuned model. Stored as one Firestore document."""

    job_id: str
    state: JobState
    bucket: str
    object_name: str
    generation: str
    base_model: str
    created_at: datetime
    updated_at: datetime
    priority: int = 0
    enqueued_at: datetime | None = None
    attempt: int = 1
    hyper_parameters: dict[str, Any] = field(default_factory=dict)
    display_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    upload_event_id: str = ""
    # The TuningJob's own options (a manifest's, or the operators' defaults; see shared/compliance.py).
    description: str = ""
    export_last_checkpoint_only: bool | None = None
    service_account: str = ""
    encryption_key: str = ""
    # Continuous tuning: the job continued from, its tuned model, and the checkpoint to start from ("": the
    # model's default checkpoint).
    continued_from: str = ""
    pre_tuned_model: str = ""
    pre_tuned_checkpoint: str = ""
    # Evaluation during tuning, as the manifest asked (shared.evaluation.Evaluation as plain data) with where
    # Vertex AI writes its results (output_uri_prefix); None: no evaluation.
    evaluation: dict[str, Any] | None = None
    # The evaluation gate (shared.gate; README "The evaluation gate"): the alias to promote the tuned model as,
    # the held-out dataset (as named, its validated generation and checksum, and Tunedrop's copy), the gate's
    # settings (None: the defaults), and once judged, its verdict (GateSummary as plain data) and the ce-id of
    # the promoted / held / candidate_ready event published ("" until then).
    promote_as: str = ""
    evaluation_uri: str = ""
    evaluation_generation: str = ""
    evaluation_crc32c: str = ""
    tuning_evaluation_uri: str = ""
    gate: dict[str, Any] | None = None
    verdict: dict[str, Any] | None = field(default=None, metadata=_PER_ATTEMPT)
    gate_event_id: str = field(default="", metadata=_PER_ATTEMPT)
    # The team folder the upload came from (incoming/<team>/...); "" for the top level.
    team: str = ""
    # Where the datasets are: the upload itself, or what a manifest upload names.
    training_uri: str = ""
    validation_uri: str = ""
    manifest_uri: str = ""
    # What was validated, and the copies Vertex AI is given (they cannot change; see STAGING_PREFIX).
    training_generation: str = ""
    training_crc32c: str = ""
    tuning_training_uri: str = ""
    validation_generation: str = ""
    validation_crc32c: str = ""
    tuning_validation_uri: str = ""
    validation: dict[str, Any] = field(default_factory=dict)
    report_uri: str = ""
    vertex_job_name: str = field(default="", metadata=_PER_ATTEMPT)
    vertex_state: str = field(default="", metadata=_PER_ATTEMPT)
    submit_claimed_at: datetime | None = field(default=None, metadata=_PER_ATTEMPT)
    submit_errors: int = field(default=0, metadata=_PER_ATTEMPT)
    last_submit_error: str = field(default="", metadata=_PER_ATTEMPT)
    submit_retry_at: datetime | None = field(default=None, metadata=_PER_ATTEMPT)
    # An operator asked to cancel while the job was being validated or submitted.
    cancel_requested: bool = field(default=False, metadata=_PER_ATTEMPT)
    # Who asked for that cancel, and why: the CANCELLED entry recorded later (by the poller or the submitter)
    # names them (see moved_to).
    cancel_requested_by: str = field(default="", metadata=_PER_ATTEMPT)
    cancel_reason: str = field(default="", metadata=_PER_ATTEMPT)
    started_at: datetime | None = field(default=None, metadata=_PER_ATTEMPT)
    ended_at: datetime | None = field(default=None, metadata=_PER_ATTEMPT)
    tuned_model: str = field(default="", metadata=_PER_ATTEMPT)
    endpoint: str = field(default="", metadata=_PER_ATTEMPT)
    error: dict[str, Any] | None = field(default=None, metadata=_PER_ATTEMPT)
    tuning_stats: dict[str, Any] = field(default_factory=dict, metadata=_PER_ATTEMPT)
    checkpoints: list[dict[str, Any]] = field(default_factory=list, metadata=_PER_ATTEMPT)
    # Evaluation during tuning: one run per checkpoint (its metrics); the Vertex AI experiment of the attempt.
    evaluations: list[dict[str, Any]] = field(default_factory=list, metadata=_PER_ATTEMPT)
    experiment: str = field(default="", metadata=_PER_ATTEMPT)
    # Vertex AI's detail state of the tuning job ("" when unknown), given by the service or inferred by the poller
    # (WAITING_FOR_QUOTA: see shared/services/poll.py), and when it was first seen; written only when it changes.
    detail_state: str = field(default="", metadata=_PER_ATTEMPT)
    detail_since: datetime | None = field(default=None, metadata=_PER_ATTEMPT)
    # Warnings raised once each (e.g. "stuck_pending", "running_too_long").
    warnings: list[str] = field(default_factory=list, metadata=_PER_ATTEMPT)
    # Set when a terminal state is recorded; cleared once its completion event is published.
    completion_pending: bool = False
    completion_event_id: str = field(default="", metadata=_PER_ATTEMPT)
    # The job this one re-tunes on another base model (`tunedrop retune`), if any.
    retuned_from: str = ""
    # The operator who asked for this job (`tunedrop retune`), and why; "" for an upload.
    requested_by: str = ""
    request_reason: str = ""
    # Why a QUEUED job is held back although slots may be free ("over_budget"); "" when it just waits its turn.
    waiting_reason: str = ""
    # The month (YYYY-MM, UTC) this attempt's cost counts against (its team's spend document; see
    # shared/services/budgets.py).
    budget_month: str = field(default="", metadata=_PER_ATTEMPT)
    # Days-before-retirement thresholds at which this job's tuned model was announced as retiring.
    retirement_notices: list[int] = field(default_factory=list, metadata=_PER_ATTEMPT)
    history: tuple[HistoryEntry, ...] = ()
    schema_version: int = JOB_SCHEMA_VERSION

    @property
    def upload_uri(self) -> str:
        return f"gs://{self.bucket}/{self.object_name}"

    @property
    def dataset_uri(self) -> str:
        """The training dataset: the uploaded file, or the one its manifest names."""
        return self.training_uri or self.upload_uri

    @property
    def latest_move(self) -> tuple[JobState | None, JobState]:
        """The move moved_to recorded last, as (from, to); from is None for the job's first state. This is
        the event a move leaves on the job: JobEffects reads it to do what the move implies."""
        entry = self.history[-1] if self.history else None
        if entry is None or entry.from_state is None:
            return None, self.state
        return JobState(entry.from_state), JobState(entry.to_state)

    def moved_to(self, target: JobState, now: datetime, reason: str, *, actor: str = "", **changes: Any) -> Job:
        """The job after a guarded transition; raises TransitionRefused when not allowed. `actor`: the operator
        whose action this is, recorded on the history entry; moving to CANCELLED a job an operator asked to cancel
        names them (cancel_requested_by) and their reason when no actor is given."""
        if not can_transition(self.state, target):
            raise TransitionRefused(f"job {self.job_id}: {self.state} -> {target} is not allowed")
        if target is JobState.CANCELLED and self.cancel_requested_by and not actor:
            # The cancel an operator asked for earlier ends here: the entry names them and their reason.
            actor = self.cancel_requested_by
            reason = f"{reason}; asked by an operator: {self.cancel_reason}"
        entry = HistoryEntry(
            at=now, from_state=self.state.value, to_state=target.value, reason=reason[:500], actor=actor[:320]
        )
        extra: dict[str, Any] = {}
        if target.terminal:
            extra["completion_pending"] = True
            extra["completion_event_id"] = completion_event_id(self.job_id, self.attempt, target)
        history = (*self.history, entry)
        if len(history) > MAX_HISTORY:
            # Keep the document far below Firestore's 1 MiB: the first entry and the latest ones.
            history = (history[0], *history[-(MAX_HISTORY - 1) :])
        return replace(self, state=target, updated_at=now, history=history, **{**extra, **changes})

    def with_fields(self, **changes: Any) -> Job:
        """The job with fields changed that do not move it. Its state (and the history that records each move)
        changes only through moved_to, so no write can slip past the transition guard."""
        guarded = sorted({"state", "history", "job_id"} & changes.keys())
        if guarded:
            raise TransitionRefused(f"job {self.job_id}: {', '.join(guarded)} change only through moved_to")
        return replace(self, **changes)

    def new_attempt(self, now: datetime, reason: str, *, actor: str = "") -> Job:
        """The job back in the queue as its next attempt: every per-attempt field at its default."""
        fresh: dict[str, Any] = {}
        for item in fields(self):
            if not item.metadata.get("per_attempt"):
                continue
            factory = item.default_factory
            fresh[item.name] = item.default if factory is MISSING else factory()
        return self.moved_to(
            JobState.QUEUED, now, reason, actor=actor, attempt=self.attempt + 1, enqueued_at=now, **fresh
        )

    def to_document(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["state"] = self.state.value
        doc["history"] = [asdict(h) for h in self.history]
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Job:
        data = dict(doc)
        try:
            data["state"] = JobState(data["state"])
        except ValueError:
            raise UnknownJobState(
                f"job {data.get('job_id')!r} is in state {data.get('state')!r}, unknown to this release "
                f"(document schema_version {data.get('schema_version')!r})"
            ) from None
        data["history"] = tuple(HistoryEntry(**h) for h in data.get("history", ()))
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def completion_event_id(job_id: str, attempt: int, state: JobState) -> str:
    """Stable per job, attempt and outcome: a republished event carries the same id."""
    return f"{job_id}/{attempt}/{state.value.lower()}"


def new_job(
    *,
    job_id: str,
    bucket: str,
    object_name: str,
    generation: str,
    base_model: str,
    now: datetime,
    priority: int = 0,
    hyper_parameters: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    upload_event_id: str = "",
) -> Job:
    return Job(
        job_id=job_id,
        state=JobState.VALIDATING,
        bucket=bucket,
        object_name=object_name,
        generation=str(generation),
        base_model=base_model,
        created_at=now,
        updated_at=now,
        priority=priority,
        hyper_parameters=hyper_parameters or {},
        labels=labels or {},
        upload_event_id=upload_event_id,
        history=(HistoryEntry(at=now, from_state=None, to_state=JobState.VALIDATING.value, reason="uploaded"),),
    )
