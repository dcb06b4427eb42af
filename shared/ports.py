"""The small abstract surfaces the services depend on. Adapters implement them for Google Cloud;
tests implement them in memory (tests/fakes.py)."""

from __future__ import annotations

import abc
import hashlib
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, ClassVar, Generic, TypeVar

from shared.aliases import Alias
from shared.errors import PermanentError, TransientError
from shared.jobs import Job, JobState

T = TypeVar("T")


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A value read together with the version that a conditional write must match.

    The version is opaque: Firestore's update time in production, a counter in memory.
    """

    value: T
    version: Any


@dataclass(frozen=True)
class SlotTable:
    """Who holds the concurrent tuning-job slots: job id -> when it claimed its slot.

    After Vertex AI answers RESOURCE_EXHAUSTED, dispatch pauses until `backoff_until`, and each
    further refusal doubles the pause (`backoff_level`); a successful create resets both.
    """

    holders: Mapping[str, datetime] = field(default_factory=dict)
    backoff_until: datetime | None = None
    backoff_level: int = 0
    # The team of each holder that claimed with one, so a team's slot cap holds in the same compare-and-set
    # as the quota. Holders claimed by a release before teams have none (they count towards no team's cap).
    teams: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TeamUsage:
    """One team in the fair share: slot-seconds charged per unit of weight, and whether it had work (queued or
    running) when the dispatcher last looked."""

    vtime: float = 0.0
    backlogged: bool = False


@dataclass(frozen=True)
class RunningSlot:
    """A slot holder as the fair share knows it: its team and since when it holds the slot."""

    team: str
    since: datetime


@dataclass(frozen=True)
class FairShareState:
    """The fairness document (see shared/services/fairness.py): kept off the slot table, the hottest document."""

    teams: Mapping[str, TeamUsage] = field(default_factory=dict)
    running: Mapping[str, RunningSlot] = field(default_factory=dict)


@dataclass(frozen=True)
class Charge:
    """What one job attempt counts against its team's month: the estimate from validation while it runs, the
    actual cost (Vertex AI's billable tokens at the model's price) once it ended."""

    estimated_usd: float
    actual_usd: float | None = None

    @property
    def usd(self) -> float:
        return self.estimated_usd if self.actual_usd is None else self.actual_usd


@dataclass(frozen=True)
class TeamSpend:
    """One team's spend document for one month (``YYYY-MM``, UTC): the running jobs' charges keyed by
    ``<job_id>/<attempt>``, and the ended jobs' total. Kept off the slot table (the hottest document): it is
    written once when a job is submitted and once when it ends."""

    charges: Mapping[str, Charge] = field(default_factory=dict)  # of jobs submitted and not yet ended
    settled_usd: float = 0.0  # what the month's ended jobs cost
    settled_count: int = 0

    @property
    def total_usd(self) -> float:
        return self.settled_usd + sum(charge.usd for charge in self.charges.values())


@dataclass(frozen=True)
class PolicyRecord:
    """One version of the team policies as the functions first saw it deployed: who changed it and why."""

    digest: str  # sha256 of the canonical policies JSON
    policies: str  # the canonical policies JSON
    changed_by: str
    reason: str
    seen_at: datetime

    @property
    def record_id(self) -> str:
        """The record's id: the policies with who applied them and why, so going back to an earlier version (a
        new change note) is a record of its own, while instances noting the same deployment keep one."""
        return hashlib.sha256(f"{self.digest}\n{self.changed_by}\n{self.reason}".encode()).hexdigest()


class DocumentRefused(PermanentError):
    """The database refuses the job document itself (too large, a reserved field name, a value it cannot hold):
    writing it again cannot help."""


# How many times JobStore.update reads and writes again after losing a race before it gives up.
MAX_UPDATE_ATTEMPTS = 10


def contention_pause(attempt: int, rng: random.Random) -> float:
    """Seconds to wait after losing compare-and-set race number ``attempt``: jittered, growing, at most 0.2 s."""
    return min(0.2, 0.005 * 2.0 ** min(attempt, 6)) * rng.random()


class UpdateContention(TransientError):
    """A job kept changing under a conditional update: the caller's delivery is retried."""


@dataclass(frozen=True)
class Updated:
    """What JobStore.update left: the job as stored now, and whether this call's change was the one written."""

    job: Job
    written: bool


