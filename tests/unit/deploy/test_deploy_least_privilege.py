"""No primitive roles, no project-wide admin roles, nothing public; every grant is documented."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.deploy.terraform.copies import edited_terraform
from tests.unit.deploy.terraform.iam import grants, role_problems
from tests.unit.deploy.terraform.paths import ROOT
from tests.unit.deploy.terraform.tfmodel import load_modules, one

README = ROOT / "deploy" / "README.md"


def test_no_primitive_admin_or_public_grant() -> None:
    assert grants(), "no IAM grant found"
    assert role_problems() == []


def test_a_primitive_or_admin_role_is_reported(tmp_path: Path) -> None:
    copy = edited_terraform(
        tmp_path,
        "modules/tunedrop/iam.tf",
        ('function = "poll", role = "roles/aiplatform.user"', 'function = "poll", role = "roles/editor"'),
        ('role = "roles/logging.logWriter"', 'role = "roles/storage.admin"'),
    )
    problems = role_problems(copy)
    assert any("primitive role roles/editor" in p for p in problems)
    # The file names it, and the grant resolved from local.runtime_project_roles gives it.
    assert (
        "tunedrop.google_project_iam_member.runtime[poll-aiplatform] grants the primitive role roles/editor" in problems
    )
    assert any("admin role roles/storage.admin on the whole project" in p for p in problems)


def test_a_public_invoker_is_reported(tmp_path: Path) -> None:
    copy = edited_terraform(
        tmp_path,
        "modules/function/main.tf",
        ('member   = "serviceAccount:${google_service_account.invoker.email}"', 'member   = "allUsers"'),
    )
    assert any("allUsers" in p for p in role_problems(copy))


def runtime_grants() -> set[tuple[str, str]]:
    """(function, role) granted to a function's runtime service account."""
    found = set()
    for grant in grants():
        match = re.search(r'module\.function\["(\w+)"\]\.runtime_service_account_email', grant.member)
        if match:
            found.add((match.group(1), grant.role))
    return found


def test_each_runtime_service_account_holds_only_what_its_code_calls() -> None:
    assert runtime_grants() == {
        ("upload", "roles/datastore.user"),
        ("upload", "roles/aiplatform.user"),  # CountTokens for examples near the token limit
        ("upload", "roles/pubsub.publisher"),
        ("upload", "roles/storage.objectViewer"),
        ("upload", "roles/storage.objectUser"),
        ("upload", "roles/storage.objectCreator"),  # the validated copies, under tunedrop-staging/ only
        ("dispatch", "roles/datastore.user"),
        ("dispatch", "roles/aiplatform.user"),
        ("dispatch", "roles/pubsub.publisher"),
        ("poll", "roles/datastore.user"),
        ("poll", "roles/aiplatform.user"),
        ("poll", "roles/pubsub.publisher"),
        ("poll", "roles/storage.objectViewer"),  # the reconciler lists incoming/
        ("evaluate", "roles/datastore.user"),
        ("evaluate", "${google_project_iam_custom_role.evaluation_gate.name}"),  # GenerateContent, EvaluateInstances
        ("evaluate", "roles/pubsub.publisher"),
        ("evaluate", "roles/storage.objectViewer"),  # the held-out copy, under tunedrop-staging/ only
        ("evaluate", "roles/storage.objectUser"),  # its results, under reports/ only
    }


def readme_role(role: str) -> str:
    """How the README names a role: a predefined one as is, a custom one by its role id with the default prefix."""
    custom = re.fullmatch(r"\$\{google_project_iam_custom_role\.(\w+)\.name\}", role)
    if custom is None:
        return role
    (body,) = [
        module.resources["google_project_iam_custom_role"][custom.group(1)]
        for module in load_modules().values()
        if custom.group(1) in module.resources.get("google_project_iam_custom_role", {})
    ]
    # The role id is "<prefix with _ for ->_<name>", hcl2 quoting the template: ${"${replace(...)}_<name>"}.
    suffix = re.search(r"\}(_\w+)\"\}$", str(one(body["role_id"])))
    assert suffix, body["role_id"]
    return f"tunedrop{suffix.group(1)}"


def test_a_custom_role_is_named_by_its_role_id() -> None:
    assert readme_role("roles/datastore.user") == "roles/datastore.user"
    assert readme_role("${google_project_iam_custom_role.evaluation_gate.name}") == "tunedrop_evaluation_gate"


def test_the_readme_tables_every_runtime_grant() -> None:
    rows = [line for line in README.read_text().splitlines() if line.startswith("|")]
    missing = [
        f"tunedrop-{function} {role}"
        for function, role in sorted(runtime_grants())
        if not any(f"`tunedrop-{function}`" in row and f"`{readme_role(role)}`" in row for row in rows)
    ]
    assert missing == []
