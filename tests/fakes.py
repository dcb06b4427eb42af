"""In-memory fakes of Tunedrop's ports (shared/ports.py) and a harness that wires them into an App.

They follow the ports' documented contracts, not the services' expectations: versions are ints,
every conditional write is a compare-and-set, stored jobs round-trip through their Firestore
document form, and failures are injected explicitly by the test.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import IO, Any, NamedTuple

from shared import logs
from shared.aliases import Alias, alias_document, alias_from_document
from shared.bootstrap import App, assemble
from shared.clock import Clock, FakeClock
from shared.config import Settings
from shared.errors import TransientError
from shared.jobs import Job, JobState, UnknownJobState, job_id_for, new_job
from shared.policy import Policies
from shared.ports import (
    BlobStore,
    CopyConflict,
    DocumentRefused,
    FairShareState,
    JobStore,
    ListedObject,
    ObjectExists,
    ObjectInfo,
    ObjectMissing,
    PolicyRecord,
    Publisher,
    QuotaExhausted,
    RemoteJob,
    RemoteState,
    SlotTable,
    TeamSpend,
    TuningRejected,
    TuningRequest,
    TuningService,
    Versioned,
)
from shared.services.base import JobContext
from shared.services.dispatch import Dispatcher
from shared.services.upload import UploadedObject
from tests.fakes_gate import FakeJudge, FakeModelAnswers

# The labels the Vertex adapter puts on every tuning job (shared/adapters/vertex_tuning.py).
JOB_LABEL = "tunedrop_job"
ATTEMPT_LABEL = "tunedrop_attempt"

_EARLIEST = datetime.min.replace(tzinfo=UTC)
MAX_IN_VALUES = 30  # Firestore's limit on the values of one 'in' filter


# --------------------------------------------------------------------------------------------
# JobStore
# --------------------------------------------------------------------------------------------


# What Firestore refuses in a document, so the fake refuses it too (a fake that accepts more hides bugs).
# Sources, read 2026-11-29: the Document and Value REST reference
# (https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.documents: field names
# matching __.*__ are reserved, names are non-empty and at most 1,500 bytes; an array cannot directly
# contain an array) and the quotas page (https://docs.cloud.google.com/firestore/quotas.md.txt: at most
# 1 MiB per document, 20 levels of maps and arrays, 64-bit integers).
MAX_DOCUMENT_BYTES = 1_048_576
MAX_DOCUMENT_DEPTH = 20
_INT64 = (-(2**63), 2**63 - 1)


# What each kind of value Firestore stores adds to a document's storage size, in the order they are tested
# (bool before int: a bool is an int to Python).
_VALUE_SIZES: tuple[tuple[type | tuple[type, ...], Callable[[Any], int]], ...] = (
    ((bool, type(None)), lambda _: 1),
    (int, lambda _: 8),
    ((float, datetime), lambda _: 8),
    (str, lambda text: len(text.encode("utf-8", errors="surrogatepass")) + 1),
    (bytes, len),
)

_Pending = tuple[Any, int, bool]  # a value, its depth, whether an array holds it directly


def firestore_refusal(doc: Mapping[str, Any]) -> str | None:
    """Why Firestore would refuse ``doc`` (None when it would store it), and its storage size checked too."""
    size = 0
    stack: list[_Pending] = [(doc, 0, False)]
    while stack:
        value, depth, in_array = stack.pop()
        if isinstance(value, Mapping | list | tuple):
            refusal = _container_refusal(value, depth, in_array)
            if refusal is not None:
                return refusal
            if isinstance(value, Mapping):
                size += sum(len(key.encode()) + 1 for key in value)
                stack.extend((item, depth + 1, False) for item in value.values())
            else:
                stack.extend((item, depth + 1, True) for item in value)
            continue
        refusal, value_size = _value_refusal(value)
        if refusal is not None:
            return refusal
        size += value_size
    if size + 32 > MAX_DOCUMENT_BYTES:
        return f"the document takes {size + 32:,} bytes; at most {MAX_DOCUMENT_BYTES:,}"
    return None


def _container_refusal(value: Mapping[Any, Any] | Sequence[Any], depth: int, in_array: bool) -> str | None:
    if not isinstance(value, Mapping) and in_array:
        return "an array directly inside an array"
    if depth > MAX_DOCUMENT_DEPTH:
        return f"maps and arrays nest deeper than {MAX_DOCUMENT_DEPTH} levels"
    if isinstance(value, Mapping):
        return next((refusal for refusal in map(_field_name_refusal, value) if refusal is not None), None)
    return None


def _field_name_refusal(key: Any) -> str | None:
    if not isinstance(key, str) or not key or len(key.encode()) > 1500:
        return f"field name {key!r} is empty, not text or longer than 1,500 bytes"
    if key.startswith("__") and key.endswith("__") and len(key) >= 4:
        return f"field name {key!r} is reserved (__.*__)"
    return None


def _value_refusal(value: Any) -> tuple[str | None, int]:
    """Why Firestore refuses a value that is not a map or an array (None when it stores it), and its size."""
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
        return f"integer {value} does not fit 64 bits", 0
    for kinds, size_of in _VALUE_SIZES:
        if isinstance(value, kinds):
            return None, size_of(value)
    return f"a {type(value).__name__} value", 0


PAGE_SIZE = 300  # Firestore adapter's page


class InMemoryJobStore(JobStore):
    """Jobs as documents with integer versions; every write bumps one store-wide counter.

    `reads` counts documents read the way Firestore bills them (a query that matches nothing
    still costs one read); `calls` counts calls per method.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._docs: dict[str, tuple[dict[str, Any], int]] = {}
        self._slots: tuple[SlotTable, int] | None = None
        self._fairness: tuple[FairShareState, int] | None = None
        self._spend: dict[tuple[str, str], tuple[TeamSpend, int]] = {}
        self._aliases: dict[str, tuple[dict[str, Any], int]] = {}
        self._policy_records: dict[str, PolicyRecord] = {}
        self._markers: dict[str, str] = {}
        self._versions = itertools.count(1)
        self.reads = 0
        self.writes = 0
        self.conflicts = 0  # conditional writes refused because someone wrote first
        self.calls: Counter[str] = Counter()

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _checked(job: Job) -> dict[str, Any]:
        document = job.to_document()
        refusal = firestore_refusal(document)
        if refusal is not None:
            raise DocumentRefused(f"Firestore refuses job {job.job_id}: {refusal}")
        return document

    def _load(self, doc: dict[str, Any], version: int) -> Versioned[Job] | None:
        """Like the adapter: a document in a state this release does not know is skipped, with a warning."""
        try:
            return Versioned(Job.from_document(copy.deepcopy(doc)), version)
        except UnknownJobState as exc:
            logs.warning("job document skipped: written by a newer release", error=str(exc))
            return None

    def _query(self, name: str, matches: Sequence[tuple[dict[str, Any], int]], limit: int) -> list[Versioned[Job]]:
        self.calls[name] += 1
        found = list(matches)[: max(0, limit)]
        self.reads += max(1, len(found))
        return [job for job in (self._load(doc, version) for doc, version in found) if job is not None]

    def put_document(self, doc: dict[str, Any]) -> None:
        """Store a raw document (one a newer release might write)."""
        with self._lock:
            self._docs[str(doc["job_id"])] = (copy.deepcopy(doc), next(self._versions))

    # -- JobStore ----------------------------------------------------------------------------

    def create(self, job: Job) -> bool:
        with self._lock:
            self.calls["create"] += 1
            if job.job_id in self._docs:
                return False
            document = self._checked(job)
            self._docs[job.job_id] = (document, next(self._versions))
            self.writes += 1
            return True

    def get(self, job_id: str) -> Versioned[Job] | None:
        with self._lock:
            self.calls["get"] += 1
            self.reads += 1
            stored = self._docs.get(job_id)
            return None if stored is None else self._load(*stored)

    def replace(self, job: Job, version: Any) -> bool:
        with self._lock:
            self.calls["replace"] += 1
            stored = self._docs.get(job.job_id)
            if stored is None or stored[1] != version:
                self.conflicts += 1
                return False
            document = self._checked(job)
            self._docs[job.job_id] = (document, next(self._versions))
            self.writes += 1
            return True

    def queued(self, limit: int) -> list[Versioned[Job]]:
        with self._lock:
            rows = [(d, v) for d, v in self._docs.values() if d["state"] == JobState.QUEUED.value]
            # Firestore: priority DESC, then enqueued_at ASC (nulls first), then document id.
            rows.sort(key=lambda r: (-r[0]["priority"], r[0]["enqueued_at"] or _EARLIEST, r[0]["job_id"]))
            return self._query("queued", rows, limit)

    def _queued_in_order(self, team: str | None) -> list[tuple[dict[str, Any], int]]:
        """QUEUED documents (of one team, or of all) as the team-ordered index returns them. Like Firestore, a
        query ordered or filtered by `team` never returns a document without that field (written before teams)."""
        rows = [
            (d, v)
            for d, v in self._docs.values()
            if d["state"] == JobState.QUEUED.value and "team" in d and (team is None or d["team"] == team)
        ]
        rows.sort(key=lambda r: (r[0]["team"], -r[0]["priority"], r[0]["enqueued_at"] or _EARLIEST, r[0]["job_id"]))
        return rows

    def queue_heads(self, limit: int) -> list[Versioned[Job]]:
        with self._lock:
            heads: dict[str, tuple[dict[str, Any], int]] = {}
            for doc, version in self._queued_in_order(None):
                heads.setdefault(doc["team"], (doc, version))
            return self._query("queue_heads", list(heads.values()), limit)

    def queued_in_team(self, team: str, limit: int) -> list[Versioned[Job]]:
        with self._lock:
            return self._query("queued_in_team", self._queued_in_order(team), limit)

    def read_alias(self, name: str) -> Versioned[Alias] | None:
        with self._lock:
            self.reads += 1
            found = self._aliases.get(name)
            # Stored as Firestore stores it (plain data), so what it cannot hold fails here too.
            return None if found is None else Versioned(alias_from_document(copy.deepcopy(found[0])), found[1])

    def write_alias(self, alias: Alias, version: Any) -> bool:
        with self._lock:
            found = self._aliases.get(alias.name)
            if version != (None if found is None else found[1]):
                self.conflicts += 1
                return False
            self._aliases[alias.name] = (alias_document(alias), next(self._versions))
            self.writes += 1
            return True

    def list_aliases(self, limit: int) -> list[Alias]:
        with self._lock:
            self.reads += 1
            return [alias_from_document(copy.deepcopy(doc)) for _, (doc, _) in sorted(self._aliases.items())[:limit]]

    def with_tuned_model(self, model: str) -> Versioned[Job] | None:
        with self._lock:
            rows = [(d, v) for d, v in self._docs.values() if d.get("tuned_model") == model]
            found = self._query("with_tuned_model", rows, 1)
        return found[0] if found else None

    def in_states(self, states: Sequence[JobState], limit: int = 1000) -> list[Versioned[Job]]:
        wanted = {JobState(s).value for s in states}
        with self._lock:
            rows = [(d, v) for d, v in self._docs.values() if d["state"] in wanted]
            return self._query("in_states", rows, limit)

    def each_in_states(self, states: Sequence[JobState]) -> Iterator[Versioned[Job]]:
        """Like the adapter: document-id order, read in pages of PAGE_SIZE (each page billed as Firestore does)."""
        wanted = {JobState(s).value for s in states}
        with self._lock:
            rows = sorted(
                ((d, v) for d, v in self._docs.values() if d["state"] in wanted), key=lambda r: r[0]["job_id"]
            )
        for start in range(0, max(1, len(rows)), PAGE_SIZE):
            with self._lock:
                page = self._query("each_in_states", rows[start : start + PAGE_SIZE], PAGE_SIZE)
            yield from page

    def completion_pending(self, limit: int = 100) -> list[Versioned[Job]]:
        with self._lock:
            rows = [(d, v) for d, v in self._docs.values() if d["completion_pending"]]
            return self._query("completion_pending", rows, limit)

    def on_models(self, state: JobState, models: Sequence[str]) -> Iterator[Versioned[Job]]:
        if len(models) > MAX_IN_VALUES:
            raise ValueError(f"Firestore takes at most {MAX_IN_VALUES} values in an 'in' filter, got {len(models)}")
        wanted = set(models)
        with self._lock:
            rows = [(d, v) for d, v in self._docs.values() if d["state"] == state.value and d["base_model"] in wanted]
            rows.sort(key=lambda r: r[0]["job_id"])  # Firestore's order without order_by: document id
            found = self._query("on_models", rows, len(rows))
        yield from found

    def list_jobs(self, state: JobState | None, limit: int) -> list[Job]:
        with self._lock:
            rows = [(d, v) for d, v in self._docs.values() if state is None or d["state"] == state.value]
            rows.sort(key=lambda r: r[0]["job_id"])  # Firestore's order without order_by: document id
            return [found.value for found in self._query("list_jobs", rows, limit)]

    def existing(self, job_ids: Sequence[str]) -> set[str]:
        with self._lock:
            self.calls["existing"] += 1
            self.reads += max(1, len(job_ids))
            return {job_id for job_id in job_ids if job_id in self._docs}

    def read_marker(self, name: str) -> str | None:
        with self._lock:
            self.calls["read_marker"] += 1
            self.reads += 1
            return self._markers.get(name)

    def write_marker(self, name: str, value: str) -> None:
        with self._lock:
            self.calls["write_marker"] += 1
            self.writes += 1
            self._markers[name] = value

    def read_slots(self) -> Versioned[SlotTable]:
        with self._lock:
            self.calls["read_slots"] += 1
            self.reads += 1
            if self._slots is None:
                return Versioned(SlotTable(), None)
            table, version = self._slots
            return Versioned(replace(table, holders=dict(table.holders), teams=dict(table.teams)), version)

    def write_slots(self, slots: SlotTable, version: Any) -> bool:
        with self._lock:
            self.calls["write_slots"] += 1
            if (version is None and self._slots is not None) or (
                version is not None and (self._slots is None or self._slots[1] != version)
            ):
                self.conflicts += 1
                return False
            self._slots = (replace(slots, holders=dict(slots.holders), teams=dict(slots.teams)), next(self._versions))
            self.writes += 1
            return True

    def read_fairness(self) -> Versioned[FairShareState]:
        with self._lock:
            self.calls["read_fairness"] += 1
            self.reads += 1
            return Versioned(FairShareState(), None) if self._fairness is None else Versioned(*self._fairness)

    def write_fairness(self, state: FairShareState, version: Any) -> bool:
        with self._lock:
            self.calls["write_fairness"] += 1
            current = None if self._fairness is None else self._fairness[1]
            if version != current:
                self.conflicts += 1
                return False
            self._fairness = (state, next(self._versions))
            self.writes += 1
            return True

    def count_queued_in_team(self, team: str) -> int:
        with self._lock:
            self.calls["count_queued_in_team"] += 1
            self.reads += 1  # a count aggregation bills one read per batch of up to 1,000 index entries
            return len(self._queued_in_order(team))

    def read_spend(self, team: str, month: str) -> Versioned[TeamSpend]:
        with self._lock:
            self.calls["read_spend"] += 1
            self.reads += 1
            found = self._spend.get((team, month))
            return Versioned(TeamSpend(), None) if found is None else Versioned(*found)

    def write_spend(self, team: str, month: str, spend: TeamSpend, version: Any) -> bool:
        with self._lock:
            self.calls["write_spend"] += 1
            found = self._spend.get((team, month))
            if version != (None if found is None else found[1]):
                self.conflicts += 1
                return False
            self._spend[(team, month)] = (replace(spend, charges=dict(spend.charges)), next(self._versions))
            self.writes += 1
            return True

    def record_policy(self, record: PolicyRecord) -> bool:
        with self._lock:
            self.calls["record_policy"] += 1
            if record.record_id in self._policy_records:
                return False
            self._policy_records[record.record_id] = record
            self.writes += 1
            return True

    def policy_history(self, limit: int) -> list[PolicyRecord]:
        with self._lock:
            self.calls["policy_history"] += 1
            newest = sorted(self._policy_records.values(), key=lambda record: record.seen_at, reverse=True)
            found = newest[: max(0, limit)]
            self.reads += max(1, len(found))
            return found

    # -- test helpers (not part of the port) -------------------------------------------------

    def put(self, job: Job) -> int:
        """Insert or overwrite a job unconditionally (seeding a scenario); returns its version."""
        with self._lock:
            version = next(self._versions)
            self._docs[job.job_id] = (job.to_document(), version)
            return version

    def job(self, job_id: str) -> Job:
        with self._lock:
            doc, _ = self._docs[job_id]
            return Job.from_document(copy.deepcopy(doc))

    def jobs(self) -> list[Job]:
        with self._lock:
            return [Job.from_document(copy.deepcopy(d)) for d, _ in self._docs.values()]

    def states(self) -> dict[str, JobState]:
        with self._lock:
            return {job_id: JobState(d["state"]) for job_id, (d, _) in self._docs.items()}

    def slot_holders(self) -> dict[str, datetime]:
        with self._lock:
            return {} if self._slots is None else dict(self._slots[0].holders)

    def reset_counters(self) -> None:
        with self._lock:
            self.reads = 0
            self.writes = 0
            self.conflicts = 0
            self.calls.clear()


