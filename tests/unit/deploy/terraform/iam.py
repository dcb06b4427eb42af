"""Least privilege: no primitive roles, no project-wide admin roles, nothing public, no authoritative
IAM resources, and no custom role that lets its holder change access or act as someone else."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.unit.deploy.terraform.paths import TERRAFORM
from tests.unit.deploy.terraform.tfmodel import load_modules, one, render, resource_instances, tf_files

PRIMITIVE_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
PROJECT_IAM_TYPES = frozenset({"google_project_iam_member", "google_project_iam_binding", "google_project_iam_policy"})
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
AUTHORITATIVE_TYPES = ("google_project_iam_binding", "google_project_iam_policy")
_ROLE = re.compile(r"roles/[A-Za-z0-9_.]+")
_CUSTOM_ROLE_REF = re.compile(r"\$\{google_project_iam_custom_role\.(\w+)(?:\[[^\]]*\])?\.(?:name|id)\}")
# Permissions that let a holder change access or act as another identity.
_RISKY_PERMISSIONS = (".setIamPolicy", ".actAs", ".getAccessToken", ".signBlob", ".signJwt", ".create_key")


@dataclass(frozen=True)
class Grant:
    address: str
    resource_type: str
    role: str
    member: str


def _is_grant(resource_type: str) -> bool:
    return resource_type.endswith("_iam_member") or resource_type.endswith("_iam_binding")


def grants(root: Path = TERRAFORM) -> list[Grant]:
    """Every IAM grant (resources named *_iam_member / *_iam_binding) with its role resolved."""
    found: list[Grant] = []
    for grant in resource_instances(root, _is_grant):
        members = one(grant.body.get("member", grant.body.get("members", [""])))
        member = " ".join(members) if isinstance(members, list) else str(members)
        found.append(
            Grant(
                f"{grant.module_address}.{grant.resource_type}.{grant.name}[{grant.each.each_key}]",
                grant.resource_type,
                str(grant.value(grant.body.get("role"))),
                render(member, grant.each),
            )
        )
    return found


def custom_role_permissions(root: Path = TERRAFORM) -> dict[str, list[str]]:
    """google_project_iam_custom_role resources by name: their permissions."""
    found: dict[str, list[str]] = {}
    for module in load_modules(root).values():
        for name, body in module.resources.get("google_project_iam_custom_role", {}).items():
            found[name] = [str(p) for p in one(body["permissions"])]
    return found


def role_problems(root: Path = TERRAFORM) -> list[str]:
    problems = [problem for path in tf_files(root) for problem in _text_problems(path, root)]
    custom = custom_role_permissions(root)
    problems += [problem for grant in grants(root) if (problem := _grant_problem(grant, custom))]
    return problems


def _text_problems(path: Path, root: Path) -> list[str]:
    """What a file names anywhere, resolved or not: primitive roles, public members, authoritative IAM."""
    text, where = path.read_text(), path.relative_to(root)
    problems = [
        f"{where} names the primitive role {role}" for role in sorted(set(_ROLE.findall(text)) & PRIMITIVE_ROLES)
    ]
    problems += [
        f"{where} grants something to {public}"
        for public in PUBLIC_MEMBERS
        if f'"{public}"' in text or f":{public}" in text
    ]
    problems += [f"{where} uses the authoritative {kind}" for kind in AUTHORITATIVE_TYPES if f'"{kind}"' in text]
    return problems


def _grant_problem(grant: Grant, custom: dict[str, list[str]]) -> str | None:
    """What is wrong with one resolved grant, if anything."""
    named = _CUSTOM_ROLE_REF.fullmatch(grant.role)
    if named and named.group(1) in custom:
        risky = [p for p in custom[named.group(1)] if p.endswith(_RISKY_PERMISSIONS)]
        return f"{grant.address} grants the custom role {named.group(1)} with {risky}" if risky else None
    if not grant.role.startswith("roles/") or "${" in grant.role:
        return f"{grant.address}: cannot tell which role {grant.role!r} is"
    if grant.role in PRIMITIVE_ROLES:
        return f"{grant.address} grants the primitive role {grant.role}"
    if grant.resource_type in PROJECT_IAM_TYPES and "admin" in grant.role.lower():
        return f"{grant.address} grants the admin role {grant.role} on the whole project"
    return None
