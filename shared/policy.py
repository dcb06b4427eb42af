"""Team policies: what each team may ask of Tunedrop, set by operators, never by uploaders.

Operators write the policies as JSON in TUNEDROP_TEAM_POLICIES (Terraform renders it from its
``default_team_policy`` and ``team_policies`` variables); uploaders can write only objects, so they cannot
change them. The document::

    {"default": {"max_priority": 10},
     "teams": {"search": {"allowed_models": ["gemini-3.5-flash"], "max_priority": 50, "weight": 2,
                          "max_slots": 2, "monthly_budget_usd": 500, "over_budget": "wait",
                          "max_epochs": 10, "allowed_label_keys": ["cost-center", "owner"]}}}

Terraform adds who changed the policies last and why, which Tunedrop keeps with each version of the policies it
runs with (``shared/services/policy_history.py``, ``tunedrop policy history``) and which never changes a policy::

    "change": {"changed_by": "alice@example.com", "reason": "search gets a second slot for the launch"}

Every key is optional. A field a team's policy leaves out (or sets to null) is the default policy's; a
field the default policy leaves out is Tunedrop's built-in default, which is today's behaviour: every model,
priority up to 1000, no slot cap, weight 1, no budget, no epoch cap beyond the model's, any label key.
So a team cannot lift a cap the default policy sets by writing null: it writes a larger value.

An upload asking more than its team's policy allows is REJECTED naming the policy (``violations``); the slot
cap, weight and budget are the dispatcher's.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Final, Literal

from shared.errors import ConfigError
from shared.validation.registry import registry

# A team's name, its folder under incoming/, datasets/ and reports/: declared here once (shared.config
# re-exports it; Terraform's teams variable checks the same shape). A valid Vertex AI label value, and plain in
# an IAM condition's object prefix. \A and \Z: a `$` would let a trailing newline through.
TEAM_NAME_PATTERN: Final = r"\A[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z"
# Vertex AI's label key rule, as shared.manifest.LabelKey spells it (a test keeps the two equal; the manifest
# module imports the settings, so this one cannot import it).
LABEL_KEY_PATTERN: Final = r"\A[a-z][a-z0-9_-]{0,62}\Z"
PRIORITY_RANGE: Final = (-1000, 1000)  # the manifest's own range
EPOCHS_RANGE: Final = (1, 10_000)  # the manifest's own range
MAX_WEIGHT: Final = 1000
MAX_SLOTS: Final = 1000  # TUNEDROP_QUOTA's ceiling
POLICIES_VARIABLE: Final = "TUNEDROP_TEAM_POLICIES"
# The change metadata's bounds: an email address fits in 320 characters (RFC 3696 erratum 1690: 64 + 1 + 255); a
# reason is a sentence or two. Terraform's policy_change variable checks the same.
MAX_CHANGED_BY: Final = 320
MAX_CHANGE_REASON: Final = 500

OverBudget = Literal["wait", "reject"]


@dataclass(frozen=True)
class TeamPolicy:
    """One team's limits. None means no limit of Tunedrop's own (the registry's and the manifest's still hold)."""

    allowed_models: tuple[str, ...] | None = None  # canonical registry names; None: every model it can tune
    max_priority: int = PRIORITY_RANGE[1]
    max_slots: int | None = None  # concurrent tuning jobs; None: no cap but the quota
    weight: int = 1  # the team's share of the quota among teams with queued work
    monthly_budget_usd: float | None = None
    over_budget: OverBudget = "wait"  # a job that would exceed the budget waits QUEUED, or is REJECTED
    max_epochs: int | None = None
    allowed_label_keys: tuple[str, ...] | None = None
    # The most one evaluation-gate run of the team's jobs may cost (it can only lower TUNEDROP_EVALUATION_MAX_COST_USD).
    evaluation_max_cost_usd: float | None = None

    def allows_model(self, name: str) -> bool:
        """Whether the policy lets the team tune this model (a name, alias or resource name)."""
        if self.allowed_models is None:
            return True
        spec = registry().resolve(name)
        return spec is not None and spec.name in self.allowed_models


# The issue code (shared.validation.codes) and the manifest path of a value beyond each policy field.
VIOLATION_CODES: Final = {
    "allowed_models": ("policy_model_not_allowed", "$.base_model"),
    "max_priority": ("policy_priority_too_high", "$.priority"),
    "max_epochs": ("policy_epochs_too_high", "$.hyper_parameters.epochs"),
    "allowed_label_keys": ("policy_label_key_not_allowed", "$.labels"),
    "monthly_budget_usd": ("policy_budget_needs_price", "$.base_model"),
}


@dataclass(frozen=True)
class PolicyViolation:
    """One value an upload asks for beyond its team's policy: the policy field, and the sentence for the report."""

    field: str
    message: str

    @property
    def code(self) -> str:
        return VIOLATION_CODES[self.field][0]

    @property
    def path(self) -> str:
        return VIOLATION_CODES[self.field][1]


