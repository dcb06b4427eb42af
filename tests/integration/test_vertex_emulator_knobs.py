"""The emulator object on its own: its knobs and its lock, without gRPC in between."""

from __future__ import annotations

import threading

import grpc
import pytest
from tunedrop_local.vertex_emulator import ConfigError, EmulatorConfig, EmulatorError, VertexEmulator

from tests.integration.vertex import PARENT, FakeClock, tuning_job

pytestmark = pytest.mark.integration


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_concurrent_creates_respect_quota(clock: FakeClock) -> None:
    emulator = VertexEmulator(quota=3, env={}, clock=clock)
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            job = emulator.create_tuning_job(PARENT, tuning_job())
        except EmulatorError as err:
            assert err.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            return
        with lock:
            results.append(job.name)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3
    assert len(set(results)) == 3
    assert emulator.active_job_count() == 3


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"TUNEDROP_EMULATOR_QUOTA": "many"}, "TUNEDROP_EMULATOR_QUOTA"),
        ({"TUNEDROP_QUOTA": "-1"}, "TUNEDROP_QUOTA"),
        ({"TUNEDROP_EMULATOR_JOB_SECONDS": "soon"}, "TUNEDROP_EMULATOR_JOB_SECONDS"),
        ({"TUNEDROP_EMULATOR_JOB_SECONDS": "-3"}, "TUNEDROP_EMULATOR_JOB_SECONDS"),
        ({"TUNEDROP_EMULATOR_FAIL_RATE": "1.5"}, "TUNEDROP_EMULATOR_FAIL_RATE"),
        ({"TUNEDROP_EMULATOR_UNAVAILABLE_RATE": "nan"}, "TUNEDROP_EMULATOR_UNAVAILABLE_RATE"),
        ({"TUNEDROP_EMULATOR_SEED": "0.5"}, "TUNEDROP_EMULATOR_SEED"),
    ],
)
def test_invalid_knobs_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        VertexEmulator(env=env)


def test_knob_precedence() -> None:
    assert VertexEmulator(env={}).config.quota == 1
    assert VertexEmulator(env={"TUNEDROP_QUOTA": "4"}).config.quota == 4
    env = {"TUNEDROP_QUOTA": "4", "TUNEDROP_EMULATOR_QUOTA": "6", "TUNEDROP_EMULATOR_JOB_SECONDS": "2.5"}
    config = VertexEmulator(env=env).config
    assert (config.quota, config.job_seconds) == (6, 2.5)
    assert VertexEmulator(quota=9, env=env).config.quota == 9
    defaults = VertexEmulator(env={}).config
    assert (defaults.job_seconds, defaults.fail_rate, defaults.unavailable_rate, defaults.seed) == (5.0, 0, 0, 0)
    with pytest.raises(ConfigError, match="fail_rate"):
        VertexEmulator(fail_rate=2, env={})


@pytest.mark.parametrize(
    ("arguments", "env", "message"),
    [
        ({}, {"TUNEDROP_QUOTA": "-1"}, "TUNEDROP_QUOTA must be >= 0, got -1"),
        ({}, {"TUNEDROP_EMULATOR_QUOTA": "many"}, "TUNEDROP_EMULATOR_QUOTA must be an integer, got 'many'"),
        ({"quota": True}, {}, "quota must be an integer, got True"),
        ({"seed": 1.5}, {}, "seed must be an integer, got 1.5"),
        ({}, {"TUNEDROP_EMULATOR_JOB_SECONDS": "-3"}, "TUNEDROP_EMULATOR_JOB_SECONDS must be >= 0, got '-3'"),
        (
            {},
            {"TUNEDROP_EMULATOR_QUOTA_MODE": "queue"},
            "TUNEDROP_EMULATOR_QUOTA_MODE must be one of refuse, wait, got 'queue'",
        ),
        ({"quota_mode": 1}, {}, "quota_mode must be one of refuse, wait, got 1"),
        (
            {},
            {"TUNEDROP_EMULATOR_DROPPED_EXAMPLES": "-2"},
            "TUNEDROP_EMULATOR_DROPPED_EXAMPLES must be >= 0, got -2",
        ),
        ({"job_seconds": "inf"}, {}, "job_seconds must be >= 0, got 'inf'"),
        ({"fail_rate": 2}, {}, "fail_rate must be between 0 and 1, got 2"),
        (
            {},
            {"TUNEDROP_EMULATOR_UNAVAILABLE_RATE": "nan"},
            "TUNEDROP_EMULATOR_UNAVAILABLE_RATE must be between 0 and 1, got 'nan'",
        ),
    ],
)
def test_invalid_knobs_say_what_was_wrong(arguments: dict[str, object], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        VertexEmulator(env=env, **arguments)
    assert str(caught.value) == message


def test_blank_variables_fall_through_and_values_are_trimmed() -> None:
    config = VertexEmulator(
        env={"TUNEDROP_EMULATOR_QUOTA": "  ", "TUNEDROP_QUOTA": " 4 ", "TUNEDROP_EMULATOR_SEED": ""}
    ).config
    assert config == EmulatorConfig(quota=4)
    assert VertexEmulator(env={}).config == EmulatorConfig(
        quota=1, job_seconds=5.0, fail_rate=0.0, unavailable_rate=0.0
    )


def test_quota_mode_and_dropped_examples_from_the_environment() -> None:
    config = VertexEmulator(
        env={"TUNEDROP_EMULATOR_QUOTA_MODE": " Wait ", "TUNEDROP_EMULATOR_DROPPED_EXAMPLES": "7"}
    ).config
    assert (config.quota_mode, config.waits_for_quota, config.dropped_examples) == ("wait", True, 7)
    assert (
        VertexEmulator(quota_mode="refuse", env={"TUNEDROP_EMULATOR_QUOTA_MODE": "wait"}).config.quota_mode == "refuse"
    )
    assert (EmulatorConfig().quota_mode, EmulatorConfig().dropped_examples) == ("refuse", 0)


def test_wait_mode_accepts_every_concurrent_create_and_admits_at_most_the_quota(clock: FakeClock) -> None:
    emulator = VertexEmulator(quota=3, quota_mode="wait", env={}, clock=clock)
    threads = [threading.Thread(target=emulator.create_tuning_job, args=(PARENT, tuning_job())) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (emulator.active_job_count(), emulator.waiting_job_count()) == (3, 17)
