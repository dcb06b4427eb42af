"""A local stand-in for Cloud Scheduler: publishes a poll tick every TUNEDROP_POLL_SECONDS."""

from __future__ import annotations

import json
import os
import signal
import threading
from datetime import UTC, datetime

from google.cloud.pubsub_v1 import PublisherClient
from tunedrop_local.stack import POLL_SECONDS

from shared import logs
from shared.config import Settings


def main() -> None:
    logs.configure_logging()
    settings = Settings.from_env()  # the stack's settings: project and poll topic
    interval = float(os.environ.get("TUNEDROP_POLL_SECONDS") or POLL_SECONDS)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    publisher = PublisherClient()
    path = publisher.topic_path(settings.project, settings.poll_topic)
    tick = 0
    while not stop.wait(interval):
        tick += 1
        body = {"tick": tick, "time": datetime.now(UTC).isoformat()}
        try:
            publisher.publish(path, json.dumps(body).encode()).result(timeout=10)
        except Exception as exc:  # keep ticking: a missed tick only delays the next poll
            logs.warning("poll tick not published", error=str(exc))


if __name__ == "__main__":
    main()
