"""Publisher on Cloud Pub/Sub; the client honours PUBSUB_EMULATOR_HOST by itself."""

from __future__ import annotations

from collections.abc import Mapping

from google.api_core import exceptions as gexc
from google.cloud.pubsub_v1 import PublisherClient

from shared.errors import TransientError
from shared.ports import Publisher

PUBLISH_TIMEOUT_SECONDS = 30


class PubSubPublisher(Publisher):
    def __init__(self, client: PublisherClient, project: str) -> None:
        self._client = client
        self._project = project

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        path = self._client.topic_path(self._project, topic)
        try:
            future = self._client.publish(path, data, **dict(attributes))
            return str(future.result(timeout=PUBLISH_TIMEOUT_SECONDS))
        except (gexc.GoogleAPICallError, TimeoutError) as exc:
            raise TransientError(f"publishing to {path} failed: {exc}") from exc
