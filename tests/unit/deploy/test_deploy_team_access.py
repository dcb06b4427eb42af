"""Each team's principals are granted only their own prefixes of the datasets bucket (issue 13, item 2),
and only Tunedrop's functions write under reports/. Evaluated on the Terraform for an example `teams`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy.terraform.bucket_access import BucketGrant, allowed, bucket_grants
from tests.unit.deploy.terraform.copies import edited_terraform
from tests.unit.deploy.terraform.paths import ROOT, TERRAFORM
from tests.unit.deploy.terraform.tfmodel import Unresolved, load_module, one

SHARED = "user:shared@example.com"  # in two teams: gets both, nothing more
TEAMS: dict[str, Any] = {
    "search": {"principals": ["group:search-ml@example.com", SHARED]},
    # A name that extends another's: "search/" must never match "search-2/".
    "search-2": {"principals": ["serviceAccount:s2@proj.iam.gserviceaccount.com"]},
    "ads": {"principals": ["domain:ads.example.com", SHARED]},
}
OPERATIONS = ("create", "delete", "get", "list")
TEAM_AREAS = ("incoming", "datasets", "reports")
FOREIGN_NAMES = ("incoming/upload.jsonl", "tunedrop-staging/copy.jsonl", "datasets.jsonl", "other/x")


def probes() -> list[str]:
    """Object names (and, for list, prefixes) to ask about: every team's areas and the rest of the bucket."""
    teams = [*TEAMS, "nobody"]
    return [f"{area}/{team}/x.jsonl" for area in TEAM_AREAS for team in teams] + list(FOREIGN_NAMES)


def expected(teams: list[str], operation: str) -> set[str]:
    """What the principal of these teams may do: create under incoming/<team>/ and datasets/<team>/, read
    (get, list) those and reports/<team>/, delete nothing."""
    areas = {"create": ("incoming", "datasets"), "get": TEAM_AREAS, "list": TEAM_AREAS, "delete": ()}[operation]
    return {f"{area}/{team}/x.jsonl" for area in areas for team in teams}


def granted(grants: list[BucketGrant], member: str, operation: str) -> set[str]:
    return {name for name in probes() if allowed(grants, member, operation, name)}


def access_problems(root: Path = TERRAFORM) -> list[str]:
    grants = bucket_grants({"teams": TEAMS}, root)
    problems = []
    members = {p for team in TEAMS.values() for p in team["principals"]}
    for member in sorted(members):
        teams = [name for name, team in TEAMS.items() if member in team["principals"]]
        for operation in OPERATIONS:
            got, want = granted(grants, member, operation), expected(teams, operation)
            problems += [f"{member} may {operation} {name}" for name in sorted(got - want)]
            problems += [f"{member} may not {operation} {name}" for name in sorted(want - got)]
    return problems


def test_each_teams_principals_get_only_their_prefixes() -> None:
    assert access_problems() == []


def test_a_team_grant_wider_than_its_prefix_is_caught(tmp_path: Path) -> None:
    copy = edited_terraform(
        tmp_path,
        "modules/team-access/main.tf",
        ('incoming = "${var.incoming_prefix}${var.team}/"', 'incoming = "${var.incoming_prefix}"'),
    )
    problems = access_problems(copy)
    assert "group:search-ml@example.com may create incoming/ads/x.jsonl" in problems
    assert "user:shared@example.com may get incoming/upload.jsonl" in problems


def test_a_clause_the_check_does_not_read_fails_it(tmp_path: Path) -> None:
    copy = edited_terraform(
        tmp_path,
        "modules/team-access/main.tf",
        ('create_condition = "resource.name', 'create_condition = "true || resource.name'),
    )
    with pytest.raises(Unresolved, match="does not read"):
        access_problems(copy)


def test_only_the_functions_replace_reports_and_only_vertex_ai_adds_evaluation_results() -> None:
    grants = bucket_grants({"teams": TEAMS})
    names = [f"reports/{team}/x.json" for team in TEAMS] + ["reports/x.json"]
    replacers = {g.member for g in grants for name in names if g.allows("delete", name)}
    # The upload validator's reports, and the evaluation gate's results and report (both overwrite on a redelivery).
    assert replacers and all(re.search(r'module\.function\["(upload|evaluate)"\]', w) for w in replacers), replacers
    assert len(replacers) == 2, replacers
    creators = {g.member for g in grants for name in names if g.allows("create", name)} - replacers
    # Evaluation during tuning writes its results there as Vertex AI's agent (or a job's own account): it may
    # create objects, never replace or delete one (objectCreator), so a team's reports stay the functions'.
    assert creators == {"serviceAccount:${google_project_service_identity.aiplatform.email}"}, creators
    assert not any(re.search(r"team|group:|user:", member) for member in creators)


def test_no_team_no_team_grant() -> None:
    members = {g.member for g in bucket_grants({})}
    assert not any(m.startswith(("user:", "group:", "domain:")) for m in members)


def _validation_patterns() -> list[str]:
    """The regexes the tunedrop module's teams validations apply (RE2; the same meaning in Python re here)."""
    teams = load_module(TERRAFORM / "modules" / "tunedrop").variables["teams"]
    conditions = [one(v["condition"]) for v in teams["validation"]]
    found = [re.search(r'regex\("(.+?)",\s*(?:team|principal)\)', c) for c in conditions]
    return [m.group(1).replace("\\\\", "\\") for m in found if m]


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("search", True),
        ("a", True),
        ("team-2", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("Search", False),
        ("-a", False),
        ("a-", False),
        ("a/b", False),
        ("a_b", False),
        ("", False),
    ],
)
def test_team_names_are_one_path_segment(name: str, valid: bool) -> None:
    team_pattern = _validation_patterns()[0]
    assert bool(re.fullmatch(team_pattern, name)) is valid


@pytest.mark.parametrize(
    ("principal", "valid"),
    [
        ("user:a@example.com", True),
        ("group:ml@example.com", True),
        ("serviceAccount:x@p.iam.gserviceaccount.com", True),
        ("domain:example.com", True),
        ("allUsers", False),
        ("allAuthenticatedUsers", False),
        ("a@example.com", False),
        ("user:nobody", False),
        ("projectOwner:p", False),
    ],
)
def test_principals_name_their_kind(principal: str, valid: bool) -> None:
    principal_pattern = _validation_patterns()[1]
    assert bool(re.fullmatch(principal_pattern, principal)) is valid


def test_the_readme_shows_how_to_add_a_team() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text()
    section = readme.split("## Adding a team", 1)[1].split("\n## ", 1)[0]
    assert "teams = {" in section and "incoming/<team>/" in section and "reports/<team>/" in section
