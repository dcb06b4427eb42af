"""Replay dead-lettered messages: `tunedrop dlq replay`.

A message that a function failed `max_delivery_attempts` times lands on the dead-letter topic of its
subscription, and the pull subscription on that topic keeps it. Once the cause is fixed, `replay`
pulls those messages with synchronous pull, publishes each one (data and attributes) to the topic it
originally came from, and acknowledges it on the dead-letter subscription only after that publish
succeeded: a crash or a failed publish leaves the message dead-lettered, never lost. `--dry-run`
lists what would be replayed and hands every message back untouched.

Replaying publishes to the topic, so every subscription of that topic receives the message again
(the poll topic feeds both the poller and the dispatcher). The functions are idempotent on
redelivery, which is what makes a replay safe.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.errors import ConfigError

# Attributes Pub/Sub adds when it dead-letters a message; they describe that event, not the message.
DEAD_LETTER_ATTRIBUTE_PREFIX = "CloudPubSubDeadLetter"
DEFAULT_MAX = 100
PULL_BATCH = 100
PULL_TIMEOUT_SECONDS = 20.0
PUBLISH_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class DeadLetter:
    """One message pulled from a dead-letter subscription."""

    ack_id: str
    message_id: str
    data: bytes
    attributes: Mapping[str, str]
    delivery_attempt: int = 0


class DeadLetterSource(Protocol):
    """A dead-letter subscription, read with synchronous pull."""

    def pull(self, max_messages: int) -> list[DeadLetter]:
        """Up to max_messages messages, leased to the caller; an empty list when none is waiting."""
        ...

    def ack(self, ack_ids: Sequence[str]) -> None:
        """Remove the messages from the subscription for good."""
        ...

    def release(self, ack_ids: Sequence[str]) -> None:
        """End the leases now: the messages are available again, still dead-lettered."""
        ...


class TopicPublisher(Protocol):
    """The topic the dead letters originally came from."""

    def publish(self, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish and wait until the topic has the message; returns its id, raises on failure."""
        ...


def replay_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    """The message's own attributes, without those Pub/Sub added when it dead-lettered it."""
    return {k: v for k, v in attributes.items() if not k.startswith(DEAD_LETTER_ATTRIBUTE_PREFIX)}


@dataclass
class ReplayReport:
    replayed: list[tuple[str, str]] = field(default_factory=list)  # (dead-letter message id, new message id)
    listed: list[DeadLetter] = field(default_factory=list)  # dry run: what would be replayed
    failed: tuple[DeadLetter, str] | None = None  # the message whose publish failed, and why
    unacked: list[tuple[str, str]] = field(default_factory=list)  # published, but the ack failed

    @property
    def ok(self) -> bool:
        return self.failed is None and not self.unacked


def replay(
    source: DeadLetterSource,
    topic: TopicPublisher,
    *,
    max_messages: int = DEFAULT_MAX,
    dry_run: bool = False,
    say: Callable[[str], None] = print,
) -> ReplayReport:
    """Republish up to max_messages dead letters to the topic, acknowledging each after its publish.

    Stops at the first failed publish: that message and the rest of its batch are released, still
    dead-lettered. In a dry run nothing is published or acknowledged; the messages stay leased until
    the end (so a later pull does not return them again) and are then released.
    """
    if max_messages < 1:
        raise ValueError("max_messages must be at least 1")
    report = ReplayReport()
    seen: set[str] = set()
    held: list[str] = []  # dry run: leases to end when done
    try:
        while len(seen) < max_messages:
            batch = source.pull(min(PULL_BATCH, max_messages - len(seen)))
            fresh = [m for m in batch if m.message_id not in seen]
            for again in (m for m in batch if m.message_id in seen):
                # Delivered twice in one run (a lease ran out): replayed already, or listed already.
                if dry_run:
                    held.append(again.ack_id)
                else:
                    _ack(source, again, report)
            if not fresh:
                break
            for index, message in enumerate(fresh):
                seen.add(message.message_id)
                if dry_run:
                    held.append(message.ack_id)
                    report.listed.append(message)
                    say(_describe("would replay", message))
                    continue
                try:
                    new_id = topic.publish(message.data, replay_attributes(message.attributes))
                except Exception as exc:
                    report.failed = (message, f"{type(exc).__name__}: {exc}")
                    source.release([m.ack_id for m in fresh[index:]])
                    say(_describe("NOT replayed (publish failed, message stays dead-lettered)", message))
                    return report
                report.replayed.append((message.message_id, new_id))
                acked = _ack(source, message, report)
                say(_describe(f"replayed as {new_id}" + ("" if acked else " (NOT acknowledged)"), message))
    finally:
        if held:
            source.release(held)
    return report


