"""cloudbuild.yaml: lint, type-check and test before plan; apply only when designated."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.unit.deploy import infra

CLOUDBUILD = infra.ROOT / "cloudbuild.yaml"
MAKEFILE = infra.ROOT / "Makefile"


def steps() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load(CLOUDBUILD.read_text())
    return {step["id"]: step for step in config["steps"]}


def script(step: dict[str, Any]) -> str:
    return "\n".join(str(a) for a in step.get("args", []))


def test_the_pipeline_has_its_steps_in_order() -> None:
    found = steps()
    assert list(found) == ["install", "lint", "type-check", "test", "build-source", "terraform-plan", "terraform-apply"]
    assert set(found["terraform-plan"]["waitFor"]) == {"lint", "type-check", "test", "build-source"}
    assert found["terraform-apply"]["waitFor"] == ["terraform-plan"]


def test_tests_run_where_the_emulators_are() -> None:
    config = yaml.safe_load(CLOUDBUILD.read_text())
    assert config["substitutions"]["_CLI_IMAGE"] == "gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators"
    test = steps()["test"]
    assert test["name"] == "${_CLI_IMAGE}"
    assert ".venv/bin/python -m pytest tests" in script(test)


def test_lint_and_type_check_run_what_make_lint_runs() -> None:
    text = MAKEFILE.read_text()
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
    assert recipe is not None
    commands = [line.strip().lstrip("@").replace("$(BIN)/", ".venv/bin/") for line in recipe.group(1).splitlines()]
    ci = script(steps()["lint"]) + "\n" + script(steps()["type-check"])
    assert commands and [c for c in commands if c not in ci] == []


def test_apply_is_gated_on_the_branch_or_an_explicit_substitution() -> None:
    apply = script(steps()["terraform-apply"])
    assert "terraform apply -input=false tfplan" in apply
    assert '[ "$BRANCH_NAME" = "${_APPLY_BRANCH}" ] || [ "${_APPLY}" = "true" ]' in apply
    assert apply.index("if [") < apply.index("terraform apply")
    plan = script(steps()["terraform-plan"])
    assert "terraform plan -input=false -out=tfplan" in plan and "terraform apply" not in plan
    config = yaml.safe_load(CLOUDBUILD.read_text())
    assert config["substitutions"]["_APPLY"] == "false"
