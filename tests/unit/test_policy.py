"""Team policies: the operators' document parsed (every problem named), the defaults, and what an upload may ask."""

from __future__ import annotations

import hashlib
import json
import typing

import pytest

from shared.errors import ConfigError
from shared.manifest import LabelKey, Priority
from shared.policy import (
    LABEL_KEY_PATTERN,
    MAX_CHANGE_REASON,
    MAX_CHANGED_BY,
    PRIORITY_RANGE,
    VIOLATION_CODES,
    Policies,
    PolicyChange,
    TeamPolicy,
    violations,
)
from shared.validation.codes import CODES


def parse(document: object) -> Policies:
    return Policies.from_json(json.dumps(document))


@pytest.mark.parametrize("text", ["", "   ", "{}", '{"default": {}, "teams": {}}', '{"default": null, "teams": null}'])
def test_nothing_configured_is_todays_behaviour(text: str) -> None:
    policies = Policies.from_json(text)
    assert policies == Policies()
    policy = policies.for_team("anyone")
    assert policy == TeamPolicy(
        allowed_models=None,
        max_priority=1000,
        max_slots=None,
        weight=1,
        monthly_budget_usd=None,
        over_budget="wait",
        max_epochs=None,
        allowed_label_keys=None,
    )
    assert (
        violations("anyone", policy, base_model="gemini-2.5-pro", priority=1000, epochs=10_000, label_keys=["x"]) == []
    )


def test_the_policy_types_are_frozen() -> None:
    with pytest.raises(AttributeError):
        TeamPolicy().max_priority = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Policies().default = TeamPolicy()  # type: ignore[misc]


def test_a_teams_policy_takes_what_it_leaves_out_from_the_default_policy() -> None:
    policies = parse(
        {
            "default": {"max_priority": 10, "max_epochs": 20, "monthly_budget_usd": 100},
            "teams": {
                "search": {
                    "allowed_models": ["GEMINI-3.5-FLASH", "publishers/google/models/gemini-2.5-pro@001"],
                    "max_priority": 50,
                    "max_slots": 2,
                    "weight": 3,
                    "monthly_budget_usd": 500.5,
                    "over_budget": "reject",
                    "allowed_label_keys": ["owner", "cost-center", "owner"],
                    "max_epochs": None,  # null: not set, so the default policy's
                }
            },
        }
    )
    assert policies.for_team("search") == TeamPolicy(
        allowed_models=("gemini-3.5-flash", "gemini-2.5-pro"),
        max_priority=50,
        max_slots=2,
        weight=3,
        monthly_budget_usd=500.5,
        over_budget="reject",
        max_epochs=20,
        allowed_label_keys=("owner", "cost-center"),
    )
    assert policies.for_team("ads") == TeamPolicy(max_priority=10, max_epochs=20, monthly_budget_usd=100.0)
    assert policies.for_team("ads") is policies.default


def test_every_problem_is_named_with_its_team_and_field() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(
            {
                "default": {"weight": 0},
                "teams": {
                    "Search": {},
                    "ads": {
                        "max_priority": 1001,
                        "max_slots": 1.5,
                        "monthly_budget_usd": -1,
                        "over_budget": "later",
                        "max_epochs": True,
                        "allowed_models": ["gemini-9"],
                        "allowed_label_keys": ["Owner"],
                        "colour": "red",
                    },
                    "kitchen": [],
                    "empty": {"allowed_models": []},
                },
                "extra": 1,
            }
        )
    message = str(caught.value)
    assert message.startswith("TUNEDROP_TEAM_POLICIES is invalid: ")
    for expected in (
        'unknown key "extra"',
        "the default policy: weight=0 is outside 1..1000",
        'team "Search" is not a team name',
        'team "ads": unknown field "colour"',
        'team "ads": max_priority=1001 is outside -1000..1000',
        'team "ads": max_slots=1.5 is not a whole number',
        'team "ads": monthly_budget_usd=-1 is negative',
        'team "ads": over_budget="later" is not "wait" or "reject"',
        'team "ads": max_epochs=true is not a whole number',
        'team "ads": allowed_models=["gemini-9"] has "gemini-9", not models Tunedrop can tune (known: ',
        'team "ads": allowed_label_keys=["Owner"] has "Owner", not label keys',
        'team "kitchen": a policy must be an object',
        'team "empty": allowed_models=[] allows no model',
    ):
        assert expected in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "TUNEDROP_TEAM_POLICIES is not JSON"),
        ("[]", "it must be an object"),
        ('{"teams": []}', "teams must be an object"),
        ('{"teams": {"a": {"monthly_budget_usd": "5"}}}', "is not a number of US dollars"),
        ('{"teams": {"a": {"allowed_label_keys": "owner"}}}', "is not a list of label keys"),
    ],
)
def test_a_malformed_document_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        Policies.from_json(text)


