"""`tunedrop dlq replay`: republish dead letters to their topic, acknowledging each only after its publish."""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from shared import dlq
from shared.adapters import pubsub_dead_letters
from shared.cli import main
from shared.errors import ConfigError

Event = tuple[str, str]  # ("publish" | "ack" | "release", message id)

DEAD_LETTER_ATTRIBUTES = {
    "CloudPubSubDeadLetterSourceDeliveryCount": "10",
    "CloudPubSubDeadLetterSourceSubscription": "tunedrop-uploads-to-upload",
    "CloudPubSubDeadLetterSourceSubscriptionProject": "demo",
    "CloudPubSubDeadLetterSourceTopicPublishTime": "2026-01-01T00:00:00Z",
}


def dead_letter(n: int) -> dlq.DeadLetter:
    return dlq.DeadLetter(
        ack_id="",
        message_id=f"m{n}",
        data=f'{{"n": {n}}}'.encode(),
        attributes={"eventType": "OBJECT_FINALIZE", "objectId": f"incoming/{n}.jsonl", **DEAD_LETTER_ATTRIBUTES},
        delivery_attempt=10,
    )


@dataclass
class FakeDeadLetterSubscription:
    """A pull subscription: pulled messages are leased until acked, released, or their lease expires."""

    events: list[Event]
    available: deque[dlq.DeadLetter] = field(default_factory=deque)
    leased: dict[str, dlq.DeadLetter] = field(default_factory=dict)
    acked: list[str] = field(default_factory=list)
    pulls: list[int] = field(default_factory=list)
    ack_failures: int = 0
    deliveries: int = 0

    def pull(self, max_messages: int) -> list[dlq.DeadLetter]:
        self.pulls.append(max_messages)
        batch = []
        while self.available and len(batch) < max_messages:
            message = self.available.popleft()
            self.deliveries += 1
            leased = dlq.DeadLetter(
                f"ack-{self.deliveries}", message.message_id, message.data, message.attributes, message.delivery_attempt
            )
            self.leased[leased.ack_id] = leased
            batch.append(leased)
        return batch

    def ack(self, ack_ids: Sequence[str]) -> None:
        if self.ack_failures:
            self.ack_failures -= 1
            raise gexc.ServiceUnavailable("acknowledge failed")
        for ack_id in ack_ids:
            message = self.leased.pop(ack_id)
            self.acked.append(message.message_id)
            self.events.append(("ack", message.message_id))

    def release(self, ack_ids: Sequence[str]) -> None:
        for ack_id in ack_ids:
            message = self.leased.pop(ack_id)
            self.available.append(message)
            self.events.append(("release", message.message_id))

    def expire_leases(self) -> None:
        self.available.extend(self.leased.values())
        self.leased.clear()

    def remaining(self) -> set[str]:
        return {m.message_id for m in self.available} | {m.message_id for m in self.leased.values()}


@dataclass
class FakeTopic:
    events: list[Event]
    subscription: FakeDeadLetterSubscription
    published: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    fail_on: set[bytes] = field(default_factory=set)

    def publish(self, data: bytes, attributes: Mapping[str, str]) -> str:
        if data in self.fail_on:
            raise gexc.NotFound("topic not found")
        (message_id,) = [m.message_id for m in self.subscription.leased.values() if m.data == data][:1]
        assert message_id not in self.subscription.acked, "acknowledged before it was republished"
        self.published.append((data, dict(attributes)))
        self.events.append(("publish", message_id))
        return f"new-{len(self.published)}"


def setup(count: int) -> tuple[FakeDeadLetterSubscription, FakeTopic, list[Event]]:
    events: list[Event] = []
    subscription = FakeDeadLetterSubscription(events, deque(dead_letter(n) for n in range(1, count + 1)))
    return subscription, FakeTopic(events, subscription), events


def quiet(_: str) -> None:
    pass


