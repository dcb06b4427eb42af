"""Completion events in the CloudEvents Pub/Sub binding, binary content mode.

Everything in an event comes from the recorded job, so a republished event (after a crash
between recording and publishing) is byte-for-byte the same event with the same `ce-id`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.jobs import Job, JobState

SPEC_VERSION = "1.0"
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
    data: bytes
    attributes: dict[str, str]


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
    return data


def _estimated_billable_tokens(job: Job) -> int | None:
    """What validation estimated the job would bill (tokens times epochs), when it estimated it."""
    value = (job.validation or {}).get("estimated_billable_tokens")
    return int(value) if isinstance(value, int | float) else None


def completion_event(job: Job, *, project: str) -> OutgoingEvent:
    if job.state not in EVENT_TYPES:
        raise ValueError(f"job {job.job_id} is {job.state}, which has no completion event")
    attributes = {
        "ce-specversion": SPEC_VERSION,
        "ce-id": job.completion_event_id,
        "ce-source": f"//tunedrop/projects/{project}",
        "ce-type": EVENT_TYPES[job.state],
        "ce-time": iso(_terminal_time(job)) or "",
        "ce-subject": job.job_id,
        "ce-dataschema": DATA_SCHEMA,
        "content-type": "application/json",
        # Plain attributes so subscriptions can filter, e.g. attributes.state = "FAILED".
        "state": job.state.value,
        "job_id": job.job_id,
    }
    body = json.dumps(completion_data(job), sort_keys=True, separators=(",", ":")).encode()
    return OutgoingEvent(data=body, attributes=attributes)