def test_violations_name_the_team_policy_and_the_value_asked() -> None:
    policy = TeamPolicy(
        allowed_models=("gemini-3.5-flash",), max_priority=10, max_epochs=4, allowed_label_keys=("owner",)
    )
    found = violations(
        "search", policy, base_model="gemini-2.5-pro", priority=50, epochs=5, label_keys=["owner", "zone", "a"]
    )
    assert [(v.field, v.code, v.path) for v in found] == [
        ("allowed_models", "policy_model_not_allowed", "$.base_model"),
        ("max_priority", "policy_priority_too_high", "$.priority"),
        ("max_epochs", "policy_epochs_too_high", "$.hyper_parameters.epochs"),
        ("allowed_label_keys", "policy_label_key_not_allowed", "$.labels"),
    ]
    assert found[1].message == (
        'team "search" policy allows priority up to 10; this manifest asks 50: '
        "ask an operator to change the team's policy."
    )
    assert "sets a, zone" in found[3].message


def test_values_at_the_policy_limits_and_unknown_models_are_not_violations() -> None:
    policy = TeamPolicy(allowed_models=("gemini-3.5-flash",), max_priority=10, max_epochs=4, allowed_label_keys=())
    assert violations("s", policy, base_model="Gemini-3.5-Flash", priority=10, epochs=4, label_keys=[]) == []
    assert violations("s", policy, base_model="gemini-3.5-flash", priority=-1000, epochs=None, label_keys=[]) == []
    # A model the registry does not know is reported by the registry check, once.
    assert violations("s", policy, base_model="no-such-model", priority=0, epochs=None, label_keys=[]) == []
    (refused,) = violations("s", policy, base_model="gemini-3.5-flash", priority=0, epochs=None, label_keys=["k"])
    assert refused.message.startswith('team "s" policy allows no labels; this manifest sets k: ')


def test_every_violation_code_is_in_the_codes_table() -> None:
    assert {code for code, _ in VIOLATION_CODES.values()} <= set(CODES)
    assert all(CODES[code].severity.value == "error" for code, _ in VIOLATION_CODES.values())


def test_the_policy_ranges_are_the_manifests() -> None:
    assert typing.get_args(LabelKey)[1].pattern == LABEL_KEY_PATTERN
    priority = typing.get_args(Priority)[1]
    assert (priority.ge, priority.le) == PRIORITY_RANGE


# -- who changed them, and why: metadata, never policy (issue 13, item 6) -----------------------


def test_the_change_note_is_read_and_changes_no_policy() -> None:
    change = {"changed_by": "alice@example.com", "reason": " search gets two slots "}
    noted = parse({"teams": {"search": {"max_slots": 2}}, "change": change})
    plain = parse({"teams": {"search": {"max_slots": 2}}})
    assert noted.change == PolicyChange("alice@example.com", "search gets two slots")
    assert noted == plain and noted.digest == plain.digest and noted.canonical_json() == plain.canonical_json()
    assert "alice" not in noted.canonical_json()
    assert parse({"change": None}).change == PolicyChange() == plain.change
    assert parse({"change": {"changed_by": "alice@example.com", "reason": None}}).change == PolicyChange(
        "alice@example.com", ""
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("alice", "change must be an object"),
        ({"changed_by": "alice", "when": "now"}, 'change: unknown field "when"'),
        ({"reason": 5}, f"change: reason must be a string of at most {MAX_CHANGE_REASON} characters"),
        ({"reason": "x" * (MAX_CHANGE_REASON + 1)}, "change: reason must be a string"),
        ({"changed_by": "a" * (MAX_CHANGED_BY + 1)}, f"changed_by must be a string of at most {MAX_CHANGED_BY}"),
    ],
)
def test_a_malformed_change_note_is_refused(change: object, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse({"teams": {}, "change": change})


def test_the_canonical_json_spells_out_every_field_so_equal_policies_have_one_digest() -> None:
    left_out = parse({"default": {"max_priority": 10}, "teams": {"search": {}}})
    spelled_out = parse({"default": {"max_priority": 10, "weight": 1}, "teams": {"search": {"max_priority": 10}}})
    assert left_out.canonical_json() == spelled_out.canonical_json()
    assert left_out.digest == spelled_out.digest == hashlib.sha256(left_out.canonical_json().encode()).hexdigest()
    assert json.loads(left_out.canonical_json())["teams"]["search"]["max_priority"] == 10
    assert parse({"teams": {"search": {"max_priority": 11}}}).digest != left_out.digest


def test_configured_is_any_policy_other_than_the_built_in_ones() -> None:
    assert not Policies().configured
    assert not parse({"default": {"max_priority": 1000}, "change": {"changed_by": "alice@example.com"}}).configured
    assert parse({"default": {"max_priority": 10}}).configured
    assert parse({"teams": {"search": {}}}).configured  # a team named, even with the default policy
