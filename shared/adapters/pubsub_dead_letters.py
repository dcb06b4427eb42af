"""The dead-letter replay's ports on Pub/Sub: a pull subscription to read, a topic to republish to.

Both clients honour PUBSUB_EMULATOR_HOST, so `tunedrop dlq replay` works against the local stack too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.api_core import exceptions as gexc

from shared.dlq import DeadLetter

PULL_TIMEOUT_SECONDS = 20.0
PUBLISH_TIMEOUT_SECONDS = 30.0


class PubSubDeadLetters:
    """DeadLetterSource on a Pub/Sub pull subscription, read with synchronous pull."""

    def __init__(self, subscriber: Any, subscription: str, timeout: float = PULL_TIMEOUT_SECONDS) -> None:
        self._subscriber = subscriber
        self._subscription = subscription
        self._timeout = timeout

    def pull(self, max_messages: int) -> list[DeadLetter]:
        try:
            response = self._subscriber.pull(
                request={"subscription": self._subscription, "max_messages": max_messages}, timeout=self._timeout
            )
        except gexc.DeadlineExceeded:
            return []  # nothing arrived within the timeout
        return [
            DeadLetter(
                ack_id=str(received.ack_id),
                message_id=str(received.message.message_id),
                data=bytes(received.message.data),
                attributes={str(k): str(v) for k, v in received.message.attributes.items()},
                delivery_attempt=int(received.delivery_attempt),
            )
            for received in response.received_messages
        ]

    def ack(self, ack_ids: Sequence[str]) -> None:
        self._subscriber.acknowledge(request={"subscription": self._subscription, "ack_ids": list(ack_ids)})

    def release(self, ack_ids: Sequence[str]) -> None:
        self._subscriber.modify_ack_deadline(
            request={"subscription": self._subscription, "ack_ids": list(ack_ids), "ack_deadline_seconds": 0}
        )


class PubSubTopic:
    """TopicPublisher on a Pub/Sub topic."""

    def __init__(self, publisher: Any, topic: str, timeout: float = PUBLISH_TIMEOUT_SECONDS) -> None:
        self._publisher = publisher
        self._topic = topic
        self._timeout = timeout

    def publish(self, data: bytes, attributes: Mapping[str, str]) -> str:
        future = self._publisher.publish(self._topic, data, **dict(attributes))
        return str(future.result(timeout=self._timeout))


def connect(subscription: str, topic: str) -> tuple[PubSubDeadLetters, PubSubTopic]:
    """The dead-letter subscription and the original topic, on new Pub/Sub clients (full resource paths)."""
    from google.cloud import pubsub_v1

    source = PubSubDeadLetters(pubsub_v1.SubscriberClient(), subscription)
    return source, PubSubTopic(pubsub_v1.PublisherClient(), topic)