def _ack(source: DeadLetterSource, message: DeadLetter, report: ReplayReport) -> bool:
    try:
        source.ack([message.ack_id])
    except Exception as exc:
        report.unacked.append((message.message_id, f"{type(exc).__name__}: {exc}"))
        return False
    return True


def _describe(what: str, message: DeadLetter) -> str:
    attributes = ", ".join(f"{k}={v}" for k, v in sorted(replay_attributes(message.attributes).items()))
    preview = message.data[:80].decode("utf-8", errors="replace")
    more = "..." if len(message.data) > 80 else ""
    return (
        f"{message.message_id}: {what}; {len(message.data)} bytes, {message.delivery_attempt or '?'} deliveries, "
        f"attributes {{{attributes}}}, data {preview!r}{more}"
    )


# ------------------------------------------------------------------------------------ Pub/Sub


def resource_path(kind: str, value: str, project: str | None) -> str:
    """projects/P/<kind>/<id> from a full path, or from an id and the project."""
    if value.startswith("projects/"):
        parts = value.split("/")
        if len(parts) != 4 or parts[2] != kind or not parts[1] or not parts[3]:
            raise ConfigError(f"{value!r} is not a {kind[:-1]} path like projects/PROJECT/{kind}/NAME")
        return value
    if "/" in value or not value:
        raise ConfigError(f"{value!r} is neither a {kind[:-1]} id nor projects/PROJECT/{kind}/NAME")
    if not project:
        raise ConfigError(f"--{kind[:-1]} {value} needs a project: pass --project or set GOOGLE_CLOUD_PROJECT")
    return f"projects/{project}/{kind}/{value}"


class PubSubDeadLetters:
    """DeadLetterSource on a Pub/Sub pull subscription (honours PUBSUB_EMULATOR_HOST)."""

    def __init__(self, subscriber: Any, subscription: str, timeout: float = PULL_TIMEOUT_SECONDS) -> None:
        self._subscriber = subscriber
        self._subscription = subscription
        self._timeout = timeout

    def pull(self, max_messages: int) -> list[DeadLetter]:
        from google.api_core import exceptions as gexc

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


# ------------------------------------------------------------------------------------ command line


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _cmd_replay(args: argparse.Namespace) -> int:
    project = args.project or os.environ.get("GOOGLE_CLOUD_PROJECT", "")
    subscription = resource_path("subscriptions", args.subscription, project)
    topic = resource_path("topics", args.topic, project)

    from google.cloud import pubsub_v1

    source = PubSubDeadLetters(pubsub_v1.SubscriberClient(), subscription)
    target = PubSubTopic(pubsub_v1.PublisherClient(), topic)
    mode = "dry run: nothing is published or acknowledged" if args.dry_run else f"replaying into {topic}"
    print(f"{subscription} ({mode}, at most {args.max_messages} messages)")
    report = replay(source, target, max_messages=args.max_messages, dry_run=args.dry_run)
    if args.dry_run:
        print(f"{len(report.listed)} message(s) would be replayed into {topic}.")
    else:
        print(f"{len(report.replayed)} message(s) replayed into {topic}.")
    if report.failed is not None:
        message, error = report.failed
        print(
            f"tunedrop: publishing {message.message_id} failed ({error}); it and the rest stay dead-lettered.",
            file=sys.stderr,
        )
    for message_id, error in report.unacked:
        print(
            f"tunedrop: {message_id} was replayed but not acknowledged ({error}); it may be replayed again.",
            file=sys.stderr,
        )
    return 0 if report.ok else 1


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dlq replay` to the tunedrop command line (shared/cli.py)."""
    dlq = sub.add_parser("dlq", help="dead-lettered messages")
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    replay_parser = actions.add_parser(
        "replay",
        help="republish dead-lettered messages to their original topic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay_parser.add_argument(
        "--subscription", required=True, help="dead-letter subscription (id or projects/P/subscriptions/S)"
    )
    replay_parser.add_argument(
        "--topic", required=True, help="topic the messages came from (id or projects/P/topics/T)"
    )
    replay_parser.add_argument(
        "--max",
        dest="max_messages",
        type=_positive,
        metavar="N",
        default=DEFAULT_MAX,
        help=f"at most this many (default {DEFAULT_MAX})",
    )
    replay_parser.add_argument(
        "--dry-run", action="store_true", help="list the messages, publish and acknowledge nothing"
    )
    replay_parser.add_argument("--project", help="project of ids given without one (default: GOOGLE_CLOUD_PROJECT)")
    replay_parser.set_defaults(func=_cmd_replay)
