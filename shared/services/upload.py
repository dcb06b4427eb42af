"""Upload trigger: one new dataset object becomes one job, validated and QUEUED or REJECTED."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from shared import logs
from shared.clock import Clock
from shared.config import Settings
from shared.errors import TransientError
from shared.jobs import Job, JobState, job_id_for, new_job
from shared.ports import BlobStore, JobStore, ObjectMissing, Publisher, Versioned
from shared.services.completions import CompletionNotifier
from shared.services.lifecycle import LifecycleEvents
from shared.validation import Issue, ValidationReport, validate_stream

# Custom metadata keys a user can set on the uploaded object (gsutil -h x-goog-meta-KEY:VALUE).
BASE_MODEL_KEYS = ("base_model", "base-model", "tunedrop-base-model")
PRIORITY_KEYS = ("priority", "tunedrop-priority")
VALIDATION_LEASE = timedelta(minutes=15)
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


class UploadOutcome(StrEnum):
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    QUEUED = "queued"
    REJECTED = "rejected"


@dataclass(frozen=True)
class UploadedObject:
    bucket: str
    name: str
    generation: str
    metadata: dict[str, str] = field(default_factory=dict)
    event_id: str = ""


class UploadService:
    def __init__(
        self,
        store: JobStore,
        blobs: BlobStore,
        publisher: Publisher,
        completions: CompletionNotifier,
        settings: Settings,
        clock: Clock,
        lifecycle: LifecycleEvents,
    ) -> None:
        self._lifecycle = lifecycle
        self._store = store
        self._blobs = blobs
        self._publisher = publisher
        self._completions = completions
        self._settings = settings
        self._clock = clock

    def accepts(self, obj: UploadedObject) -> str | None:
        """None when the object is a dataset upload, else why it is ignored."""
        prefix = self._settings.incoming_prefix
        if obj.bucket != self._settings.bucket:
            return f"bucket {obj.bucket} is not the datasets bucket {self._settings.bucket}"
        if not obj.name.startswith(prefix):
            return f"{obj.name} is not under {prefix}"
        rest = obj.name[len(prefix) :]
        if "/" in rest or not rest.endswith(".jsonl"):
            return f"{obj.name} is not a .jsonl file directly under {prefix}"
        return None

    def handle(self, obj: UploadedObject) -> UploadOutcome:
        reason = self.accepts(obj)
        if reason:
            logs.info("upload ignored", reason=reason, object=obj.name)
            return UploadOutcome.IGNORED
        job_id = job_id_for(obj.bucket, obj.name, obj.generation)
        with logs.log_context(job_id=job_id):
            current = self._open_job(job_id, obj)
            if current is None:
                return UploadOutcome.DUPLICATE
            return self._validate(current, obj)

    def _open_job(self, job_id: str, obj: UploadedObject) -> Versioned[Job] | None:
        """The job to validate, or None when this delivery has nothing left to do."""
        now = self._clock()
        fresh = new_job(
            job_id=job_id,
            bucket=obj.bucket,
            object_name=obj.name,
            generation=obj.generation,
            base_model=_first(obj.metadata, BASE_MODEL_KEYS) or self._settings.base_model,
            priority=_priority(obj.metadata),
            upload_event_id=obj.event_id,
            now=now,
        )
        created = self._store.create(fresh)
        if created:
            logs.info("job created", state=JobState.VALIDATING.value, dataset_uri=fresh.dataset_uri)
        current = self._store.get(job_id)
        if current is None:
            raise TransientError(f"job {job_id} vanished right after it was created")
        job = current.value
        if job.state is not JobState.VALIDATING:
            if job.completion_pending:
                self._completions.publish(job)
            logs.info("duplicate upload notification", state=job.state.value)
            return None
        same_delivery = bool(obj.event_id) and job.upload_event_id == obj.event_id
        if not created and not same_delivery and now - job.updated_at < VALIDATION_LEASE:
            # Another delivery is validating this upload; if it dies, ours takes over later.
            raise TransientError(f"job {job_id} is being validated by another delivery")
        return current

    def _validate(self, current: Versioned[Job], obj: UploadedObject) -> UploadOutcome:
        job = current.value
        try:
            with self._blobs.open(obj.bucket, obj.name, obj.generation) as reader:
                report = validate_stream(reader, file=job.dataset_uri)
        except ObjectMissing as exc:
            report = ValidationReport(file=job.dataset_uri)
            report.add(Issue(0, "object_missing", f"{exc} It was deleted or replaced before validation."))
        for issue in _metadata_issues(obj.metadata):
            report.add(issue)
        report_uri = self._write_report(job, report)
        now = self._clock()
        summary: dict[str, Any] = report.summary()
        if report.valid:
            moved = job.moved_to(
                JobState.QUEUED,
                now,
                "validation passed",
                validation=summary,
                report_uri=report_uri,
                enqueued_at=now,
            )
        else:
            moved = job.moved_to(
                JobState.REJECTED,
                now,
                f"validation found {report.error_count} errors",
                validation=summary,
                report_uri=report_uri,
                ended_at=now,
                error={
                    "code": "INVALID_DATASET",
                    "message": f"{_plural(report.error_count, 'problem')} in {job.dataset_uri}; see {report_uri}",
                    "first_errors": report.first_errors(),
                },
            )
        if not self._store.replace(moved, current.version):
            raise TransientError(f"job {job.job_id} changed while it was being validated")
        logs.info("job validated", state=moved.state.value, errors=report.error_count, examples=report.example_count)
        if moved.state is JobState.QUEUED:
            self._lifecycle.emit(moved, "queued", reason="validation passed")
            self._publisher.publish(
                self._settings.dispatch_topic,
                json.dumps({"reason": "queued", "job_id": job.job_id}).encode(),
                {},
            )
            return UploadOutcome.QUEUED
        self._completions.publish(moved)
        return UploadOutcome.REJECTED

    def _write_report(self, job: Job, report: ValidationReport) -> str:
        name = f"{self._settings.reports_prefix}{job.job_id}.json"
        body = json.dumps({"job_id": job.job_id, **report.to_dict()}, indent=2).encode()
        return self._blobs.write(self._settings.bucket, name, body, "application/json")


def _first(metadata: dict[str, str], keys: tuple[str, ...]) -> str:
    for key in keys:
        if metadata.get(key, "").strip():
            return metadata[key].strip()
    return ""


def _priority(metadata: dict[str, str]) -> int:
    raw = _first(metadata, PRIORITY_KEYS)
    if not _WHOLE_NUMBER.fullmatch(raw):
        return 0  # when set, reported as a metadata problem by _metadata_issues
    return max(-1000, min(1000, int(raw)))


def _metadata_issues(metadata: dict[str, str]) -> list[Issue]:
    raw = _first(metadata, PRIORITY_KEYS)
    if raw and not _WHOLE_NUMBER.fullmatch(raw):
        return [
            Issue(
                0,
                "bad_metadata",
                f"Object metadata priority={raw!r} is not a whole number: "
                "set it to an integer such as 10, or remove it.",
            )
        ]
    return []


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