def test_every_message_is_republished_with_its_attributes_then_acknowledged() -> None:
    subscription, topic, events = setup(3)
    report = dlq.replay(subscription, topic, say=quiet)

    assert report.ok and report.replayed == [("m1", "new-1"), ("m2", "new-2"), ("m3", "new-3")]
    assert [data for data, _ in topic.published] == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']
    assert topic.published[0][1] == {"eventType": "OBJECT_FINALIZE", "objectId": "incoming/1.jsonl"}
    assert events == [
        ("publish", "m1"),
        ("ack", "m1"),
        ("publish", "m2"),
        ("ack", "m2"),
        ("publish", "m3"),
        ("ack", "m3"),
    ]
    assert subscription.remaining() == set()


def test_a_failed_publish_leaves_that_message_and_the_rest_dead_lettered() -> None:
    subscription, topic, events = setup(4)
    topic.fail_on = {b'{"n": 2}'}
    report = dlq.replay(subscription, topic, say=quiet)

    assert not report.ok
    assert report.replayed == [("m1", "new-1")]
    assert report.failed is not None and report.failed[0].message_id == "m2" and "topic not found" in report.failed[1]
    assert subscription.acked == ["m1"]
    assert subscription.remaining() == {"m2", "m3", "m4"}
    assert subscription.leased == {}  # released at once, not left to time out
    assert ("publish", "m3") not in events


def test_a_dry_run_publishes_and_acknowledges_nothing() -> None:
    subscription, topic, _ = setup(3)
    lines: list[str] = []
    report = dlq.replay(subscription, topic, dry_run=True, say=lines.append)

    assert [m.message_id for m in report.listed] == ["m1", "m2", "m3"]
    assert topic.published == [] and subscription.acked == []
    assert subscription.remaining() == {"m1", "m2", "m3"} and subscription.leased == {}
    assert "m1: would replay" in lines[0] and "objectId=incoming/1.jsonl" in lines[0]
    assert "CloudPubSubDeadLetter" not in lines[0]


def test_max_bounds_what_is_pulled_and_replayed() -> None:
    subscription, topic, _ = setup(5)
    report = dlq.replay(subscription, topic, max_messages=3, say=quiet)

    assert [old for old, _ in report.replayed] == ["m1", "m2", "m3"]
    assert subscription.remaining() == {"m4", "m5"}
    assert max(subscription.pulls) <= 3


def test_a_message_delivered_twice_in_one_run_is_published_once() -> None:
    subscription, topic, _ = setup(2)
    subscription.ack_failures = 1  # m1's ack is lost ...
    report = dlq.replay(subscription, topic, max_messages=1, say=quiet)
    assert report.replayed == [("m1", "new-1")] and report.unacked and report.unacked[0][0] == "m1"
    assert not report.ok  # reported: it may come back

    # ... so a lease expiry hands it back while the same run continues.
    subscription2, topic2, _ = setup(2)
    subscription2.ack_failures = 1
    original_pull = subscription2.pull

    def pull_after_expiry(max_messages: int) -> list[dlq.DeadLetter]:
        subscription2.expire_leases()
        return original_pull(max_messages)

    subscription2.pull = pull_after_expiry  # type: ignore[method-assign]
    report2 = dlq.replay(subscription2, topic2, say=quiet)
    assert [data for data, _ in topic2.published] == [b'{"n": 1}', b'{"n": 2}']
    assert sorted(subscription2.acked) == ["m1", "m2"]
    assert [message_id for message_id, _ in report2.unacked] == ["m1"]


def test_an_empty_subscription_replays_nothing() -> None:
    subscription, topic, _ = setup(0)
    report = dlq.replay(subscription, topic, say=quiet)
    assert report.ok and report.replayed == [] and subscription.pulls == [dlq.DEFAULT_MAX]


def test_max_must_be_positive() -> None:
    subscription, topic, _ = setup(1)
    with pytest.raises(ValueError, match="at least 1"):
        dlq.replay(subscription, topic, max_messages=0, say=quiet)


# ------------------------------------------------------------------------------------ paths and CLI


def test_resource_paths() -> None:
    assert dlq.resource_path("topics", "tunedrop-uploads", "demo") == "projects/demo/topics/tunedrop-uploads"
    assert dlq.resource_path("subscriptions", "projects/p/subscriptions/s", None) == "projects/p/subscriptions/s"
    with pytest.raises(ConfigError, match="needs a project"):
        dlq.resource_path("topics", "tunedrop-uploads", "")
    with pytest.raises(ConfigError, match="not a topic path"):
        dlq.resource_path("topics", "projects/p/subscriptions/s", None)
    with pytest.raises(ConfigError, match="neither"):
        dlq.resource_path("topics", "a/b", "demo")


