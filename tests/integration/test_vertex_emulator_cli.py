"""``python -m tunedrop_local.vertex_emulator`` as the local stack starts it: a process of its own."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import grpc
import pytest
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.gen_ai_tuning_service.transports.grpc import (
    GenAiTuningServiceGrpcTransport,
)

from tests.integration.vertex import PARENT, tuning_job

pytestmark = pytest.mark.integration

JOB_NAME_RE = re.compile(r"^projects/(\d{12})/locations/([a-z0-9-]+)/tuningJobs/(\d{19})$")


def _read_json_line(proc: subprocess.Popen[str], deadline: float) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"emulator exited early with {proc.poll()}")
    if time.monotonic() > deadline:
        raise AssertionError("emulator did not start in time")
    entry: dict[str, Any] = json.loads(line)
    return entry


def test_module_runs_as_a_process_and_stops_on_sigterm() -> None:
    env = {
        **os.environ,
        "TUNEDROP_EMULATOR_QUOTA": "2",
        "TUNEDROP_EMULATOR_JOB_SECONDS": "30",
        "TUNEDROP_EMULATOR_UNAVAILABLE_RATE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tunedrop_local.vertex_emulator", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        entry = _read_json_line(proc, deadline)
        while entry["message"] != "Vertex AI tuning emulator serving":
            entry = _read_json_line(proc, deadline)
        assert entry["severity"] == "INFO"
        assert entry["quota"] == 2
        port = entry["port"]

        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=10)
        client = aiplatform_v1.GenAiTuningServiceClient(transport=GenAiTuningServiceGrpcTransport(channel=channel))
        job = client.create_tuning_job(parent=PARENT, tuning_job=tuning_job())
        assert JOB_NAME_RE.match(job.name)
        assert client.get_tuning_job(name=job.name).state == aiplatform_v1.JobState.JOB_STATE_PENDING
        channel.close()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert all({"severity", "message"} <= entry.keys() for entry in entries)
    created = [e for e in entries if e.get("method") == "CreateTuningJob"]
    assert created and created[0]["job"] == job.name
    assert any(e["message"] == "Vertex AI tuning emulator stopped" for e in entries), out + err


def test_a_bad_knob_stops_the_process_with_an_error_line() -> None:
    env = {**os.environ, "TUNEDROP_EMULATOR_FAIL_RATE": "often", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "tunedrop_local.vertex_emulator", "--host", "127.0.0.1", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    entries = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    errors = [entry for entry in entries if entry["severity"] == "ERROR"]
    assert [entry["message"] for entry in errors] == ["TUNEDROP_EMULATOR_FAIL_RATE must be a number, got 'often'"]