class JobStore(abc.ABC):
    @abc.abstractmethod
    def create(self, job: Job) -> bool:
        """Store a new job; False when a job with that id exists already."""

    @abc.abstractmethod
    def get(self, job_id: str) -> Versioned[Job] | None: ...

    @abc.abstractmethod
    def replace(self, job: Job, version: Any) -> bool:
        """Write the job only if it is still at `version`; False when someone wrote it first.
        Raises DocumentRefused when the database refuses the document.

        The hook under `swap` and `update`: services write through those."""

    @abc.abstractmethod
    def queued(self, limit: int) -> list[Versioned[Job]]:
        """QUEUED jobs, highest priority first, then first in first out."""

    @abc.abstractmethod
    def queue_heads(self, limit: int) -> list[Versioned[Job]]:
        """The first QUEUED job (highest priority, then first in first out) of each team with queued work,
        teams in name order, at most `limit` teams: one document read per team."""

    @abc.abstractmethod
    def queued_in_team(self, team: str, limit: int) -> list[Versioned[Job]]:
        """The team's QUEUED jobs, highest priority first, then first in first out."""

    @abc.abstractmethod
    def in_states(self, states: Sequence[JobState], limit: int = 1000) -> list[Versioned[Job]]: ...

    @abc.abstractmethod
    def each_in_states(self, states: Sequence[JobState]) -> Iterator[Versioned[Job]]:
        """Every job in one of the states, read page by page (however many there are)."""

    @abc.abstractmethod
    def completion_pending(self, limit: int = 100) -> list[Versioned[Job]]:
        """Terminal jobs whose completion event is not yet known to be published."""

    @abc.abstractmethod
    def on_models(self, state: JobState, models: Sequence[str]) -> Iterator[Versioned[Job]]:
        """Every job in `state` whose base_model is one of `models` (at most 30 names), read page by page."""

    @abc.abstractmethod
    def read_alias(self, name: str) -> Versioned[Alias] | None:
        """The alias (shared.aliases); None when no job or operator made it yet."""

    @abc.abstractmethod
    def write_alias(self, alias: Alias, version: Any) -> bool:
        """Compare-and-set the alias document: False when it changed since `version` was read (None: only if
        it does not exist yet)."""

    @abc.abstractmethod
    def list_aliases(self, limit: int) -> list[Alias]:
        """Up to `limit` aliases, in name order."""

    @abc.abstractmethod
    def with_tuned_model(self, model: str) -> Versioned[Job] | None:
        """The job whose tuned model is `model` (its resource name exactly as recorded); None when none's is."""

    @abc.abstractmethod
    def list_jobs(self, state: JobState | None, limit: int) -> list[Job]:
        """Up to `limit` jobs (of one state, or of any), in job id order: what an operator lists."""

    @abc.abstractmethod
    def existing(self, job_ids: Sequence[str]) -> set[str]:
        """Which of these jobs exist (one batched read)."""

    @abc.abstractmethod
    def read_marker(self, name: str) -> str | None:
        """A small named value Tunedrop keeps for itself (e.g. the day a daily check last ran)."""

    @abc.abstractmethod
    def write_marker(self, name: str, value: str) -> None: ...

    def update(
        self,
        job_id: str,
        change: Callable[[Job], Job | None],
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> Updated | None:
        """Read the job, apply ``change`` (a pure function of the current job: the job to write, or None to
        leave it as it is) and write it only if nobody wrote it meanwhile; on a lost race, back off and apply
        the change again to what is stored then. None when the job does not exist; UpdateContention after
        MAX_UPDATE_ATTEMPTS lost races."""
        jitter = rng or random.Random()
        for attempt in range(MAX_UPDATE_ATTEMPTS):
            current = self.get(job_id)
            if current is None:
                return None
            changed = change(current.value)
            if changed is None:
                return Updated(current.value, written=False)
            if self.replace(changed, current.version):
                return Updated(changed, written=True)
            sleep(contention_pause(attempt, jitter))
        raise UpdateContention(f"job {job_id} kept changing; its update is retried")

    def swap(self, read: Versioned[Job], change: Callable[[Job], Job | None]) -> Job | None:
        """Apply ``change`` to the job as it was read and write the result only if the job is still at that
        version: the job written, or None when the change declined or someone wrote first (their write wins,
        nothing is retried). For claims, which must not act on a job that moved since it was read."""
        changed = change(read.value)
        if changed is None or not self.replace(changed, read.version):
            return None
        return changed

    def count(self, state: JobState) -> int:
        """How many jobs are in `state` (adapters override this with a server-side count)."""
        return len(self.in_states([state], limit=100_000))

    @abc.abstractmethod
    def read_slots(self) -> Versioned[SlotTable]:
        """The slot table; version None when it was never written."""

    @abc.abstractmethod
    def write_slots(self, slots: SlotTable, version: Any) -> bool:
        """Conditional write of the slot table (version None: only if it does not exist)."""

    @abc.abstractmethod
    def count_queued_in_team(self, team: str) -> int:
        """How many jobs of the team are QUEUED (a count aggregation: no document read each)."""

    @abc.abstractmethod
    def read_spend(self, team: str, month: str) -> Versioned[TeamSpend]:
        """The team's spend document for the month (``YYYY-MM``); version None when there is none yet."""

    @abc.abstractmethod
    def write_spend(self, team: str, month: str, spend: TeamSpend, version: Any) -> bool:
        """Compare-and-set the spend document: False when it changed since `version` was read."""

    @abc.abstractmethod
    def record_policy(self, record: PolicyRecord) -> bool:
        """Keep one version of the policies, once (create-only by digest): False when it is kept already."""

    @abc.abstractmethod
    def policy_history(self, limit: int) -> list[PolicyRecord]:
        """The kept versions of the policies, newest first."""

    @abc.abstractmethod
    def read_fairness(self) -> Versioned[FairShareState]:
        """The fairness document; version None when it was never written."""

    @abc.abstractmethod
    def write_fairness(self, state: FairShareState, version: Any) -> bool:
        """Conditional write of the fairness document (version None: only if it does not exist)."""


class Publisher(abc.ABC):
    @abc.abstractmethod
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish and wait for the server's acknowledgement; returns the message id."""


@dataclass(frozen=True)
class TuningRequest:
    job_id: str
    attempt: int
    base_model: str
    training_dataset_uri: str
    validation_dataset_uri: str = ""
    display_name: str = ""
    hyper_parameters: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    export_last_checkpoint_only: bool | None = None  # None: Vertex AI's default
    service_account: str = ""  # "": Vertex AI's own tuning service agent
    encryption_key: str = ""  # "": Google-managed encryption
    pre_tuned_model: str = ""  # continuous tuning: the tuned model to tune on (then base_model is not sent)
    pre_tuned_checkpoint: str = ""  # "": its default checkpoint
    evaluation: Mapping[str, Any] | None = None  # evaluation during tuning (Job.evaluation); None: none


class RemoteState:
    """Vertex AI job states, by their enum names: the poller and the adapters compare with these, never with
    raw strings."""

    QUEUED = "JOB_STATE_QUEUED"
    PENDING = "JOB_STATE_PENDING"
    RUNNING = "JOB_STATE_RUNNING"
    CANCELLING = "JOB_STATE_CANCELLING"
    PAUSED = "JOB_STATE_PAUSED"
    UPDATING = "JOB_STATE_UPDATING"
    SUCCEEDED = "JOB_STATE_SUCCEEDED"
    FAILED = "JOB_STATE_FAILED"
    CANCELLED = "JOB_STATE_CANCELLED"
    EXPIRED = "JOB_STATE_EXPIRED"
    PARTIALLY_SUCCEEDED = "JOB_STATE_PARTIALLY_SUCCEEDED"

    # The states that hold a slot of the concurrent tuning-job quota.
    ACTIVE = frozenset({QUEUED, PENDING, RUNNING, CANCELLING, PAUSED, UPDATING})
    FAILED_LIKE = frozenset({FAILED, EXPIRED, PARTIALLY_SUCCEEDED})


@dataclass(frozen=True)
class RemoteJob:
    """What Tunedrop needs to know of a Vertex AI tuning job."""

    # The detail state of a job held for the concurrent tuning-job quota (see detail_state).
    WAITING_FOR_QUOTA: ClassVar[str] = "WAITING_FOR_QUOTA"

    name: str
    state: str
    job_id: str = ""  # the Tunedrop job it was created for ("" for jobs made elsewhere)
    attempt: int = 0  # and that job's attempt
    labels: Mapping[str, str] = field(default_factory=dict)
    create_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    tuned_model: str = ""
    endpoint: str = ""
    error_code: int = 0
    error_message: str = ""
    stats: Mapping[str, Any] = field(default_factory=dict)
    checkpoints: Sequence[Mapping[str, Any]] = ()
    # Evaluation during tuning, one run per checkpoint: checkpoint_id, metrics [{metric, aggregation, value}],
    # output_directory, error (see shared/adapters/vertex_tuning.py).
    evaluations: Sequence[Mapping[str, Any]] = ()
    experiment: str = ""
    # The service's detail state (TuningJob.tuning_job_state without its TUNING_JOB_STATE_ prefix: WAITING_FOR_QUOTA,
    # PROCESSING_DATASET, WAITING_FOR_CAPACITY, TUNING, POST_PROCESSING), documented by the Gen AI SDKs "while the
    # overall JobState is running" (googleapis.github.io/js-genai/release_docs/enums/types.TuningJobState.html,
    # read 2026-11-30); "" when unknown, as always over aiplatform_v1 2.7, whose TuningJob has no such field.
    detail_state: str = ""

    @property
    def terminal_state(self) -> JobState | None:
        if self.state == RemoteState.SUCCEEDED:
            return JobState.SUCCEEDED
        if self.state == RemoteState.CANCELLED:
            return JobState.CANCELLED
        if self.state in RemoteState.FAILED_LIKE:
            return JobState.FAILED
        return None


class QuotaExhausted(TransientError):
    """Vertex AI refused a create because the concurrent tuning-job quota is full."""


class TuningUnavailable(TransientError):
    """Vertex AI did not answer, or answered with a retryable error."""


class TuningRejected(PermanentError):
    """Vertex AI refused the request for good (invalid argument, permission, not found)."""


class TuningJobMissing(TuningRejected):
    """The tuning job does not exist (any more): NOT_FOUND."""


class TuningService(abc.ABC):
    @abc.abstractmethod
    def create(self, request: TuningRequest) -> RemoteJob: ...

    @abc.abstractmethod
    def get(self, name: str) -> RemoteJob: ...

    @abc.abstractmethod
    def find(self, job_id: str, attempt: int) -> RemoteJob | None:
        """The Vertex job created for this job id and attempt, found by its labels."""

    @abc.abstractmethod
    def cancel(self, name: str) -> None: ...

    @abc.abstractmethod
    def active_jobs(self) -> list[RemoteJob]:
        """Every tuning job of the project that holds a quota slot now, in the regions Tunedrop watches,
        whoever created it."""


class ObjectMissing(PermanentError):
    """The object (at that generation) is not in the bucket."""


@dataclass(frozen=True)
class ObjectInfo:
    """One generation of an object: what pins it, how big it is and its CRC32C (base64, as GCS gives it)."""

    generation: str
    size: int
    crc32c: str


@dataclass(frozen=True)
class Generated:
    """One answer of a model (GenerateContentResponse's first candidate's text and usage_metadata)."""

    text: str
    prompt_tokens: int
    output_tokens: int


class ModelAnswers(abc.ABC):
    """Vertex AI PredictionService.GenerateContent: what the evaluation gate asks a model."""

    @abc.abstractmethod
    def generate(
        self,
        model: str,
        contents: Sequence[Mapping[str, Any]],
        system_instruction: Mapping[str, Any] | None = None,
    ) -> Generated:
        """`model`: a publisher model (projects/P/locations/L/publishers/google/models/ID) or a tuned model's
        endpoint (projects/P/locations/L/endpoints/E); `contents`: Gemini contents (role and text parts).
        Raises TuningUnavailable (transient, after the adapter's own retries) or TuningRejected (permanent)."""


class Judge(abc.ABC):
    """Vertex AI EvaluationService.EvaluateInstances: how the evaluation gate scores answers."""

    @abc.abstractmethod
    def score(self, metric: str, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """`metric` one of exact_match, bleu, rouge; `pairs` (prediction, reference); one score in [0, 1] per
        pair, in order. Raises TuningUnavailable or TuningRejected like ModelAnswers."""

    @abc.abstractmethod
    def compare(self, prompt: str, candidate: str, baseline: str, reference: str, prompt_template: str) -> float:
        """A pairwise autorater's choice: 1.0 the candidate is better, 0.0 the baseline, 0.5 a tie."""


class BlobStore(abc.ABC):
    @abc.abstractmethod
    def open(self, bucket: str, name: str, generation: str | None = None) -> IO[bytes]:
        """A buffered binary reader of the object; raises ObjectMissing."""

    @abc.abstractmethod
    def write(self, bucket: str, name: str, data: bytes, content_type: str, *, if_absent: bool = False) -> str:
        """Write an object Tunedrop owns (a report); returns its gs:// URI. With ``if_absent`` the object is
        only created, in one step with the check: ObjectExists when it exists (nothing is overwritten)."""

    @abc.abstractmethod
    def describe(self, bucket: str, name: str, generation: str | None = None) -> ObjectInfo:
        """The live generation (or the one given) of an object; raises ObjectMissing."""

    @abc.abstractmethod
    def list_page(self, bucket: str, prefix: str, page_token: str, limit: int) -> tuple[list[ListedObject], str]:
        """One page of the live objects under ``prefix`` in name order, and the token of the next ("" at the end)."""

    @abc.abstractmethod
    def copy_pinned(self, bucket: str, name: str, generation: str, destination: str) -> ObjectInfo:
        """Copy exactly that generation to ``destination`` in the same bucket, creating it only if it does not
        exist (a repeated copy of the same bytes is fine). Raises ObjectMissing when that generation is gone,
        and CopyConflict when ``destination`` holds other bytes."""


@dataclass(frozen=True)
class ListedObject:
    name: str
    generation: str
    created: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)
    size: int = 0


class CopyConflict(PermanentError):
    """The destination of a pinned copy exists with other bytes."""


class ObjectExists(PermanentError):
    """A create-only write (BlobStore.write with ``if_absent``) found the object there already."""