def violations(
    team: str,
    policy: TeamPolicy,
    *,
    base_model: str,
    priority: int,
    epochs: int | None,
    label_keys: Iterable[str],
    prices: Mapping[str, float] | None = None,
) -> list[PolicyViolation]:
    """Every value of an upload beyond `team`'s policy, each naming the policy and the value asked for."""
    beyond = [
        ("allowed_models", _model_beyond(policy, base_model)),
        ("max_priority", _priority_beyond(policy, priority)),
        ("max_epochs", _epochs_beyond(policy, epochs)),
        ("allowed_label_keys", _labels_beyond(policy, label_keys)),
        ("monthly_budget_usd", _budget_uncountable(policy, base_model, prices or {})),
    ]
    whose = f"team {json.dumps(team)} policy"
    return [
        PolicyViolation(name, f"{whose} {what}: ask an operator to change the team's policy.")
        for name, what in beyond
        if what
    ]


def _model_beyond(policy: TeamPolicy, base_model: str) -> str:
    # A model the registry does not know is the registry check's problem, reported once, there.
    if registry().resolve(base_model) is None or policy.allows_model(base_model):
        return ""
    return f"allows base models {', '.join(policy.allowed_models or ())}; this upload asks {base_model}"


def _budget_uncountable(policy: TeamPolicy, base_model: str, prices: Mapping[str, float]) -> str:
    # A job's cost counts against the budget at the model's tuning price (the operators' or the registry's):
    # without one it cannot.
    spec = registry().resolve(base_model)
    if policy.monthly_budget_usd is None or spec is None:
        return ""
    if spec.name in prices or spec.price_per_million_tokens_usd is not None:
        return ""
    return (
        f"sets a monthly budget, and no tuning price is recorded for {spec.name}, so this job's cost cannot be "
        "counted against it; pick a model with a price (`tunedrop models`), or ask an operator to set one "
        "(TUNEDROP_TUNING_PRICES)"
    )


def _priority_beyond(policy: TeamPolicy, priority: int) -> str:
    if priority <= policy.max_priority:
        return ""
    return f"allows priority up to {policy.max_priority}; this manifest asks {priority}"


def _epochs_beyond(policy: TeamPolicy, epochs: int | None) -> str:
    if epochs is None or policy.max_epochs is None or epochs <= policy.max_epochs:
        return ""
    return f"allows at most {policy.max_epochs} epochs; this manifest asks {epochs}"


def _labels_beyond(policy: TeamPolicy, label_keys: Iterable[str]) -> str:
    if policy.allowed_label_keys is None:
        return ""
    refused = sorted(set(label_keys) - set(policy.allowed_label_keys))
    if not refused:
        return ""
    allowed = f"label keys {', '.join(policy.allowed_label_keys)}" if policy.allowed_label_keys else "no labels"
    return f"allows {allowed}; this manifest sets {', '.join(refused)}"


