"""The CloudEvents Tunedrop publishes, and the Pub/Sub binding (binary content mode) they travel in.

Each event is built once as a `cloudevents` CloudEvent; `to_pubsub` turns it into message bytes and
`ce-*` attributes. Everything in a completion event comes from the recorded job, so a republished
event (after a crash between recording and publishing) is byte-for-byte the same event with the
same `ce-id`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from shared.aliases import Alias, Champion
from shared.evaluation import named_results
from shared.jobs import Job, JobState

SPEC_VERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"
# The JSON Schema of completion event data, named in each event's dataschema attribute.
DATA_SCHEMA = "https://github.com/tunedrop/tunedrop/schemas/completion-event-data.v1.json"
EVENT_TYPES = {
    JobState.SUCCEEDED: "tunedrop.job.v1.succeeded",
    JobState.FAILED: "tunedrop.job.v1.failed",
    JobState.CANCELLED: "tunedrop.job.v1.cancelled",
    JobState.REJECTED: "tunedrop.job.v1.rejected",
}


@dataclass(frozen=True)
class OutgoingEvent:
    """One Pub/Sub message: the event's data and its message attributes."""

    data: bytes
    attributes: dict[str, str]


def event_source(project: str) -> str:
    return f"//tunedrop/projects/{project}"


def _binding_attribute(name: str) -> str:
    """The Pub/Sub attribute that carries a CloudEvent context attribute (the binding's naming)."""
    return "content-type" if name == "datacontenttype" else f"ce-{name}"


def to_pubsub(
    event: CloudEvent, filters: Mapping[str, str], *, json_default: Callable[[Any], Any] | None = None
) -> OutgoingEvent:
    """The event in the CloudEvents Pub/Sub binding, binary content mode: its data as compact JSON with
    sorted keys (so the same event is the same bytes), its context attributes as `ce-*` attributes and
    `content-type`, then the plain `filters` attributes that subscriptions can filter on."""
    marshal = partial(json.dumps, sort_keys=True, separators=(",", ":"), default=json_default)
    binding, body = to_binary(event, data_marshaller=marshal)
    # to_binary lists content-type first; keep the order the event gives its attributes in.
    names = [_binding_attribute(name) for name in event]
    attributes = {name: binding[name] for name in names if name in binding}
    return OutgoingEvent(data=body, attributes={**attributes, **filters})


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _terminal_time(job: Job) -> datetime:
    for entry in reversed(job.history):
        if entry.to_state == job.state.value:
            return entry.at
    return job.updated_at


def completion_data(job: Job) -> dict[str, Any]:
    ended = job.ended_at or _terminal_time(job)
    data: dict[str, Any] = {
        "job_id": job.job_id,
        "attempt": job.attempt,
        "state": job.state.value,
        "team": job.team or None,
        "dataset_uri": job.dataset_uri,
        "validation_dataset_uri": job.validation_uri or None,
        "manifest_uri": job.manifest_uri or None,
        "base_model": job.base_model,
        "hyper_parameters": job.hyper_parameters,
        "display_name": job.display_name,
        "labels": job.labels,
        "report_uri": job.report_uri or None,
        "validation": job.validation or None,
        "vertex_job_name": job.vertex_job_name or None,
        "tuned_model": job.tuned_model or None,
        "endpoint": job.endpoint or None,
        "error": job.error,
        "checkpoints": job.checkpoints,
        "tuning_stats": job.tuning_stats or None,
        "estimated_billable_tokens": _estimated_billable_tokens(job),
        "billable_tokens": job.tuning_stats.get("billable_token_count") if job.tuning_stats else None,
        "warnings": job.warnings,
        "created_at": iso(job.created_at),
        "enqueued_at": iso(job.enqueued_at),
        "started_at": iso(job.started_at),
        "ended_at": iso(ended),
        "duration_seconds": round((ended - job.started_at).total_seconds(), 3) if job.started_at else None,
    }
    # Optional fields (schema v1 grows compatibly): only when there is something to say, so events of jobs
    # without them are byte for byte as before.
    if job.evaluations:
        data["evaluations"] = named_results(job.evaluations, job.evaluation)
    if job.experiment:
        data["experiment"] = job.experiment
    if job.detail_state:
        data["detail_state"] = job.detail_state
    if job.promote_as:
        data["evaluation_gate"] = _gate_status(job)
    return data


def _estimated_billable_tokens(job: Job) -> int | None:
    """What validation estimated the job would bill (tokens times epochs), when it estimated it."""
    value = (job.validation or {}).get("estimated_billable_tokens")
    return int(value) if isinstance(value, int | float) else None


# The evaluation gate's events (shared/services/gate.py), on the completions topic beside the completion events.
MODEL_DATA_SCHEMA = "https://github.com/tunedrop/tunedrop/schemas/model-event-data.v1.json"
MODEL_EVENT_KINDS = ("promoted", "held", "candidate_ready")


