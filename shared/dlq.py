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

# This module is the replay on two ports (it is also the command's help text above);
# shared/adapters/pubsub_dead_letters.py implements the ports on Pub/Sub, shared/cli.py is the command.

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.errors import ConfigError

# Attributes Pub/Sub adds when it dead-letters a message; they describe that event, not the message.
DEAD_LETTER_ATTRIBUTE_PREFIX = "CloudPubSubDeadLetter"
DEFAULT_MAX = 100
PULL_BATCH = 100


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

    def to_dict(self) -> dict[str, Any]:
        """The report as `tunedrop dlq replay --json` prints it."""
        failed = None
        if self.failed is not None:
            failed = {"message_id": self.failed[0].message_id, "error": self.failed[1]}
        return {
            "ok": self.ok,
            "replayed": [{"message_id": old, "new_message_id": new} for old, new in self.replayed],
            "listed": [_listing(message) for message in self.listed],
            "failed": failed,
            "unacked": [{"message_id": message_id, "error": error} for message_id, error in self.unacked],
        }


def _listing(message: DeadLetter) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "delivery_attempt": message.delivery_attempt,
        "attributes": replay_attributes(message.attributes),
        "data_base64": base64.b64encode(message.data).decode("ascii"),
    }


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
    run = _ReplayRun(source, topic, dry_run, say)
    try:
        while len(run.seen) < max_messages:
            if not run.take(source.pull(min(PULL_BATCH, max_messages - len(run.seen)))):
                break
    finally:
        if run.held:
            source.release(run.held)
    return run.report


@dataclass
class _ReplayRun:
    """The state of one replay: what was seen, which dry-run leases to end, and the report."""

    source: DeadLetterSource
    topic: TopicPublisher
    dry_run: bool
    say: Callable[[str], None]
    report: ReplayReport = field(default_factory=ReplayReport)
    seen: set[str] = field(default_factory=set)
    held: list[str] = field(default_factory=list)  # dry run: leases to end when done

    def take(self, batch: Sequence[DeadLetter]) -> bool:
        """Handle one pulled batch; False when the run is over (nothing new arrived, or a publish failed)."""
        fresh = [m for m in batch if m.message_id not in self.seen]
        self._settle_repeats([m for m in batch if m.message_id in self.seen])
        for index, message in enumerate(fresh):
            self.seen.add(message.message_id)
            if self.dry_run:
                self._list(message)
            elif not self._republish(message):
                self.source.release([m.ack_id for m in fresh[index:]])
                return False
        return bool(fresh)

    def _settle_repeats(self, repeats: Sequence[DeadLetter]) -> None:
        """Messages delivered twice in one run (a lease ran out): replayed already, or listed already."""
        for again in repeats:
            if self.dry_run:
                self.held.append(again.ack_id)
            else:
                _ack(self.source, again, self.report)

    def _list(self, message: DeadLetter) -> None:
        self.held.append(message.ack_id)
        self.report.listed.append(message)
        self.say(_describe("would replay", message))

    def _republish(self, message: DeadLetter) -> bool:
        """Publish then acknowledge one message; False when the publish failed (the run stops there)."""
        try:
            new_id = self.topic.publish(message.data, replay_attributes(message.attributes))
        except Exception as exc:
            self.report.failed = (message, f"{type(exc).__name__}: {exc}")
            self.say(_describe("NOT replayed (publish failed, message stays dead-lettered)", message))
            return False
        self.report.replayed.append((message.message_id, new_id))
        acked = _ack(self.source, message, self.report)
        self.say(_describe(f"replayed as {new_id}" + ("" if acked else " (NOT acknowledged)"), message))
        return True


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


# ------------------------------------------------------------------------------------ resource paths


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
