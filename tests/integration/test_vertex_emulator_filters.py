"""ListTuningJobs filters and page tokens, on the emulator object (the client adds nothing here)."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from tunedrop_local.vertex_emulator import EmulatorError, VertexEmulator

from tests.integration.vertex import PARENT, FakeClock, tuning_job

pytestmark = pytest.mark.integration


def _rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> VertexEmulator:
    return VertexEmulator(quota=10, job_seconds=100, env={}, clock=clock)


def _names(emulator: VertexEmulator, filter_text: str) -> list[str]:
    return [job.name for job in emulator.list_tuning_jobs(PARENT, filter_text).tuning_jobs]


def test_create_time_filters_compare_timestamps(emulator: VertexEmulator, clock: FakeClock) -> None:
    first_at = clock.now
    first = emulator.create_tuning_job(PARENT, tuning_job()).name
    clock.advance(10)
    second = emulator.create_tuning_job(PARENT, tuning_job()).name
    middle = _rfc3339(first_at + 5)

    assert _names(emulator, f'create_time>="{middle}"') == [second]
    assert _names(emulator, f'createTime<"{middle}"') == [first]
    assert _names(emulator, f'create_time="{_rfc3339(first_at)}"') == [first]
    assert _names(emulator, f'create_time!="{_rfc3339(first_at)}"') == [second]
    assert _names(emulator, f'create_time<="{_rfc3339(first_at + 10)}" AND create_time>"{middle}"') == [second]
    # Another offset names the same instant.
    assert _names(emulator, f'create_time>="{middle.replace("Z", "+00:00")}"') == [second]


@pytest.mark.parametrize(
    ("filter_text", "fragment"),
    [
        ("display_name=x", "Unsupported filter 'display_name=x' at position 0; supported: labels.KEY="),
        ('labels.team="a" OR state=JOB_STATE_RUNNING', "at position 16"),
        ('labels.team="a" AND', "at position 16"),
        ("state=RUNNING", "Unknown job state 'RUNNING'"),
        ("state<JOB_STATE_RUNNING", "Unsupported filter term state<'JOB_STATE_RUNNING'"),
        ("create_time:*", "Unsupported filter term create_time:'*'"),
        ('create_time>"2026-05-29T00:00:00"', "lacks a UTC offset"),
        ('create_time>"yesterday"', "create_time must be an RFC 3339 timestamp"),
        ("labels.team:a", "Unsupported filter term labels.team:'a'"),
        ('labels.team>"a"', "Unsupported filter term labels.team>'a'"),
    ],
)
def test_unsupported_filters_say_what_is_wrong(emulator: VertexEmulator, filter_text: str, fragment: str) -> None:
    with pytest.raises(EmulatorError) as caught:
        emulator.list_tuning_jobs(PARENT, filter_text)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in caught.value.message


def test_page_tokens_walk_back_in_creation_order(emulator: VertexEmulator) -> None:
    names = [emulator.create_tuning_job(PARENT, tuning_job()).name for _ in range(3)]
    first = emulator.list_tuning_jobs(PARENT, page_size=2)
    assert [job.name for job in first.tuning_jobs] == names[:0:-1]
    rest = emulator.list_tuning_jobs(PARENT, page_size=2, page_token=first.next_page_token)
    assert [job.name for job in rest.tuning_jobs] == names[:1]
    assert rest.next_page_token == ""

    other_parent = PARENT.replace("us-central1", "europe-west4")
    with pytest.raises(EmulatorError, match="parent and filter must stay the same"):
        emulator.list_tuning_jobs(other_parent, page_token=first.next_page_token)
    with pytest.raises(EmulatorError, match="Invalid page_token"):
        emulator.list_tuning_jobs(PARENT, page_token="%%%")
