"""Every Terraform file parses, is formatted, and the environment root stays thin and documented."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from lark.exceptions import LarkError

from tests.unit.deploy.terraform.copies import edited_terraform
from tests.unit.deploy.terraform.paths import INDEXES, TERRAFORM
from tests.unit.deploy.terraform.references import reference_problems
from tests.unit.deploy.terraform.tfmodel import load_module, module_dirs, one, parse_tf, tf_files

EXAMPLE = TERRAFORM / "environments" / "example"
MODULES = TERRAFORM / "modules"


def parse_errors(root: Path) -> list[str]:
    problems = []
    for path in tf_files(root):
        try:
            parsed = parse_tf(path)
        except (LarkError, ValueError) as exc:
            problems.append(f"{path.relative_to(root)}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            continue
        if not parsed:
            problems.append(f"{path.relative_to(root)}: empty")
    return problems


def test_there_are_modules_and_an_environment_root() -> None:
    assert {p.name for p in MODULES.iterdir() if p.is_dir()} >= {"tunedrop", "function", "push-subscription"}
    assert (EXAMPLE / "main.tf").is_file()
    assert (EXAMPLE / "terraform.tfvars.example").is_file()


def test_every_terraform_file_parses() -> None:
    files = tf_files()
    assert len(files) >= 15
    assert parse_errors(TERRAFORM) == []


def test_a_broken_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "ok.tf").write_text('variable "a" {\n  type = string\n}\n')
    (tmp_path / "broken.tf").write_text('resource "google_pubsub_topic" "t" {\n  name = "x"\n')
    problems = parse_errors(tmp_path)
    assert len(problems) == 1 and problems[0].startswith("broken.tf")


def test_tfvars_example_and_index_catalog_parse() -> None:
    tfvars = parse_tf(EXAMPLE / "terraform.tfvars.example")
    assert "project_id" in tfvars
    declared = set()
    for group in parse_tf(EXAMPLE / "variables.tf")["variable"]:
        declared.update(group)
    assert set(tfvars) - {k for k in tfvars if k.startswith("__")} <= declared
    assert json.loads(INDEXES.read_text())["indexes"]


def test_every_variable_is_typed_and_described() -> None:
    problems = []
    for directory in module_dirs():
        for name, body in load_module(directory).variables.items():
            for key in ("type", "description"):
                if key not in body:
                    problems.append(f"{directory.relative_to(TERRAFORM)}: variable {name} has no {key}")
    assert problems == []


def test_the_environment_root_only_calls_the_module() -> None:
    root = load_module(EXAMPLE)
    assert root.resources == {}
    assert [one(b["source"]) for b in root.modules.values()] == ["../../modules/tunedrop"]


# Home and work folders of one machine, or a Windows drive.
MACHINE_PATH = re.compile(r"/(?:home|Users|work|root)/|[A-Z]:\\\\")


def test_no_machine_specific_paths() -> None:
    for path in [*tf_files(), EXAMPLE / "terraform.tfvars.example"]:
        found = MACHINE_PATH.search(path.read_text())
        assert found is None, f"{path} holds the machine-specific path {found.group(0) if found else ''}"


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_fmt_is_clean() -> None:
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_reference_resolves() -> None:
    # terraform validate needs the providers, which cannot be downloaded offline; this checks references.
    assert reference_problems() == []


def test_a_dangling_reference_is_reported(tmp_path: Path) -> None:
    copy = edited_terraform(
        tmp_path,
        "modules/tunedrop/functions.tf",
        ("var.upload_max_instances", "var.upload_max_instance"),
        ("google_storage_bucket.sources.name", "google_storage_bucket.source.name"),
        ("  memory                     = each.value.memory", "  ram = each.value.memory"),
    )
    assert reference_problems(copy) == [
        "modules/tunedrop: var.upload_max_instance is not declared",
        "modules/tunedrop: google_storage_bucket.source is not a resource of this module",
        "modules/tunedrop: module.function passes ram, which function does not declare",
        "modules/tunedrop: module.function does not pass the required variable memory",
    ]
