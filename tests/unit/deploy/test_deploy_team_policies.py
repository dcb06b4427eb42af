"""Team policies are the operators' Terraform variables, typed like shared/policy.py's TeamPolicy, rendered into
TUNEDROP_TEAM_POLICIES as a document that Policies.from_json reads back (issue 13, item 3)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest

from shared.policy import LABEL_KEY_PATTERN, TEAM_NAME_PATTERN, Policies, TeamPolicy
from tests.unit.deploy.terraform.paths import TERRAFORM
from tests.unit.deploy.terraform.tfmodel import load_module, one

MODULE = TERRAFORM / "modules" / "tunedrop"
EXAMPLE = TERRAFORM / "environments" / "example"
POLICY_VARIABLES = ("default_team_policy", "team_policies")


def declared_fields(type_expression: str) -> set[str]:
    """The attribute names of an object type as python-hcl2 writes it ({'name': '${optional(...)}', ...})."""
    return set(re.findall(r"'(\w+)': '\$\{optional\(", type_expression))


@pytest.mark.parametrize("directory", [MODULE, EXAMPLE])
@pytest.mark.parametrize("name", POLICY_VARIABLES)
def test_the_policy_variables_declare_exactly_the_team_policy_fields(directory: Path, name: str) -> None:
    variable = load_module(directory).variables[name]
    assert declared_fields(str(one(variable["type"]))) == {f.name for f in fields(TeamPolicy)}


def test_the_functions_get_the_rendered_policies_and_the_example_passes_both_variables() -> None:
    module = load_module(MODULE)
    environment = one(module.locals["function_environment"])
    assert environment["TUNEDROP_TEAM_POLICIES"] == "${local.team_policies_document}"
    call = load_module(EXAMPLE).modules["tunedrop"]
    assert {name: one(call[name]) for name in POLICY_VARIABLES} == {
        "default_team_policy": "${var.default_team_policy}",
        "team_policies": "${var.team_policies}",
    }


def test_terraform_checks_team_names_and_label_keys_as_tunedrop_does() -> None:
    conditions = " ".join(
        str(one(v["condition"])) for v in load_module(MODULE).variables["team_policies"]["validation"]
    )
    patterns = {p.replace("\\\\", "\\") for p in re.findall(r'regex\("(.+?)",', conditions)}
    as_python = {
        TEAM_NAME_PATTERN.replace("\\A", "^").replace("\\Z", "$").replace("(?:", "("),
        LABEL_KEY_PATTERN.replace("\\A", "^").replace("\\Z", "$"),
    }
    assert patterns == as_python


def rendering_root(tmp_path: Path) -> Path:
    """A root holding the module's two policy variables and its rendering of them, and nothing else."""
    variables = (MODULE / "variables.tf").read_text()
    start = variables.index('variable "default_team_policy"')
    end = variables.index("\n}\n", variables.index('variable "team_policies"')) + 3
    functions = (MODULE / "functions.tf").read_text()
    render = re.search(r"team_policies_document = (jsonencode\(\{.*?\n  \}\))", functions, re.DOTALL)
    assert render is not None, "functions.tf renders no team_policies_document"
    (tmp_path / "variables.tf").write_text(variables[start:end])
    (tmp_path / "main.tf").write_text(f'output "document" {{\n  value = {render.group(1)}\n}}\n')
    return tmp_path


def rendered(root: Path, tfvars: str) -> subprocess.CompletedProcess[str]:
    """`terraform apply` of the root with these variables (it has no resources: only the output is computed)."""
    (root / "terraform.tfvars").write_text(tfvars)
    for command in (["init"], ["apply", "-auto-approve"]):
        result = subprocess.run(
            ["terraform", *command, "-input=false", "-no-color"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            break
    return result


def document_of(root: Path, tfvars: str) -> str:
    result = rendered(root, tfvars)
    assert result.returncode == 0, result.stdout + result.stderr
    output = subprocess.run(
        ["terraform", "output", "-raw", "document"], cwd=root, capture_output=True, text=True, timeout=60, check=True
    )
    return output.stdout


needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")


@needs_terraform
def test_the_rendered_document_is_what_tunedrop_reads(tmp_path: Path) -> None:
    root = rendering_root(tmp_path)
    assert Policies.from_json(document_of(root, "")) == Policies()
    tfvars = """
default_team_policy = { max_priority = 10 }
team_policies = {
  search = { allowed_models = ["gemini-3.5-flash"], weight = 2, max_slots = 3, monthly_budget_usd = 500.5,
             over_budget = "reject", max_epochs = 4, allowed_label_keys = ["owner"] }
  ads    = { max_epochs = 2 }
}
"""
    policies = Policies.from_json(document_of(root, tfvars))
    assert policies.for_team("search") == TeamPolicy(
        allowed_models=("gemini-3.5-flash",),
        max_priority=10,  # left out: the default policy's, not null
        max_slots=3,
        weight=2,
        monthly_budget_usd=500.5,
        over_budget="reject",
        max_epochs=4,
        allowed_label_keys=("owner",),
    )
    assert policies.for_team("ads") == TeamPolicy(max_priority=10, max_epochs=2)
    assert policies.for_team("kitchen") == TeamPolicy(max_priority=10)


@needs_terraform
@pytest.mark.parametrize(
    "tfvars",
    [
        "team_policies = { Search = { weight = 2 } }",
        "team_policies = { search = { weight = 0 } }",
        "team_policies = { search = { max_priority = 1001 } }",
        "team_policies = { search = { max_epochs = 1.5 } }",
        'team_policies = { search = { over_budget = "later" } }',
        'team_policies = { search = { allowed_label_keys = ["Owner"] } }',
        "team_policies = { search = { allowed_models = [] } }",
        "default_team_policy = { monthly_budget_usd = -1 }",
        "default_team_policy = { max_slots = 0 }",
    ],
)
def test_terraform_refuses_a_policy_tunedrop_would_refuse(tmp_path: Path, tfvars: str) -> None:
    result = rendered(rendering_root(tmp_path), tfvars)
    assert result.returncode != 0
    assert "Invalid value for variable" in result.stdout + result.stderr