def model_event(
    job: Job,
    kind: str,
    verdict: Mapping[str, Any] | None,
    alias: Alias | None,
    *,
    project: str,
    now: datetime,
    event_id: str = "",
    actor: str = "",
    reason: str = "",
) -> OutgoingEvent:
    """`tunedrop.model.v1.<kind>` about the job's tuned model and its alias: the gate's verdict (None for an
    operator's promote or rollback), and the alias's champion as it now is. `event_id` defaults to
    <job_id>/<attempt>/<kind>, one per job, attempt and verdict."""
    if kind not in MODEL_EVENT_KINDS:
        raise ValueError(f"no model event of kind {kind}")
    judged = dict(verdict or {})
    data: dict[str, Any] = {
        "alias": job.promote_as or (alias.name if alias else ""),
        "team": alias.team if alias is not None else job.team,
        "job_id": job.job_id,
        "kind": kind,
        "tuned_model": job.tuned_model or None,
        "endpoint": judged.get("candidate_model") or job.endpoint or None,
        "checkpoint_id": judged.get("checkpoint_id") or None,
        "verdict": judged if verdict is not None else None,
        "champion": _champion_data(alias.champion if alias is not None else None),
        "actor": actor or None,
        "reason": reason or judged.get("reason") or None,
    }
    attributes = {
        "specversion": SPEC_VERSION,
        "id": event_id or f"{job.job_id}/{job.attempt}/{kind}",
        "source": event_source(project),
        "type": f"tunedrop.model.v1.{kind}",
        "time": iso(now) or "",
        "subject": data["alias"],
        "dataschema": MODEL_DATA_SCHEMA,
        "datacontenttype": JSON_CONTENT_TYPE,
    }
    return to_pubsub(CloudEvent(attributes, data), {"alias": data["alias"], "job_id": job.job_id, "kind": kind})


def champion_event(
    alias: Alias, *, project: str, now: datetime, actor: str, reason: str, event_id: str
) -> OutgoingEvent:
    """`tunedrop.model.v1.promoted` for an operator's move of the alias (promote or rollback): the champion it
    names now. `event_id` is the move's (<alias>/<revision>), the same when a command run again announces it."""
    champion = alias.champion
    if champion is None:
        raise ValueError(f"alias {alias.name} names no champion to announce")
    data: dict[str, Any] = {
        "alias": alias.name,
        "team": alias.team,
        "job_id": champion.job_id,
        "kind": "promoted",
        "tuned_model": champion.tuned_model,
        "endpoint": champion.endpoint,
        "checkpoint_id": champion.checkpoint_id or None,
        "verdict": None,
        "champion": _champion_data(champion),
        "actor": actor,
        "reason": reason,
    }
    attributes = {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": event_source(project),
        "type": "tunedrop.model.v1.promoted",
        "time": iso(now) or "",
        "subject": alias.name,
        "dataschema": MODEL_DATA_SCHEMA,
        "datacontenttype": JSON_CONTENT_TYPE,
    }
    return to_pubsub(CloudEvent(attributes, data), {"alias": alias.name, "job_id": champion.job_id, "kind": "promoted"})


def _gate_status(job: Job) -> dict[str, Any]:
    """What the completion event says of the evaluation gate: it judges a succeeded job after this event (its
    verdict comes in a tunedrop.model.v1.* event); any other outcome is not judged."""
    if job.verdict is not None:
        status = str(job.verdict.get("verdict", "pending"))
    else:
        status = "pending" if job.state is JobState.SUCCEEDED else "not_evaluated"
    return {"alias": job.promote_as, "status": status}


def _champion_data(champion: Champion | None) -> dict[str, Any] | None:
    if champion is None:
        return None
    return {
        "job_id": champion.job_id,
        "tuned_model": champion.tuned_model,
        "endpoint": champion.endpoint,
        "checkpoint_id": champion.checkpoint_id or None,
        "promoted_at": iso(champion.promoted_at),
    }


def completion_cloud_event(job: Job, *, project: str) -> CloudEvent:
    """The completion CloudEvent of a job in a terminal state."""
    if job.state not in EVENT_TYPES:
        raise ValueError(f"job {job.job_id} is {job.state}, which has no completion event")
    attributes = {
        "specversion": SPEC_VERSION,
        "id": job.completion_event_id,
        "source": event_source(project),
        "type": EVENT_TYPES[job.state],
        "time": iso(_terminal_time(job)) or "",
        "subject": job.job_id,
        "dataschema": DATA_SCHEMA,
        "datacontenttype": JSON_CONTENT_TYPE,
    }
    return CloudEvent(attributes, completion_data(job))


def completion_event(job: Job, *, project: str) -> OutgoingEvent:
    """The completion event as published, with plain attributes so subscriptions can filter, e.g.
    attributes.state = "FAILED"."""
    event = completion_cloud_event(job, project=project)
    return to_pubsub(event, {"state": job.state.value, "job_id": job.job_id})
