"""Lifecycle events: every step of a job (queued, submitted, running, stuck, finished; waiting when its team's
budget holds it back; model_retiring) on an optional events topic, for those who want more than completions.

They are best effort: a failed publish is logged, not retried, because the state change it
describes is already recorded (the job's history keeps every step). Completion events, not
these, are the exactly-once-in-effect contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloudevents.http import CloudEvent

from shared import logs
from shared.config import Settings
from shared.events import JSON_CONTENT_TYPE, SPEC_VERSION, event_source, iso, to_pubsub
from shared.jobs import Job
from shared.ports import Publisher

KINDS = ("queued", "submitted", "running", "stuck", "finished", "model_retiring", "waiting")


class LifecycleEvents:
    def __init__(self, publisher: Publisher, settings: Settings) -> None:
        self._publisher = publisher
        self._settings = settings

    def emit(self, job: Job, kind: str, reason: str = "", *, event_key: str = "", **details: Any) -> bool:
        """Publish one step. ``event_key`` makes the ce-id of a step that does not move the job (a retirement
        notice per threshold); other steps are told apart by their place in the job's history. True when
        the event was published (or there is no events topic to publish to)."""
        if not self._settings.events_topic:
            return True
        if kind not in KINDS:
            raise ValueError(f"unknown lifecycle event kind {kind!r}")
        event = lifecycle_cloud_event(
            job, kind, project=self._settings.project, reason=reason, event_key=event_key, details=details
        )
        message = to_pubsub(event, {"kind": kind, "state": job.state.value, "job_id": job.job_id}, json_default=str)
        try:
            self._publisher.publish(self._settings.events_topic, message.data, message.attributes)
        except Exception as exc:  # best effort by design; see the module docstring
            logs.warning("lifecycle event not published", kind=kind, job_id=job.job_id, error=str(exc))
            return False
        return True


def lifecycle_cloud_event(
    job: Job,
    kind: str,
    *,
    project: str,
    reason: str = "",
    event_key: str = "",
    details: Mapping[str, Any] | None = None,
) -> CloudEvent:
    """The CloudEvent of one step of a job (see `LifecycleEvents.emit`)."""
    at = job.updated_at
    # The step's place in the job's history makes the id unique per event, even for a kind that
    # happens twice (stuck pending, then running too long).
    step = event_key or f"{kind}/{len(job.history)}{'-' + reason if kind == 'stuck' else ''}"
    attributes = {
        "specversion": SPEC_VERSION,
        "id": f"{job.job_id}/{job.attempt}/{step}",
        "source": event_source(project),
        "type": f"tunedrop.job.v1.lifecycle.{kind}",
        "time": iso(at) or "",
        "subject": job.job_id,
        "datacontenttype": JSON_CONTENT_TYPE,
    }
    data = {
        "job_id": job.job_id,
        "attempt": job.attempt,
        "kind": kind,
        "state": job.state.value,
        "team": job.team or None,
        "reason": reason,
        "at": iso(at),
        "dataset_uri": job.dataset_uri,
        "vertex_job_name": job.vertex_job_name or None,
        **(details or {}),
    }
    return CloudEvent(attributes, data)
