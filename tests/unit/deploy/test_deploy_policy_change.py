"""Who changed the team policies and why reaches the functions (issue 13, item 6): the example environment passes
the applying identity (google_client_openid_userinfo) and policy_change_reason, the module renders them into
TUNEDROP_TEAM_POLICIES as `change`, and Tunedrop keeps them with each new version of the policies, so the apply
that changes the policies is the one recorded.

The Terraform runs here are `terraform apply` of a root built from the example's own variables and arguments and the
module's own rendering and check, with the applying identity a variable (no provider, no network)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.clock import FakeClock
from shared.policy import Policies, PolicyChange, TeamPolicy
from shared.services.policy_history import PolicyHistory
from tests.fakes import InMemoryJobStore
from tests.unit.deploy.terraform.paths import TERRAFORM
from tests.unit.deploy.terraform.tfmodel import blocks, load_module, one

MODULE = TERRAFORM / "modules" / "tunedrop"
EXAMPLE = TERRAFORM / "environments" / "example"
APPLIER = "data.google_client_openid_userinfo.applier.email"

needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")


def block(text: str, header: str) -> str:
    """One top-level block of a .tf file, from its header line to its closing brace."""
    start = text.index(header + " {")
    return text[start : text.index("\n}\n", start) + 3]


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.DOTALL)
    assert match is not None, pattern
    return match.group(1)


def test_the_example_passes_the_applier_and_the_reason_and_the_module_renders_them() -> None:
    assert "applier" in blocks(EXAMPLE, "data")["google_client_openid_userinfo"]
    call = load_module(EXAMPLE).modules["tunedrop"]
    assert one(call["policy_change"]) == {"changed_by": f"${{{APPLIER}}}", "reason": "${var.policy_change_reason}"}
    module = load_module(MODULE)
    assert "${var.policy_change}" in str(module.locals["team_policies_document"])
    assert one(module.locals["function_environment"])["TUNEDROP_TEAM_POLICIES"] == "${local.team_policies_document}"


def capture_root(tmp_path: Path) -> Path:
    """The example's policy variables and its policy_change argument (the applier a variable), calling a module made
    of the tunedrop module's policy variables, its rendering of the document and the output that checks it."""
    example_main = (EXAMPLE / "main.tf").read_text()
    example_variables = (EXAMPLE / "variables.tf").read_text()
    root_variables = [
        block(example_variables, f'variable "{name}"')
        for name in ("default_team_policy", "team_policies", "policy_change_reason")
    ]
    change = found(r"\n  policy_change = (\{.*?\n  \})", example_main).replace(APPLIER, "var.applier")
    (tmp_path / "variables.tf").write_text("\n".join([*root_variables, 'variable "applier" {\n  type = string\n}\n']))
    (tmp_path / "main.tf").write_text(
        'module "render" {\n  source = "./render"\n  default_team_policy = var.default_team_policy\n'
        f"  team_policies = var.team_policies\n  policy_change = {change}\n}}\n"
        'output "document" {\n  value = module.render.team_policies_document\n}\n'
    )
    module_variables = (MODULE / "variables.tf").read_text()
    start = module_variables.index('variable "default_team_policy"')
    end = module_variables.index("\n}\n", module_variables.index('variable "team_policies"')) + 3
    assert 'variable "policy_change"' in module_variables[start:end]
    functions = (MODULE / "functions.tf").read_text()
    document = found(r"team_policies_document = (jsonencode\(\{.*?\n  \}\))", functions)
    policies_set = found(r"\n  team_policies_set = ([^\n]+)\n", functions)
    (tmp_path / "render").mkdir()
    (tmp_path / "render" / "variables.tf").write_text(module_variables[start:end])
    (tmp_path / "render" / "main.tf").write_text(
        f"locals {{\n  team_policies_document = {document}\n  team_policies_set = {policies_set}\n}}\n"
        + block(functions, 'output "team_policies_document"')
    )
    return tmp_path


