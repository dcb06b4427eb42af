"""Uploads whose notification never arrived become jobs on the poll tick; nothing else is touched."""

from __future__ import annotations

from datetime import timedelta

from shared.jobs import JobState, job_id_for
from shared.services.reconcile import CURSOR_MARKER, NOTIFICATION_SOURCE
from shared.services.upload import UploadedObject
from shared.triggers import pubsub_message
from tests.fakes import Harness, make_harness


def deliver_republished(h: Harness) -> list[str]:
    """Hand the notifications the reconciler published to the upload service, as Pub/Sub would."""
    handled = []
    for message in h.publisher.on(h.settings.uploads_topic):
        assert message.attributes["notificationConfig"] == NOTIFICATION_SOURCE
        resource = message.json()
        obj = UploadedObject(
            bucket=resource["bucket"],
            name=resource["name"],
            generation=resource["generation"],
            metadata=resource["metadata"],
            event_id=f"reconciled-{resource['generation']}",
        )
        h.app.uploads.handle(obj)
        handled.append(job_id_for(obj.bucket, obj.name, obj.generation))
    h.publisher.clear()
    return handled


def test_an_upload_that_was_never_notified_gets_a_job_within_two_ticks() -> None:
    h = make_harness({"TUNEDROP_RECONCILE_GRACE_SECONDS": "60"})
    lost = h.put_dataset("lost.jsonl", metadata={"priority": "3"})  # its notification never comes
    notified = h.put_dataset("notified.jsonl")
    h.app.uploads.handle(notified)
    h.publisher.clear()
    h.app.poller.poll()  # too fresh yet: a notification may still be on its way
    assert deliver_republished(h) == []
    h.clock.advance(61)
    h.app.poller.poll()
    (job_id,) = deliver_republished(h)
    assert job_id == job_id_for(lost.bucket, lost.name, lost.generation)
    job = h.job(job_id)
    assert job.state is JobState.QUEUED and job.priority == 3  # the object's metadata travelled with it
    h.clock.advance(61)
    h.app.poller.poll()
    assert deliver_republished(h) == []  # it has a job now


def test_old_uploads_and_other_prefixes_are_left_alone() -> None:
    h = make_harness({"TUNEDROP_RECONCILE_WINDOW_DAYS": "7"})
    h.put_dataset("ancient.jsonl")
    h.blobs.put("ds", "datasets/train.jsonl", b"x")
    h.blobs.put("ds", "reports/r.json", b"{}")
    h.clock.advance(timedelta(days=8).total_seconds())
    h.app.poller.poll()
    assert deliver_republished(h) == []


def test_the_bucket_is_read_one_page_per_tick_and_the_cursor_wraps() -> None:
    h = make_harness({"TUNEDROP_RECONCILE_PAGE": "2", "TUNEDROP_RECONCILE_GRACE_SECONDS": "0"})
    for n in range(5):
        h.put_dataset(f"d{n}.jsonl")
    found: list[str] = []
    for _ in range(3):
        h.clock.advance(1)
        h.app.poller.poll()
        found += deliver_republished(h)
    assert len(found) == 5 and len(set(found)) == 5
    assert h.store.read_marker(CURSOR_MARKER) == ""  # back to the start after the last page
    assert h.blobs.lists == 3


def test_a_republished_notification_is_a_valid_bucket_notification() -> None:
    h = make_harness({"TUNEDROP_RECONCILE_GRACE_SECONDS": "0"})
    h.put_dataset("lost.jsonl")
    h.clock.advance(1)
    h.app.poller.poll()
    (message,) = h.publisher.on(h.settings.uploads_topic)
    import base64

    attributes, payload = pubsub_message(
        {"message": {"attributes": message.attributes, "data": base64.b64encode(message.data).decode()}}
    )
    assert attributes["eventType"] == "OBJECT_FINALIZE" and b'"incoming/lost.jsonl"' in payload