def replay_cli(
    monkeypatch: pytest.MonkeyPatch, subscription: FakeDeadLetterSubscription, topic: FakeTopic, *argv: str
) -> int:
    """Run `tunedrop dlq replay ...` on the fakes instead of Pub/Sub; returns the exit status."""
    connected: list[tuple[str, str]] = []

    def connect(subscription_path: str, topic_path: str) -> tuple[FakeDeadLetterSubscription, FakeTopic]:
        connected.append((subscription_path, topic_path))
        return subscription, topic

    monkeypatch.setattr(pubsub_dead_letters, "connect", connect)
    with pytest.raises(SystemExit) as exit_info:
        main(["dlq", "replay", *argv])
    assert connected == [("projects/p/subscriptions/s-dlq", "projects/p/topics/t")]
    return int(exit_info.value.code or 0)


def test_the_cli_replays_into_the_topic_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    subscription, topic, _ = setup(3)
    code = replay_cli(monkeypatch, subscription, topic, "--subscription", "s-dlq", "--topic", "t", "--project", "p")
    out = capsys.readouterr().out
    assert code == 0 and len(topic.published) == 3 and subscription.remaining() == set()
    assert out.startswith("projects/p/subscriptions/s-dlq (replaying into projects/p/topics/t, at most 100 messages)")
    assert "m1: replayed as new-1;" in out
    assert out.endswith("3 message(s) replayed into projects/p/topics/t.\n")


