"""Cloud Run functions entry points. Each one parses its event and calls one service."""

import functions_framework
from cloudevents.http import CloudEvent

from shared.entrypoints import handle_dispatch, handle_evaluate, handle_poll, handle_upload
from shared.logs import configure_logging

# The composition root: every record of this process, ours and the libraries', is a JSON line.
configure_logging()


@functions_framework.cloud_event
def on_upload(event: CloudEvent) -> None:
    """A dataset was written to the bucket (GCS notification via Pub/Sub push, or Eventarc)."""
    handle_upload(event)


@functions_framework.cloud_event
def on_dispatch(event: CloudEvent) -> None:
    """A job was queued, a slot freed, or a poll tick passed: submit what fits."""
    handle_dispatch(event)


@functions_framework.cloud_event
def on_evaluate(event: CloudEvent) -> None:
    """A job with promote_as succeeded: judge its model against the alias's champion, promote or hold it."""
    handle_evaluate(event)


@functions_framework.cloud_event
def on_poll(event: CloudEvent) -> None:
    """The scheduler's tick: read active jobs from Vertex AI and record outcomes."""
    handle_poll(event)