@dataclass(frozen=True)
class PolicyChange:
    """Who changed the policies last and why, as the document says ("" when it does not)."""

    changed_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Policies:
    """The default policy and each team's; ``for_team`` is the one way to read them."""

    default: TeamPolicy = TeamPolicy()
    teams: Mapping[str, TeamPolicy] = field(default_factory=dict)
    # Metadata, not policy: two documents with the same policies and different change notes are equal.
    change: PolicyChange = field(default=PolicyChange(), compare=False)

    def for_team(self, team: str) -> TeamPolicy:
        return self.teams.get(team, self.default)

    @property
    def configured(self) -> bool:
        """Whether any policy differs from Tunedrop's built-in defaults."""
        return self != Policies()

    def canonical_json(self) -> str:
        """The policies every field spelled out (a field left out in the document shows the value it falls back
        to), keys sorted, no change metadata: two documents meaning the same policies have the same text."""
        document = {
            "default": asdict(self.default),
            "teams": {team: asdict(policy) for team, policy in sorted(self.teams.items())},
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        """sha256 of canonical_json: the id of this version of the policies."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> Policies:
        """The policies a TUNEDROP_TEAM_POLICIES document declares ("" or blank: the defaults only); every
        problem, each naming the team and field, in one ConfigError."""
        if not text.strip():
            return cls()
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{POLICIES_VARIABLE} is not JSON: {exc}.") from None
        problems: list[str] = []
        policies = _policies(document, problems)
        if problems:
            raise ConfigError(f"{POLICIES_VARIABLE} is invalid: " + "; ".join(problems) + ".")
        return policies


def _policies(document: Any, problems: list[str]) -> Policies:
    if not isinstance(document, dict):
        problems.append('it must be an object {"default": {...}, "teams": {"<team>": {...}}}')
        return Policies()
    problems.extend(
        f"unknown key {json.dumps(key)} (use default, teams and change)"
        for key in document.keys() - {"default", "teams", "change"}
    )
    change = _change(document.get("change"), problems)
    default = _policy(document.get("default"), TeamPolicy(), "the default policy", problems)
    teams_raw = {} if document.get("teams") is None else document["teams"]
    if not isinstance(teams_raw, dict):
        problems.append("teams must be an object of team name to policy")
        return Policies(default, change=change)
    teams = {}
    for team, raw in teams_raw.items():
        if not re.match(TEAM_NAME_PATTERN, team):
            problems.append(f"team {json.dumps(team)} is not a team name (1-63 lowercase letters, digits or -)")
            continue
        teams[team] = _policy(raw, default, f"team {json.dumps(team)}", problems)
    return Policies(default, teams, change)


def _change(raw: Any, problems: list[str]) -> PolicyChange:
    """The change metadata (null or left out: none); each bad field a problem."""
    if raw is None:
        return PolicyChange()
    if not isinstance(raw, dict):
        problems.append('change must be an object {"changed_by": "...", "reason": "..."}')
        return PolicyChange()
    problems.extend(f"change: unknown field {json.dumps(key)}" for key in sorted(raw.keys() - {"changed_by", "reason"}))
    values = {}
    for name, limit in (("changed_by", MAX_CHANGED_BY), ("reason", MAX_CHANGE_REASON)):
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit:
            problems.append(f"change: {name} must be a string of at most {limit} characters")
        else:
            values[name] = value.strip()
    return PolicyChange(**values)


def _policy(raw: Any, base: TeamPolicy, owner: str, problems: list[str]) -> TeamPolicy:
    """`base` with the fields `raw` sets; each bad field a problem naming `owner`."""
    if raw is None:
        return base
    if not isinstance(raw, dict):
        problems.append(f"{owner}: a policy must be an object")
        return base
    known = {f.name for f in fields(TeamPolicy)}
    problems.extend(f"{owner}: unknown field {json.dumps(key)}" for key in sorted(raw.keys() - known))
    changes = {}
    for name in sorted(raw.keys() & known):
        if raw[name] is None:
            continue  # null: not set, so the default policy's value holds
        value, problem = _FIELD_PARSERS[name](raw[name])
        if problem:
            problems.append(f"{owner}: {name}={json.dumps(raw[name])} {problem}")
        else:
            changes[name] = value
    return replace(base, **changes)


def _whole(low: int, high: int) -> Callable[[Any], tuple[Any, str]]:
    def parse(value: Any) -> tuple[Any, str]:
        if isinstance(value, bool) or not isinstance(value, int):
            return None, "is not a whole number"
        return (value, "") if low <= value <= high else (None, f"is outside {low}..{high}")

    return parse


def _budget(value: Any) -> tuple[Any, str]:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None, "is not a number of US dollars"
    return (float(value), "") if value >= 0 else (None, "is negative")


def _over_budget(value: Any) -> tuple[Any, str]:
    return (value, "") if value in ("wait", "reject") else (None, 'is not "wait" or "reject"')


def _names(what: str, check: Callable[[str], str | None]) -> Callable[[Any], tuple[Any, str]]:
    """A list of strings, each `check`ed (canonical name, or None when refused)."""

    def parse(value: Any) -> tuple[Any, str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return None, f"is not a list of {what}"
        checked = [(item, check(item)) for item in value]
        refused = [item for item, canonical in checked if canonical is None]
        if refused:
            return None, f"has {', '.join(json.dumps(item) for item in refused)}, not {what}"
        return tuple(dict.fromkeys(canonical for _, canonical in checked if canonical is not None)), ""

    return parse


def _model_name(name: str) -> str | None:
    spec = registry().resolve(name)
    return spec.name if spec is not None else None


def _label_key(key: str) -> str | None:
    return key if re.match(LABEL_KEY_PATTERN, key) else None


def _models(value: Any) -> tuple[Any, str]:
    models, problem = _names("models Tunedrop can tune", _model_name)(value)
    if not problem and not models:
        return None, "allows no model (leave the field out to allow every model)"
    if problem and isinstance(value, list):
        problem += f" (known: {', '.join(registry().names())})"
    return models, problem


_FIELD_PARSERS: Final[Mapping[str, Callable[[Any], tuple[Any, str]]]] = {
    "allowed_models": _models,
    "max_priority": _whole(*PRIORITY_RANGE),
    "max_slots": _whole(1, MAX_SLOTS),
    "weight": _whole(1, MAX_WEIGHT),
    "monthly_budget_usd": _budget,
    "over_budget": _over_budget,
    "max_epochs": _whole(*EPOCHS_RANGE),
    "allowed_label_keys": _names("label keys", _label_key),
    "evaluation_max_cost_usd": _budget,
}