def test_the_cli_dry_run_lists_at_most_max(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    subscription, topic, _ = setup(5)
    argv = ("--subscription", "projects/p/subscriptions/s-dlq", "--topic", "projects/p/topics/t", "--max", "2")
    code = replay_cli(monkeypatch, subscription, topic, *argv, "--dry-run")
    out = capsys.readouterr().out
    assert code == 0 and topic.published == [] and subscription.remaining() == {"m1", "m2", "m3", "m4", "m5"}
    assert "(dry run: nothing is published or acknowledged, at most 2 messages)" in out
    assert out.endswith("2 message(s) would be replayed into projects/p/topics/t.\n")


def test_the_cli_json_report_is_alone_on_stdout_and_a_failed_publish_exits_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    subscription, topic, _ = setup(3)
    topic.fail_on = {b'{"n": 2}'}
    code = replay_cli(monkeypatch, subscription, topic, "--subscription", "s-dlq", "--topic", "t", "--json")
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 1
    assert report["ok"] is False and report["dry_run"] is False
    assert report["replayed"] == [{"message_id": "m1", "new_message_id": "new-1"}]
    assert report["failed"]["message_id"] == "m2" and "topic not found" in report["failed"]["error"]
    assert "m1: replayed as new-1;" in err and "publishing m2 failed" in err


def test_the_cli_json_dry_run_lists_each_message_without_dead_letter_attributes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    subscription, topic, _ = setup(1)
    code = replay_cli(
        monkeypatch,
        subscription,
        topic,
        "--subscription",
        "s-dlq",
        "--topic",
        "t",
        "--project",
        "p",
        "--json",
        "--dry-run",
    )
    (listed,) = json.loads(capsys.readouterr().out)["listed"]
    assert code == 0
    assert listed == {
        "message_id": "m1",
        "delivery_attempt": 10,
        "attributes": {"eventType": "OBJECT_FINALIZE", "objectId": "incoming/1.jsonl"},
        "data_base64": base64.b64encode(b'{"n": 1}').decode(),
    }


def test_the_cli_prints_object_names_from_dead_letters_escaped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    subscription, topic, _ = setup(0)
    hostile = dlq.DeadLetter("", "m9", b"{}", {"objectId": "incoming/\x1b[2Jx\u202e.jsonl"}, 10)
    subscription.available.append(hostile)
    code = replay_cli(monkeypatch, subscription, topic, "--subscription", "s-dlq", "--topic", "t", "--project", "p")
    out = capsys.readouterr().out
    assert code == 0
    assert "\x1b" not in out and "\u202e" not in out
    assert "objectId=incoming/\\x1b[2Jx\\u202e.jsonl" in out


@pytest.mark.parametrize("bad", ["0", "-1", "x"])
def test_the_cli_refuses_a_bad_max(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["dlq", "replay", "--subscription", "s", "--topic", "t", "--max", bad])
    assert exit_info.value.code == 2
    assert "--max" in capsys.readouterr().err


def test_the_cli_needs_a_project_for_bare_ids(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["dlq", "replay", "--subscription", "s", "--topic", "t"])
    assert exit_info.value.code == 2
    assert "needs a project" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ Pub/Sub adapters


@dataclass
class FakeSubscriberClient:
    """Answers the three calls PubSubDeadLetters makes, recording the requests."""

    messages: list[SimpleNamespace]
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    deadline_exceeded: bool = False

    def pull(self, request: dict[str, Any], timeout: float) -> SimpleNamespace:
        self.requests.append(("pull", request))
        if self.deadline_exceeded:
            raise gexc.DeadlineExceeded("no messages")
        batch, self.messages = self.messages[: request["max_messages"]], self.messages[request["max_messages"] :]
        return SimpleNamespace(received_messages=batch)

    def acknowledge(self, request: dict[str, Any]) -> None:
        self.requests.append(("acknowledge", request))

    def modify_ack_deadline(self, request: dict[str, Any]) -> None:
        self.requests.append(("modify_ack_deadline", request))


@dataclass
class FakePublisherClient:
    published: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def publish(self, topic: str, data: bytes, **attributes: str) -> SimpleNamespace:
        self.published.append((topic, data, attributes))
        return SimpleNamespace(result=lambda timeout: f"id-{len(self.published)}")


def received(n: int) -> SimpleNamespace:
    message = SimpleNamespace(message_id=f"m{n}", data=b"tick", attributes={"a": "1", **DEAD_LETTER_ATTRIBUTES})
    return SimpleNamespace(ack_id=f"ack{n}", message=message, delivery_attempt=7)


def test_the_pubsub_adapters_pull_publish_and_acknowledge() -> None:
    subscriber = FakeSubscriberClient([received(1), received(2)])
    publisher = FakePublisherClient()
    source = pubsub_dead_letters.PubSubDeadLetters(subscriber, "projects/p/subscriptions/s-dlq")
    topic = pubsub_dead_letters.PubSubTopic(publisher, "projects/p/topics/t")

    report = dlq.replay(source, topic, say=quiet)

    assert report.replayed == [("m1", "id-1"), ("m2", "id-2")]
    assert publisher.published == [
        ("projects/p/topics/t", b"tick", {"a": "1"}),
        ("projects/p/topics/t", b"tick", {"a": "1"}),
    ]
    assert subscriber.requests[0] == ("pull", {"subscription": "projects/p/subscriptions/s-dlq", "max_messages": 100})
    acks = [r for kind, r in subscriber.requests if kind == "acknowledge"]
    assert acks == [
        {"subscription": "projects/p/subscriptions/s-dlq", "ack_ids": ["ack1"]},
        {"subscription": "projects/p/subscriptions/s-dlq", "ack_ids": ["ack2"]},
    ]


def test_the_pubsub_adapter_releases_with_a_zero_deadline_and_survives_an_empty_pull() -> None:
    subscriber = FakeSubscriberClient([received(1)])
    source = pubsub_dead_letters.PubSubDeadLetters(subscriber, "projects/p/subscriptions/s-dlq")
    report = dlq.replay(
        source, pubsub_dead_letters.PubSubTopic(FakePublisherClient(), "projects/p/topics/t"), dry_run=True, say=quiet
    )
    assert [m.delivery_attempt for m in report.listed] == [7]
    assert subscriber.requests[-1] == (
        "modify_ack_deadline",
        {"subscription": "projects/p/subscriptions/s-dlq", "ack_ids": ["ack1"], "ack_deadline_seconds": 0},
    )
    empty = FakeSubscriberClient([], deadline_exceeded=True)
    assert pubsub_dead_letters.PubSubDeadLetters(empty, "projects/p/subscriptions/s").pull(10) == []