# --------------------------------------------------------------------------------------------
# Publisher
# --------------------------------------------------------------------------------------------


class Published(NamedTuple):
    topic: str
    data: bytes
    attributes: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class _PublishFailure:
    remaining: int
    topic: str | None
    error: Exception
    after_send: bool


class RecordingPublisher(Publisher):
    """Keeps every acknowledged message; `fail_next` makes chosen publishes raise.

    With `after_send=True` the message is kept (the server got it) but the call still raises,
    as when the acknowledgement is lost: the caller cannot tell, and will publish again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[Published] = []
        self.attempts = 0
        self._failures: list[_PublishFailure] = []
        self._ids = itertools.count(1)

    def fail_next(
        self,
        times: int = 1,
        *,
        topic: str | None = None,
        error: Exception | None = None,
        after_send: bool = False,
    ) -> None:
        failure = error or TransientError("injected: publish failed")
        self._failures.append(_PublishFailure(times, topic, failure, after_send))

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        with self._lock:
            self.attempts += 1
            assert isinstance(data, bytes), "Pub/Sub data must be bytes"
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in attributes.items())
            message = Published(topic, data, dict(attributes))
            for failure in self._failures:
                if failure.remaining > 0 and failure.topic in (None, topic):
                    failure.remaining -= 1
                    if failure.after_send:
                        self.messages.append(message)
                    raise failure.error
            self.messages.append(message)
            return str(next(self._ids))

    def on(self, topic: str) -> list[Published]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()


# --------------------------------------------------------------------------------------------
# TuningService
# --------------------------------------------------------------------------------------------


class FakeTuningService(TuningService):
    """Vertex AI tuning jobs in a dict.

    * `quota`: concurrent active jobs allowed (None: unlimited); a create beyond it raises
      QuotaExhausted, like RESOURCE_EXHAUSTED.
    * `fail(method, error, times)`: the next calls of `create`/`get`/`find`/`cancel` raise.
    * `script(name, *steps)`: each later `get(name)`, or listing of the job while active, first applies the
      next step, a state name or a (state, changes) pair; `set_state`/`succeed` change a job right away.
    * The service's detail state is a change like any other: `(RemoteState.RUNNING, FakeTuningService.detail(
      "WAITING_FOR_QUOTA"))`; it stays until a later step changes it, and RUNNING sets start_time the first time, as
      Vertex AI documents start_time (waiting for quota included).
    """

    def __init__(
        self,
        *,
        quota: int | None = None,
        clock: Clock | None = None,
        parent: str = "projects/demo/locations/us-central1",
        initial_state: str = RemoteState.PENDING,
    ) -> None:
        self._lock = threading.Lock()
        self.quota = quota
        self._clock = clock or FakeClock()
        self._parent = parent
        self.initial_state = initial_state
        self.jobs: dict[str, RemoteJob] = {}
        self.requests: list[TuningRequest] = []
        self.calls: Counter[str] = Counter()
        self._failures: dict[str, deque[Exception]] = {
            m: deque() for m in ("create", "get", "find", "cancel", "active_jobs")
        }
        self._scripts: dict[str, deque[str | tuple[str, Mapping[str, Any]]]] = {}
        self._ids = itertools.count(1000)

    @property
    def creates(self) -> int:
        """Tuning jobs actually created."""
        return len(self.jobs)

    # -- scripting ---------------------------------------------------------------------------

    def fail(self, method: str, error: Exception, times: int = 1) -> None:
        self._failures[method].extend([error] * times)

    def script(self, name: str, *steps: str | tuple[str, Mapping[str, Any]]) -> None:
        self._scripts.setdefault(name, deque()).extend(steps)

    @staticmethod
    def detail(state: str) -> dict[str, str]:
        """A scripted step's changes giving the service's detail state (RemoteJob.detail_state), e.g. "TUNING"."""
        return {"detail_state": state}

    def set_state(self, name: str, state: str, **changes: Any) -> RemoteJob:
        with self._lock:
            return self._apply(name, state, changes)

    def succeed(self, name: str) -> RemoteJob:
        return self.set_state(
            name,
            RemoteState.SUCCEEDED,
            tuned_model=f"{name.replace('tuningJobs', 'models')}@1",
            endpoint=f"{self._parent}/endpoints/{name.rsplit('/', 1)[-1]}",
        )

    def add(self, remote: RemoteJob) -> RemoteJob:
        """Seed a job as if it had been created earlier (before a crash, or by hand elsewhere).

        A job carrying Tunedrop's labels gets the job id and attempt the adapter reads from them.
        """
        if not remote.job_id and remote.labels.get(JOB_LABEL):
            remote = replace(
                remote, job_id=remote.labels[JOB_LABEL], attempt=int(remote.labels.get(ATTEMPT_LABEL) or 0)
            )
        with self._lock:
            self.jobs[remote.name] = remote
            return remote

    def for_job(self, job_id: str, attempt: int | None = None) -> list[RemoteJob]:
        with self._lock:
            return [j for j in self.jobs.values() if j.job_id == job_id and (attempt is None or j.attempt == attempt)]

    def _apply(self, name: str, state: str, changes: Mapping[str, Any]) -> RemoteJob:
        current = self.jobs[name]
        extra: dict[str, Any] = {}
        now = self._clock()
        if state == RemoteState.RUNNING and current.start_time is None:
            extra["start_time"] = now
        elif state in (RemoteState.SUCCEEDED, RemoteState.FAILED) and current.start_time is None:
            # It ran to an end, so it started: scripted straight from PENDING, it ran since it was created.
            extra["start_time"] = current.create_time
        if state not in RemoteState.ACTIVE and current.end_time is None:
            extra["end_time"] = now
        updated = replace(current, state=state, **{**extra, **changes})
        self.jobs[name] = updated
        return updated

    def _read(self, name: str) -> RemoteJob:
        """The job as a read sees it: a scripted job's next step (if any is left) applies first."""
        script = self._scripts.get(name)
        if not script:
            return self.jobs[name]
        step = script.popleft()
        state, changes = (step, {}) if isinstance(step, str) else step
        return self._apply(name, state, changes)

    def _maybe_fail(self, method: str) -> None:
        self.calls[method] += 1
        if self._failures[method]:
            raise self._failures[method].popleft()

    # -- TuningService -----------------------------------------------------------------------

    def create(self, request: TuningRequest) -> RemoteJob:
        with self._lock:
            self._maybe_fail("create")
            active = sum(1 for j in self.jobs.values() if j.state in RemoteState.ACTIVE)
            if self.quota is not None and active >= self.quota:
                raise QuotaExhausted(
                    f"RESOURCE_EXHAUSTED: quota global_concurrent_tuning_jobs ({self.quota}) is in use"
                )
            self.requests.append(request)
            name = f"{self._parent}/tuningJobs/{next(self._ids)}"
            remote = RemoteJob(
                name=name,
                state=self.initial_state,
                job_id=request.job_id,
                attempt=request.attempt,
                labels={**request.labels, JOB_LABEL: request.job_id, ATTEMPT_LABEL: str(request.attempt)},
                create_time=self._clock(),
            )
            self.jobs[name] = remote
            return remote

    def get(self, name: str) -> RemoteJob:
        with self._lock:
            self._maybe_fail("get")
            if name not in self.jobs:
                raise TuningRejected(f"NOT_FOUND: {name}")
            return self._read(name)

    def find(self, job_id: str, attempt: int) -> RemoteJob | None:
        with self._lock:
            self._maybe_fail("find")
        found = self.for_job(job_id, attempt)
        return found[0] if found else None

    def cancel(self, name: str) -> None:
        with self._lock:
            self._maybe_fail("cancel")
            if name not in self.jobs:
                raise TuningRejected(f"NOT_FOUND: {name}")
            self._apply(name, RemoteState.CANCELLED, {})

    def active_jobs(self) -> list[RemoteJob]:
        """Every job holding a quota slot now, Tunedrop's or not. Listing a scripted job reads it, like `get`:
        its next step applies first (Vertex AI answers a list with each job's state now)."""
        with self._lock:
            self._maybe_fail("active_jobs")
            for name in self._scripts:
                if self.jobs[name].state in RemoteState.ACTIVE:
                    self._read(name)
            # Like the adapter, name the Tunedrop job from the labels.
            return [
                replace(
                    j,
                    job_id=j.labels.get(JOB_LABEL, j.job_id),
                    attempt=int(j.labels.get(ATTEMPT_LABEL, j.attempt)),
                )
                for j in self.jobs.values()
                if j.state in RemoteState.ACTIVE
            ]


# --------------------------------------------------------------------------------------------
# BlobStore
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    name: str
    generation: str
    data: bytes
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)

    def resource(self) -> dict[str, Any]:
        """The JSON API object resource, as a bucket notification or Eventarc event carries it."""
        return {
            "kind": "storage#object",
            "id": f"{self.bucket}/{self.name}#{self.generation}",
            "name": self.name,
            "bucket": self.bucket,
            "generation": self.generation,
            "metageneration": "1",
            "contentType": self.content_type,
            "size": str(len(self.data)),
            "metadata": dict(self.metadata),
        }


class InMemoryBlobStore(BlobStore):
    """Objects by (bucket, name, generation), without object versioning: writing an object
    again gives it a new generation and the old generation is gone."""

    FIRST_GENERATION = 1795266321404665

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()  # write(if_absent=True) holds it around put
        self.objects: dict[tuple[str, str, str], StoredObject] = {}
        self._live: dict[tuple[str, str], str] = {}
        self._generations = itertools.count(self.FIRST_GENERATION)
        self._open_failures: deque[Exception] = deque()
        self.opens = 0
        self.lists = 0
        # When each object generation was written, by the store's clock.
        self.created: dict[tuple[str, str, str], datetime] = {}

    def put(
        self,
        bucket: str,
        name: str,
        data: bytes | str,
        *,
        content_type: str = "application/jsonl",
        metadata: Mapping[str, str] | None = None,
        generation: str | int | None = None,
    ) -> StoredObject:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        with self._lock:
            gen = str(generation if generation is not None else next(self._generations))
            old = self._live.get((bucket, name))
            if old is not None:
                del self.objects[(bucket, name, old)]
            stored = StoredObject(bucket, name, gen, raw, content_type, dict(metadata or {}))
            self.objects[(bucket, name, gen)] = stored
            self.created[(bucket, name, gen)] = self._clock()
            self._live[(bucket, name)] = gen
            return stored

    def delete(self, bucket: str, name: str) -> None:
        with self._lock:
            gen = self._live.pop((bucket, name))
            del self.objects[(bucket, name, gen)]

    def get(self, bucket: str, name: str, generation: str | None = None) -> StoredObject:
        with self._lock:
            gen = generation or self._live.get((bucket, name))
            stored = self.objects.get((bucket, name, str(gen)))
            if stored is None:
                at = f" at generation {generation}" if generation else ""
                raise ObjectMissing(f"gs://{bucket}/{name}{at} does not exist.")
            return stored

    def read(self, bucket: str, name: str) -> bytes:
        return self.get(bucket, name).data

    def fail_open(self, error: Exception, times: int = 1) -> None:
        self._open_failures.extend([error] * times)

    # -- BlobStore ---------------------------------------------------------------------------

    def open(self, bucket: str, name: str, generation: str | None = None) -> IO[bytes]:
        with self._lock:
            self.opens += 1
            if self._open_failures:
                raise self._open_failures.popleft()
        return io.BufferedReader(io.BytesIO(self.get(bucket, name, generation).data))

    def write(self, bucket: str, name: str, data: bytes, content_type: str, *, if_absent: bool = False) -> str:
        with self._lock:  # check and create in one step, as GCS's ifGenerationMatch=0 does
            if if_absent and (bucket, name) in self._live:
                raise ObjectExists(f"gs://{bucket}/{name} exists.")
            self.put(bucket, name, data, content_type=content_type)
        return f"gs://{bucket}/{name}"

    def list_page(self, bucket: str, prefix: str, page_token: str, limit: int) -> tuple[list[ListedObject], str]:
        with self._lock:
            self.lists += 1
            names = sorted(n for (b, n) in self._live if b == bucket and n.startswith(prefix) and n > page_token)
            page = names[:limit]
            listed = []
            for name in page:
                stored = self.objects[(bucket, name, self._live[(bucket, name)])]
                created = self.created.get((bucket, name, stored.generation), _EARLIEST)
                listed.append(ListedObject(name, stored.generation, created, dict(stored.metadata), len(stored.data)))
        return listed, (page[-1] if len(names) > limit else "")

    def describe(self, bucket: str, name: str, generation: str | None = None) -> ObjectInfo:
        stored = self.get(bucket, name, generation)
        return ObjectInfo(stored.generation, len(stored.data), crc32c_of(stored.data))

    def copy_pinned(self, bucket: str, name: str, generation: str, destination: str) -> ObjectInfo:
        source = self.get(bucket, name, generation)
        with self._lock:
            existing = self._live.get((bucket, destination))
        if existing is not None:  # created only if absent, as with ifGenerationMatch=0
            if self.get(bucket, destination).data != source.data:
                raise CopyConflict(f"gs://{bucket}/{destination} exists with other bytes")
            return self.describe(bucket, destination)
        copied = self.put(bucket, destination, source.data, content_type=source.content_type)
        return self.describe(bucket, copied.name)


# --------------------------------------------------------------------------------------------
# Harness: an App on the fakes
# --------------------------------------------------------------------------------------------

PROJECT = "demo"
BUCKET = "ds"
BASE_ENV: dict[str, str] = {"GOOGLE_CLOUD_PROJECT": PROJECT, "TUNEDROP_BUCKET": BUCKET}

VALID_EXAMPLE = {
    "contents": [
        {"role": "user", "parts": [{"text": "What is the capital of France?"}]},
        {"role": "model", "parts": [{"text": "Paris."}]},
    ]
}


def crc32c_of(data: bytes) -> str:
    """CRC32C as Cloud Storage reports it: big-endian, base64."""
    import base64

    import google_crc32c

    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def jsonl(*examples: Any) -> bytes:
    """A JSONL file body: one compact JSON document per line."""
    return b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in examples)


VALID_DATASET = jsonl(VALID_EXAMPLE, VALID_EXAMPLE, VALID_EXAMPLE)
INVALID_DATASET = jsonl(VALID_EXAMPLE) + b"{not json\n" + jsonl({"contents": []})


def make_settings(**env: str) -> Settings:
    return Settings.from_env({**BASE_ENV, **env})


@dataclass
class Harness:
    app: App
    store: InMemoryJobStore
    publisher: RecordingPublisher
    blobs: InMemoryBlobStore
    tuning: FakeTuningService
    clock: FakeClock
    answers: FakeModelAnswers = field(default_factory=FakeModelAnswers)
    judge: FakeJudge = field(default_factory=FakeJudge)

    @property
    def settings(self) -> Settings:
        return self.app.settings

    def put_dataset(
        self,
        name: str = "a.jsonl",
        data: bytes | str = VALID_DATASET,
        *,
        metadata: Mapping[str, str] | None = None,
        bucket: str | None = None,
        event_id: str | None = None,
    ) -> UploadedObject:
        """Write a dataset into the bucket (names without a '/' go under the incoming prefix)
        and return the notification the upload service would receive for it."""
        object_name = name if "/" in name else f"{self.settings.incoming_prefix}{name}"
        stored = self.blobs.put(bucket or self.settings.bucket, object_name, data, metadata=metadata)
        return UploadedObject(
            bucket=stored.bucket,
            name=stored.name,
            generation=stored.generation,
            metadata=dict(stored.metadata),
            event_id=event_id if event_id is not None else f"evt-{stored.generation}",
        )

    def upload(self, name: str = "a.jsonl", data: bytes | str = VALID_DATASET, **kwargs: Any) -> str:
        """Put a dataset and run the upload service on it; returns the job id."""
        obj = self.put_dataset(name, data, **kwargs)
        self.app.uploads.handle(obj)
        return job_id_for(obj.bucket, obj.name, obj.generation)

    def job(self, job_id: str) -> Job:
        return self.store.job(job_id)

    def completions(self) -> list[Published]:
        return self.publisher.on(self.settings.completions_topic)

    def dispatch_messages(self) -> list[Published]:
        return self.publisher.on(self.settings.dispatch_topic)


def queued_team_job(job_id: str, team: str, now: datetime, *, priority: int = 0) -> Job:
    """A QUEUED job uploaded to `team`'s folder, enqueued at `now`."""
    job = new_job(
        job_id=job_id,
        bucket="b",
        object_name=f"incoming/{team}/{job_id}.jsonl",
        generation="1",
        base_model="gemini-3.5-flash",
        now=now,
        priority=priority,
    )
    return replace(job, team=team).moved_to(JobState.QUEUED, now, "validation passed", enqueued_at=now)


def make_harness(
    env: Mapping[str, str] | None = None,
    *,
    quota: int = 1,
    vertex_quota: int | None = None,
    clock: FakeClock | None = None,
) -> Harness:
    """An App assembled on fresh fakes; `quota` is TUNEDROP_QUOTA, `vertex_quota` Vertex AI's own."""
    clock = clock or FakeClock()
    settings = make_settings(TUNEDROP_QUOTA=str(quota), **dict(env or {}))
    store = InMemoryJobStore()
    publisher = RecordingPublisher()
    blobs = InMemoryBlobStore(clock=clock)
    tuning = FakeTuningService(quota=vertex_quota, clock=clock)
    answers, judge = FakeModelAnswers(today=lambda: clock().date()), FakeJudge()
    app = assemble(
        settings,
        store=store,
        publisher=publisher,
        blobs=blobs,
        tuning=tuning,
        clock=clock,
        answers=answers,
        judge=judge,
    )
    return Harness(
        app=app, store=store, publisher=publisher, blobs=blobs, tuning=tuning, clock=clock, answers=answers, judge=judge
    )


def fair_dispatcher(harness: Harness, policies: Policies) -> Dispatcher:
    """A dispatcher on the harness's ports that shares the quota by `policies` (weights, slot caps)."""
    app = harness.app
    context = JobContext(
        app.store, app.tuning, app.ledger, app.completions, app.publisher, app.lifecycle, app.settings, app.clock
    )
    return Dispatcher(context, policies)


def seed_job(store: InMemoryJobStore, job: Job, states: Iterable[JobState], now: datetime, **changes: Any) -> Job:
    """Walk a new job through `states` (each a legal transition) and store the result."""
    for state in states:
        job = job.moved_to(state, now, f"seeded {state.value}")
    job = replace(job, **changes)
    store.put(job)
    return job
