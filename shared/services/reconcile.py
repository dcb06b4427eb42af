"""The reconciler: uploads whose notification never arrived still become jobs.

A bucket notification can be lost, or dead-lettered before any job document was written (a burst
beyond the upload function's instances turns into 429s, and each counts as a delivery attempt). On
every poll tick the reconciler reads one page of the objects under the incoming prefix, continuing
where the last tick stopped, and for each object written between TUNEDROP_RECONCILE_WINDOW_DAYS ago
and TUNEDROP_RECONCILE_GRACE_SECONDS ago that has no job, publishes the notification it should have
had to the uploads topic: the upload function then handles it like any other (same job id, so a late
real notification is a duplicate). Objects older than the window are left alone, so an upload whose
job record expired (TUNEDROP_RETENTION_DAYS) is never tuned a second time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from shared import logs
from shared.jobs import job_id_for
from shared.ports import BlobStore, ListedObject
from shared.services.base import JobContext, JobService

CURSOR_MARKER = "reconcile-cursor"
NOTIFICATION_SOURCE = "tunedrop-reconciler"


@dataclass(frozen=True)
class ReconcilePass:
    listed: int
    republished: tuple[str, ...]


class Reconciler(JobService):
    def __init__(self, context: JobContext, blobs: BlobStore) -> None:
        super().__init__(context)
        self._blobs = blobs

    def tick(self) -> ReconcilePass:
        """One page of the incoming prefix: republish the notifications of uploads that have no job."""
        settings = self._settings
        cursor = self._store.read_marker(CURSOR_MARKER) or ""
        page, next_cursor = self._blobs.list_page(
            settings.bucket, settings.incoming_prefix, cursor, settings.reconcile_page
        )
        now = self._clock()
        newest = now - timedelta(seconds=settings.reconcile_grace_seconds)
        oldest = now - timedelta(days=settings.reconcile_window_days)
        candidates = {
            job_id_for(settings.bucket, obj.name, obj.generation): obj
            for obj in page
            if oldest <= obj.created <= newest and not obj.name.endswith("/")
        }
        missing = sorted(set(candidates) - self._store.existing(sorted(candidates)))
        for job_id in missing:
            self._republish(job_id, candidates[job_id])
        if next_cursor != cursor:
            self._store.write_marker(CURSOR_MARKER, next_cursor)
        return ReconcilePass(listed=len(page), republished=tuple(missing))

    def _republish(self, job_id: str, obj: ListedObject) -> None:
        resource = {
            "kind": "storage#object",
            "bucket": self._settings.bucket,
            "name": obj.name,
            "generation": obj.generation,
            "metadata": dict(obj.metadata),
            "size": str(obj.size),
            "timeCreated": obj.created.isoformat(),
        }
        attributes = {
            "eventType": "OBJECT_FINALIZE",
            "payloadFormat": "JSON_API_V1",
            "bucketId": self._settings.bucket,
            "objectId": obj.name,
            "objectGeneration": obj.generation,
            "notificationConfig": NOTIFICATION_SOURCE,
        }
        self._publisher.publish(self._settings.uploads_topic, json.dumps(resource).encode(), attributes)
        with logs.log_context(job_id=job_id):
            logs.warning("upload without a job; notifying it again", object=obj.name, generation=obj.generation)
