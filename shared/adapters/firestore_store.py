"""JobStore on Firestore: one document per job, one slot-table document, compare-and-set writes.

Conditional writes use update-time preconditions rather than transactions: they hold under
contention on Firestore and on its emulator alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared import logs
from shared.aliases import Alias, alias_document, alias_from_document
from shared.errors import TransientError
from shared.jobs import Job, JobState, UnknownJobState
from shared.ports import (
    Charge,
    DocumentRefused,
    FairShareState,
    JobStore,
    PolicyRecord,
    RunningSlot,
    SlotTable,
    TeamSpend,
    TeamUsage,
    Versioned,
)

SLOTS_DOCUMENT = "slots"
FAIRNESS_DOCUMENT = "fairness"
MARKER_PREFIX = "marker-"
_PAGE = 300
_TRANSIENT = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.Aborted)
# The server's INVALID_ARGUMENT (too large, reserved names), or the client's refusal to encode a value.
_REFUSED = (gexc.InvalidArgument, ValueError, TypeError, OverflowError)


class MissingIndex(TransientError):
    """A query needs a Firestore index that does not exist: the message names it."""


JOBS = "jobs"  # collection suffixes: the deployed collection is <prefix>_<suffix>
SPEND = "spend"  # one document per team and month: <YYYY-MM>.<team>
POLICIES = "policies"  # one document per version of the team policies, by digest
ALIASES = "aliases"  # one document per alias (shared.aliases)


@dataclass(frozen=True)
class QuerySpec:
    """One query the store runs, declared as data: the methods build their queries from these rows, and the
    deploy check (tests/unit/deploy) reads them to compare with deploy/terraform/firestore_indexes.json.

    `filters` are (field, operator) pairs whose values the method gives, in that order; `orders` are
    (field, "ASCENDING" | "DESCENDING")."""

    name: str
    collection: str
    filters: tuple[tuple[str, str], ...] = ()
    orders: tuple[tuple[str, str], ...] = ()


_TEAM_QUEUE_ORDER = (("team", "ASCENDING"), ("priority", "DESCENDING"), ("enqueued_at", "ASCENDING"))

# Every query of FirestoreJobStore, named after the method that runs it.
QUERIES: tuple[QuerySpec, ...] = (
    # Needs the composite index (state ASC, priority DESC, enqueued_at ASC).
    QuerySpec("queued", JOBS, (("state", "=="),), (("priority", "DESCENDING"), ("enqueued_at", "ASCENDING"))),
    # The fair share's queue reads; all three need the composite index (state, team, priority DESC,
    # enqueued_at ASC). queue_heads skips from team to team: one document read per team with queued work.
    QuerySpec("queue_heads_first", JOBS, (("state", "=="),), _TEAM_QUEUE_ORDER),
    QuerySpec("queue_heads_after", JOBS, (("state", "=="), ("team", ">")), _TEAM_QUEUE_ORDER),
    QuerySpec("queued_in_team", JOBS, (("state", "=="), ("team", "==")), _TEAM_QUEUE_ORDER[1:]),
    QuerySpec("in_states", JOBS, (("state", "in"),)),
    QuerySpec("completion_pending", JOBS, (("completion_pending", "=="),)),
    # Equality filters only, in document-id order: single-field indexes serve it.
    QuerySpec("on_models", JOBS, (("state", "=="), ("base_model", "in"))),
    QuerySpec("count", JOBS, (("state", "=="),)),
    QuerySpec("with_tuned_model", JOBS, (("tuned_model", "=="),)),
    # A count aggregation on two equalities: served by the (state, team, ...) index.
    QuerySpec("count_queued_in_team", JOBS, (("state", "=="), ("team", "=="))),
    QuerySpec("policy_history", POLICIES, (), (("seen_at", "DESCENDING"),)),
    QuerySpec("list_jobs", JOBS, (("state", "=="),)),
    QuerySpec("list_jobs_of_any_state", JOBS),
)
_QUERY: Mapping[str, QuerySpec] = {spec.name: spec for spec in QUERIES}


def _readable(snap: Any) -> Versioned[Job] | None:
    """The job of a document, or None (with a warning) for one a newer release wrote in a state unknown here."""
    try:
        return Versioned(Job.from_document(snap.to_dict() or {}), snap.update_time)
    except UnknownJobState as exc:
        logs.warning("job document skipped: written by a newer release", error=str(exc))
        return None


class FirestoreJobStore(JobStore):
    def __init__(self, client: firestore.Client, collection_prefix: str, retention: timedelta | None = None) -> None:
        self._client = client
        self._retention = retention
        self._jobs = client.collection(f"{collection_prefix}_{JOBS}")
        self._spend = client.collection(f"{collection_prefix}_{SPEND}")
        self._policies = client.collection(f"{collection_prefix}_{POLICIES}")
        self._aliases = client.collection(f"{collection_prefix}_{ALIASES}")
        self._collections = {JOBS: self._jobs, POLICIES: self._policies}
        self._state = client.collection(f"{collection_prefix}_state")
        self._slots = self._state.document(SLOTS_DOCUMENT)
        self._fairness = self._state.document(FAIRNESS_DOCUMENT)

    def create(self, job: Job) -> bool:
        return self._write(job, "create", (gexc.Conflict,), lambda document, data: document.create(data))

    def _document(self, job: Job) -> dict[str, Any]:
        """The stored form; a finished job gets `expire_at`, the field of the collection's TTL policy."""
        doc = job.to_document()
        doc["expire_at"] = job.updated_at + self._retention if job.state.terminal and self._retention else None
        return doc

    def get(self, job_id: str) -> Versioned[Job] | None:
        try:
            snap = self._jobs.document(job_id).get()
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore read failed: {exc}") from exc
        if not snap.exists:
            return None
        return _readable(snap)

    def replace(self, job: Job, version: Any) -> bool:
        option = self._client.write_option(last_update_time=version)
        return self._write(
            job,
            "write",
            (gexc.FailedPrecondition, gexc.NotFound),
            lambda document, data: document.update(data, option=option),
        )

    def _write(
        self,
        job: Job,
        operation: str,
        lost: tuple[type[Exception], ...],
        write: Callable[[Any, dict[str, Any]], object],
    ) -> bool:
        """`write` the job's stored form to its document: False when `lost` says another writer came first."""
        try:
            write(self._jobs.document(job.job_id), self._document(job))
        except lost:
            return False
        except _REFUSED as exc:
            raise DocumentRefused(f"Firestore refuses job {job.job_id}: {exc}") from exc
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore {operation} failed: {exc}") from exc
        return True

    def _query(self, name: str, *values: Any) -> Any:
        """The declared query `name` (see QUERIES), its filters given `values` in order."""
        spec = _QUERY[name]
        query: Any = self._collections[spec.collection]
        for (path, operator), value in zip(spec.filters, values, strict=True):
            query = query.where(filter=FieldFilter(path, operator, value))
        for path, direction in spec.orders:
            query = query.order_by(path, direction=direction)
        return query

    def _run(self, name: str, *values: Any, limit: int) -> list[Versioned[Job]]:
        try:
            snaps = list(self._query(name, *values).limit(limit).stream())
        except gexc.FailedPrecondition as exc:
            # Not a passing fault: say which index to create (deploy/terraform/firestore_indexes.json).
            raise MissingIndex(
                f"Firestore has no index for the query {name} on {self._jobs.id}; create the index that "
                f"deploy/terraform/firestore_indexes.json declares for FirestoreJobStore.{name}: {exc}"
            ) from exc
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore query failed: {exc}") from exc
        return [found for found in map(_readable, snaps) if found is not None]

    def queued(self, limit: int) -> list[Versioned[Job]]:
        return self._run("queued", JobState.QUEUED.value, limit=limit)

    def queue_heads(self, limit: int) -> list[Versioned[Job]]:
        heads = self._run("queue_heads_first", JobState.QUEUED.value, limit=1)
        while heads and len(heads) < limit:
            following = self._run("queue_heads_after", JobState.QUEUED.value, heads[-1].value.team, limit=1)
            if not following:
                break
            heads.extend(following)
        return heads

    def queued_in_team(self, team: str, limit: int) -> list[Versioned[Job]]:
        return self._run("queued_in_team", JobState.QUEUED.value, team, limit=limit)

    def in_states(self, states: Sequence[JobState], limit: int = 1000) -> list[Versioned[Job]]:
        return self._run("in_states", [s.value for s in states], limit=limit)

    def completion_pending(self, limit: int = 100) -> list[Versioned[Job]]:
        return self._run("completion_pending", True, limit=limit)

    def on_models(self, state: JobState, models: Sequence[str]) -> Iterator[Versioned[Job]]:
        return self._pages(self._query("on_models", state.value, list(models)))

    def each_in_states(self, states: Sequence[JobState]) -> Iterator[Versioned[Job]]:
        return self._pages(self._query("in_states", [s.value for s in states]))

    @staticmethod
    def _pages(query: Any) -> Iterator[Versioned[Job]]:
        """Every job the query matches, read a page at a time (document-id order)."""
        last: Any = None
        while True:
            page = query.limit(_PAGE)
            if last is not None:
                page = page.start_after(last)
            try:
                snaps = list(page.stream())
            except _TRANSIENT as exc:
                raise TransientError(f"Firestore query failed: {exc}") from exc
            for snap in snaps:
                found = _readable(snap)
                if found is not None:
                    yield found
            if len(snaps) < _PAGE:
                return
            last = snaps[-1]

    def read_alias(self, name: str) -> Versioned[Alias] | None:
        try:
            snap = self._aliases.document(name).get()
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore read failed: {exc}") from exc
        if not snap.exists:
            return None
        return Versioned(alias_from_document(snap.to_dict() or {}), snap.update_time)

    def write_alias(self, alias: Alias, version: Any) -> bool:
        try:
            return self._compare_and_set(self._aliases.document(alias.name), alias_document(alias), version)
        except _REFUSED as exc:
            raise DocumentRefused(f"Firestore refuses alias {alias.name}: {exc}") from exc

    def _compare_and_set(self, document: Any, data: dict[str, Any], version: Any) -> bool:
        """Write `data` only if the document is still at `version` (its update time; None: only if it does not
        exist): False when another writer came first."""
        try:
            if version is None:
                document.create(data)
            else:
                document.update(data, option=self._client.write_option(last_update_time=version))
        except (gexc.Conflict, gexc.FailedPrecondition, gexc.NotFound):
            return False
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore write failed: {exc}") from exc
        return True

    def list_aliases(self, limit: int) -> list[Alias]:
        try:
            snaps = list(self._aliases.order_by("__name__").limit(limit).stream())
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore query failed: {exc}") from exc
        return [alias_from_document(snap.to_dict() or {}) for snap in snaps]

    def with_tuned_model(self, model: str) -> Versioned[Job] | None:
        found = self._run("with_tuned_model", model, limit=1)
        return found[0] if found else None

    def list_jobs(self, state: JobState | None, limit: int) -> list[Job]:
        found = (
            self._run("list_jobs_of_any_state", limit=limit)
            if state is None
            else self._run("list_jobs", state.value, limit=limit)
        )
        return [v.value for v in found]

    def existing(self, job_ids: Sequence[str]) -> set[str]:
        if not job_ids:
            return set()
        try:
            snaps = self._client.get_all([self._jobs.document(job_id) for job_id in job_ids], field_paths=["job_id"])
            return {snap.id for snap in snaps if snap.exists}
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore read failed: {exc}") from exc

    def read_marker(self, name: str) -> str | None:
        try:
            snap = self._state.document(f"{MARKER_PREFIX}{name}").get()
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore read failed: {exc}") from exc
        return str((snap.to_dict() or {}).get("value")) if snap.exists else None

    def write_marker(self, name: str, value: str) -> None:
        try:
            self._state.document(f"{MARKER_PREFIX}{name}").set({"value": value})
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore write failed: {exc}") from exc

    def count(self, state: JobState) -> int:
        return self._count(self._query("count", state.value))

    def count_queued_in_team(self, team: str) -> int:
        return self._count(self._query("count_queued_in_team", JobState.QUEUED.value, team))

    @staticmethod
    def _count(base: Any) -> int:
        query: Any = base.count()
        try:
            return int(query.get()[0][0].value)
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore count failed: {exc}") from exc

    def read_slots(self) -> Versioned[SlotTable]:
        try:
            snap = self._slots.get()
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore read failed: {exc}") from exc
        if not snap.exists:
            return Versioned(SlotTable(), None)
        data = snap.to_dict() or {}
        table = SlotTable(
            holders=dict(data.get("holders", {})),
            backoff_until=data.get("backoff_until"),
            backoff_level=int(data.get("backoff_level", 0)),
            teams={str(job_id): str(team) for job_id, team in dict(data.get("holder_teams", {})).items()},
        )
        return Versioned(table, snap.update_time)

    def write_slots(self, slots: SlotTable, version: Any) -> bool:
        data = {
            "holders": dict(slots.holders),
            "backoff_until": slots.backoff_until,
            "backoff_level": slots.backoff_level,
            "holder_teams": dict(slots.teams),
        }
        return self._compare_and_set(self._slots, data, version)

    def read_fairness(self) -> Versioned[FairShareState]:
        try:
            snap = self._fairness.get()
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore read failed: {exc}") from exc
        if not snap.exists:
            return Versioned(FairShareState(), None)
        data = snap.to_dict() or {}
        # Lists of records, not maps: the default team's name is "", which cannot be a field name.
        teams = {
            str(row["team"]): TeamUsage(float(row.get("vtime", 0.0)), bool(row.get("backlogged", False)))
            for row in data.get("teams", [])
        }
        running = {str(row["job_id"]): RunningSlot(str(row["team"]), row["since"]) for row in data.get("running", [])}
        return Versioned(FairShareState(teams, running), snap.update_time)

    def write_fairness(self, state: FairShareState, version: Any) -> bool:
        data = {
            "teams": [
                {"team": team, "vtime": usage.vtime, "backlogged": usage.backlogged}
                for team, usage in sorted(state.teams.items())
            ],
            "running": [
                {"job_id": job_id, "team": slot.team, "since": slot.since}
                for job_id, slot in sorted(state.running.items())
            ],
        }
        return self._compare_and_set(self._fairness, data, version)

    def read_spend(self, team: str, month: str) -> Versioned[TeamSpend]:
        try:
            snap = self._spend.document(f"{month}.{team}").get()
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore read failed: {exc}") from exc
        if not snap.exists:
            return Versioned(TeamSpend(), None)
        rows = (snap.to_dict() or {}).get("charges", [])
        charges = {
            str(row["key"]): Charge(
                float(row["estimated_usd"]), None if row.get("actual_usd") is None else float(row["actual_usd"])
            )
            for row in rows
        }
        data = snap.to_dict() or {}
        settled = TeamSpend(charges, float(data.get("settled_usd", 0.0)), int(data.get("settled_count", 0)))
        return Versioned(settled, snap.update_time)

    def write_spend(self, team: str, month: str, spend: TeamSpend, version: Any) -> bool:
        data = {
            "team": team,
            "month": month,
            "total_usd": spend.total_usd,
            "settled_usd": spend.settled_usd,
            "settled_count": spend.settled_count,
            # A list of records: a job id is a fine map key, but "/" in <job_id>/<attempt> reads as a path.
            "charges": [
                {"key": key, "estimated_usd": charge.estimated_usd, "actual_usd": charge.actual_usd}
                for key, charge in sorted(spend.charges.items())
            ],
        }
        return self._compare_and_set(self._spend.document(f"{month}.{team}"), data, version)

    def record_policy(self, record: PolicyRecord) -> bool:
        data = {
            "digest": record.digest,
            "policies": record.policies,
            "changed_by": record.changed_by,
            "reason": record.reason,
            "seen_at": record.seen_at,
        }
        try:
            self._policies.document(record.record_id).create(data)
        except gexc.Conflict:
            return False
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore write failed: {exc}") from exc
        return True

    def policy_history(self, limit: int) -> list[PolicyRecord]:
        try:
            snaps = list(self._query("policy_history").limit(limit).stream())
        except _TRANSIENT as exc:
            raise TransientError(f"Firestore query failed: {exc}") from exc
        records = []
        for snap in snaps:
            data = snap.to_dict() or {}
            records.append(
                PolicyRecord(
                    str(data["digest"]),
                    str(data["policies"]),
                    str(data.get("changed_by", "")),
                    str(data.get("reason", "")),
                    data["seen_at"],
                )
            )
        return records