def terraform(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["terraform", *args, "-no-color"], cwd=root, capture_output=True, text=True, timeout=180, check=False
    )


def apply(root: Path, applier: str, tfvars: str) -> subprocess.CompletedProcess[str]:
    """`terraform apply` as `applier` with these variables (the state carries over from the previous apply)."""
    (root / "terraform.tfvars").write_text(f'applier = "{applier}"\n{tfvars}')
    return terraform(root, "apply", "-auto-approve", "-input=false")


def deployed(root: Path, applier: str, tfvars: str) -> Policies:
    """The policies the functions would read after the apply."""
    result = apply(root, applier, tfvars)
    assert result.returncode == 0, result.stdout + result.stderr
    output = terraform(root, "output", "-raw", "document")
    assert output.returncode == 0, output.stderr
    return Policies.from_json(output.stdout)


@needs_terraform
def test_each_deployment_is_kept_with_the_apply_that_made_it(tmp_path: Path) -> None:
    root = capture_root(tmp_path)
    assert terraform(root, "init", "-input=false").returncode == 0
    store = InMemoryJobStore()

    def apply_and_run(applier: str, tfvars: str, day: int) -> Policies:
        """Apply as `applier`, then let a function instance of the new deployment note its policies."""
        policies = deployed(root, applier, tfvars)
        PolicyHistory(store, policies, FakeClock(datetime(2026, 11, day, tzinfo=UTC))).note_deployed()
        return policies

    nothing = apply_and_run("alice@example.com", "", 1)  # no policy: no reason needed
    assert nothing == Policies() and nothing.change == PolicyChange("alice@example.com", "")

    two_slots = 'team_policies = { search = { max_slots = 2 } }\npolicy_change_reason = "launch"\n'
    first = apply_and_run("bob@example.com", two_slots, 2)
    assert first.for_team("search") == TeamPolicy(max_slots=2)
    assert first.change == PolicyChange("bob@example.com", "launch")

    # Another operator's apply with the same policies redeploys the functions with a new note: kept as a record
    # of the same version (the same digest).
    again = apply_and_run("carol@example.com", two_slots.replace("launch", "tidy-up"), 3)
    assert again == first and again.change == PolicyChange("carol@example.com", "tidy-up")

    three_slots = 'team_policies = { search = { max_slots = 3 } }\npolicy_change_reason = "more for search"\n'
    changed = apply_and_run("carol@example.com", three_slots, 4)
    assert changed.for_team("search") == TeamPolicy(max_slots=3)

    kept = [(record.changed_by, record.reason, record.digest) for record in store.policy_history(10)]
    assert kept == [
        ("carol@example.com", "more for search", changed.digest),
        ("carol@example.com", "tidy-up", first.digest),
        ("bob@example.com", "launch", first.digest),
        ("alice@example.com", "", Policies().digest),
    ]


@needs_terraform
@pytest.mark.parametrize(
    ("tfvars", "problem"),
    [
        ("team_policies = { search = { max_slots = 2 } }\n", "policy_change_reason: say why"),
        ('default_team_policy = { max_priority = 10 }\npolicy_change_reason = "  "\n', "policy_change_reason: say why"),
        ('team_policies = { search = { weight = 2 } }\npolicy_change_reason = "a\\nb"\n', "one line of at most 500"),
        (f'team_policies = {{ search = {{ weight = 2 }} }}\npolicy_change_reason = "{"x" * 501}"\n', "at most 500"),
    ],
)
def test_a_policy_without_a_reason_is_refused_at_plan(tmp_path: Path, tfvars: str, problem: str) -> None:
    root = capture_root(tmp_path)
    assert terraform(root, "init", "-input=false").returncode == 0
    result = apply(root, "alice@example.com", tfvars)
    assert result.returncode != 0
    assert problem in " ".join((result.stdout + result.stderr).split())
    assert json.loads(terraform(root, "output", "-json").stdout or "{}") == {}  # nothing was applied
