"""Every environment variable the code reads is set by Terraform, defaulted, or local-stack-only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import Field

from shared.config import SETTINGS, Settings
from tests.unit.deploy.terraform.copies import edited_terraform
from tests.unit.deploy.terraform.environment import (
    env_reads,
    local_only,
    settings_declared,
    terraform_environment,
    undeclared_environment,
    unpassed_settings,
)
from tests.unit.deploy.terraform.paths import CODE_DIRS, ROOT


def copy_code(tmp_path: Path) -> list[Path]:
    for name in ("shared", "functions"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return [tmp_path / "shared", tmp_path / "functions"]


class SettingsWithToken(Settings):
    """The service's settings plus a new required one."""

    token: str = Field(validation_alias="TUNEDROP_TOKEN", description="x")


def test_the_declared_settings_are_the_models_fields() -> None:
    declared = settings_declared()
    assert declared == {s.name: s.default for s in SETTINGS}
    assert declared["GOOGLE_CLOUD_PROJECT"] is None and declared["TUNEDROP_QUOTA"] == "1"
    assert settings_declared(SettingsWithToken)["TUNEDROP_TOKEN"] is None


def test_the_scan_finds_every_setting_and_the_emulator_switches() -> None:
    reads = env_reads(CODE_DIRS)
    assert {s.name for s in SETTINGS} <= set(reads)
    assert "STORAGE_EMULATOR_HOST" in reads  # shared/bootstrap.py's env.get(...)


def test_every_variable_the_code_reads_is_available_in_production() -> None:
    assert terraform_environment(), "no function environment found in the Terraform"
    assert undeclared_environment() == []


def test_terraform_passes_every_setting() -> None:
    assert unpassed_settings() == []


@pytest.mark.parametrize(
    "snippet",
    [
        'os.environ["TUNEDROP_NEW_KNOB"]',
        'os.environ.get("TUNEDROP_NEW_KNOB", "")',
        'os.getenv("TUNEDROP_NEW_KNOB")',
        'env.get("TUNEDROP_NEW_KNOB")',
        'getenv("TUNEDROP_NEW_KNOB")',
    ],
)
def test_an_undeclared_variable_is_reported(tmp_path: Path, snippet: str) -> None:
    code_dirs = copy_code(tmp_path)
    (tmp_path / "shared" / "knob.py").write_text(f"import os\n\nenv = os.environ\nVALUE = {snippet}\n")
    problems = undeclared_environment(code_dirs)
    assert problems, "the new variable went unnoticed"
    assert all("TUNEDROP_NEW_KNOB (read at shared/knob.py:4)" in p for p in problems)
    assert len(problems) == 4  # one per deployed function


def test_a_new_required_setting_is_reported() -> None:
    problems = undeclared_environment(model=SettingsWithToken)
    assert any("TUNEDROP_TOKEN" in p and "no default" in p for p in problems)
    assert any("TUNEDROP_TOKEN" in p for p in unpassed_settings(SettingsWithToken))
    assert not any("TUNEDROP_TOKEN" in p for p in undeclared_environment())


def test_a_new_setting_with_a_default_need_not_be_set_but_must_be_passed() -> None:
    class SettingsWithKnob(Settings):
        knob: int = Field(3, validation_alias="TUNEDROP_KNOB", description="x")

    assert not any("TUNEDROP_KNOB" in p for p in undeclared_environment(model=SettingsWithKnob))
    assert any("does not set TUNEDROP_KNOB" in p for p in unpassed_settings(SettingsWithKnob))


def test_a_typo_in_the_terraform_environment_is_reported(tmp_path: Path) -> None:
    copy = edited_terraform(tmp_path, "modules/tunedrop/functions.tf", ("TUNEDROP_BASE_MODEL ", "TUNEDROP_BASE_MODLE "))
    problems = undeclared_environment(root=copy)
    assert any("sets TUNEDROP_BASE_MODLE, which is not in shared/config.py SETTINGS" in p for p in problems)
    assert any("does not set TUNEDROP_BASE_MODEL" in p for p in unpassed_settings(root=copy))


def test_local_only_variables_are_an_explicit_list() -> None:
    for name in (
        "PUBSUB_EMULATOR_HOST",
        "FIRESTORE_EMULATOR_HOST",
        "STORAGE_EMULATOR_HOST",
        "TUNEDROP_VERTEX_EMULATOR_HOST",
        "TUNEDROP_STATE_DIR",
        "TUNEDROP_EMULATOR_QUOTA",
    ):
        assert local_only(name), name
    for name in ("TUNEDROP_QUOTA", "TUNEDROP_BUCKET", "GOOGLE_CLOUD_PROJECT", "TUNEDROP_EMULATOR"):
        assert not local_only(name), name
