"""The local stack's lifecycle: up answers, down leaves no process behind (Java included)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tunedrop_local import stack as local_stack

from tests.stackfixture import running_stack

pytestmark = pytest.mark.e2e


def _processes_in_groups(groups: set[int]) -> dict[int, str]:
    """pid -> command of every live process whose process group is one of `groups`."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp in groups and state != "Z":
            found[int(entry.name)] = cmdline
    return found


def test_down_stops_every_process_up_started(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    stack = local_stack.up(state_dir, environ=dict(os.environ), quiet=True)
    try:
        env = local_stack.read_env_file(state_dir / "local.env")
        for key in (
            "GOOGLE_CLOUD_PROJECT",
            "PUBSUB_EMULATOR_HOST",
            "FIRESTORE_EMULATOR_HOST",
            "STORAGE_EMULATOR_HOST",
            "TUNEDROP_VERTEX_EMULATOR_HOST",
            "TUNEDROP_REGION",
            "TUNEDROP_BUCKET",
            "TUNEDROP_UPLOADS_TOPIC",
            "TUNEDROP_COMPLETIONS_TOPIC",
            "TUNEDROP_QUOTA",
        ):
            assert env.get(key), f"{key} missing from local.env"
        assert env == stack.env
        groups = set(local_stack.running_pids(stack).values())
        assert len(groups) == 9
        before = _processes_in_groups(groups)
        assert any("java" in cmd for cmd in before.values()), "the emulators run Java children"
        assert local_stack.is_running(local_stack.Stack(state_dir))
    finally:
        stopped = local_stack.down(state_dir, quiet=True)
    assert sorted(stopped) == sorted(
        ["pubsub", "firestore", "gcs", "vertex", "upload", "dispatch", "poll", "evaluate", "scheduler"]
    )
    assert _processes_in_groups(groups) == {}
    assert not (state_dir / "local.env").exists()
    assert not local_stack.is_running(local_stack.Stack(state_dir))


def test_two_stacks_get_different_ports(stack_env: dict[str, str], tmp_path: Path) -> None:
    # The session's stack is the first one (starting a stack is what costs time here). The second is started
    # like any test's own stack: without the first one's exported variables.
    hosts = (
        "PUBSUB_EMULATOR_HOST",
        "FIRESTORE_EMULATOR_HOST",
        "STORAGE_EMULATOR_HOST",
        "TUNEDROP_VERTEX_EMULATOR_HOST",
    )
    with running_stack(tmp_path / "b", {}) as second:
        assert all(stack_env[h] and second[h] for h in hosts)
        assert {stack_env[h] for h in hosts}.isdisjoint({second[h] for h in hosts})


def test_missing_gcloud_is_one_clear_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(local_stack.StackError, match=r"^gcloud is not installed: install the Google Cloud CLI"):
        local_stack.check_prerequisites()
