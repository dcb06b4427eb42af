"""Settings, read once per instance from the environment and validated at cold start.

One typed model is the one table of settings: each field declares its environment variable
(``validation_alias``), default, constraints and description, and the README table
(``SETTINGS``) and ``setting_default(name)`` are derived from those fields.

Two classes, for two kinds of reader:

* ``CommonSettings``: what a command run on a laptop needs and may leave unset: the project
  (``""`` when unset), region, default base model, TUNEDROP_MODEL_RETIRING_DAYS and the local
  Vertex AI emulator's host. ``tunedrop validate`` and ``tunedrop dlq`` read these with
  ``CommonSettings.from_env()`` (or ``CommonSettings.from_env(environ)``), so no bucket is required.
* ``Settings(CommonSettings)``: everything the functions need; the project and bucket are
  required. ``Settings.from_env(environ)`` is the service's way in (``os.environ`` when no
  mapping is given).

Both are frozen and both raise one ``ConfigError("Tunedrop configuration is invalid: ...")``
that names every bad variable. A blank variable counts as unset (its default applies); values
are stripped; TUNEDROP_QUOTA_REGIONS and TUNEDROP_RETIREMENT_NOTICE_DAYS are comma-separated.
TUNEDROP_TEAM_POLICIES is a JSON document, parsed into ``shared.policy.Policies`` (its problems named by team
and field).
Instantiating a class with no arguments (``Settings()``) reads ``os.environ`` the same way but
raises pydantic's ValidationError; prefer ``from_env``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Final, Self

import msgspec
from annotated_types import Ge, Le
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared.compliance import KMS_KEY_PATTERN, SERVICE_ACCOUNT_PATTERN, key_location
from shared.errors import ConfigError
from shared.policy import TEAM_NAME_PATTERN as TEAM_NAME_PATTERN  # declared with the policies; read from here too
from shared.policy import Policies
from shared.validation.registry import ModelStatus, registry

# TUNEDROP_TUNING_PRICES: base model -> USD per million training tokens.
_PRICES = dict[str, Annotated[float, msgspec.Meta(ge=0, le=1_000_000)]]

# Pub/Sub's topic id rule: 3-255 characters from this set, starting with a letter, not "goog...".
_TOPIC_PATTERN: Final = r"^(?![Gg][Oo][Oo][Gg])[A-Za-z][A-Za-z0-9._~%+-]{2,254}$"
_OPTIONAL_TOPIC_PATTERN: Final = rf"^$|{_TOPIC_PATTERN}"
_REGION_PATTERN: Final = r"^[a-z]+-[a-z]+[0-9]+$"
_WHOLE: Final = re.compile(r"[+-]?[0-9]+")
# What a value failing each pattern is not, for the one-line message.
_PATTERN_SHAPES: Final = {
    _TOPIC_PATTERN: "a valid Pub/Sub topic id",
    _OPTIONAL_TOPIC_PATTERN: "a valid Pub/Sub topic id",
    _REGION_PATTERN: "a region like us-central1",
    TEAM_NAME_PATTERN: "a team name (1-63 lowercase letters, digits or -, not starting or ending with -)",
}
_NOT_WHOLE: Final = frozenset({"int_parsing", "int_from_float", "int_type"})
_OUT_OF_RANGE: Final = frozenset({"greater_than_equal", "less_than_equal"})

_PROJECT_DOC: Final = "Project that holds the bucket, topics, Firestore and tuning jobs."


def env_name(field: FieldInfo) -> str:
    """The environment variable a settings field is read from."""
    return str(field.validation_alias)


def _declared(model: type[BaseSettings], environ: Mapping[str, str]) -> dict[str, str]:
    """The model's variables that `environ` sets to something other than blanks, stripped."""
    values = {}
    for field in model.model_fields.values():
        value = environ.get(env_name(field), "").strip()
        if value:
            values[env_name(field)] = value
    return values


# The mapping from_env was given; None means os.environ. A context variable rather than an argument
# because pydantic-settings builds its sources itself, and a mapping passed in must replace the
# process environment, not sit on top of it.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("tunedrop_settings_environ", default=None)


class _Environment(PydanticBaseSettingsSource):
    """The environment read as from_env reads a mapping: declared names only, blank means unset."""

    def _environ(self) -> Mapping[str, str]:
        given = _ENVIRON.get()
        return os.environ if given is None else given

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value = self._environ().get(env_name(field), "").strip()
        return value or None, env_name(field), False

    def __call__(self) -> dict[str, Any]:
        return _declared(self.settings_cls, self._environ())


def _split(raw: object) -> object:
    """'a, b,,c' -> ('a', 'b', 'c'); anything not a string is left to the field's type."""
    return tuple(part.strip() for part in raw.split(",") if part.strip()) if isinstance(raw, str) else raw


class CommonSettings(BaseSettings):
    """The settings a local command may need, none of them required (see the module docstring)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", regex_engine="python-re")

    project: str = Field("", validation_alias="GOOGLE_CLOUD_PROJECT", description=_PROJECT_DOC)
    region: str = Field(
        "us-central1",
        validation_alias="TUNEDROP_REGION",
        pattern=_REGION_PATTERN,
        description="Vertex AI region where tuning jobs run.",
    )
    base_model: str = Field(
        "gemini-3.5-flash",
        validation_alias="TUNEDROP_BASE_MODEL",
        description="Base model when the upload's metadata names none.",
    )
    model_retiring_days: int = Field(
        30,
        validation_alias="TUNEDROP_MODEL_RETIRING_DAYS",
        ge=0,
        le=365,
        description="Reports and events of a model whose new tuning closes within this many days carry "
        "`model_retiring`.",
    )
    strict_validation: bool = Field(
        False,
        validation_alias="TUNEDROP_STRICT_VALIDATION",
        description="Make hygiene findings (duplicate examples, train/validation overlap) errors that reject "
        "the upload, not warnings.",
    )
    vertex_emulator_host: str = Field(
        "",
        validation_alias="TUNEDROP_VERTEX_EMULATOR_HOST",
        description="host:port of the local Vertex AI emulator (local stack only).",
    )
    operator: str = Field(
        "",
        validation_alias="TUNEDROP_OPERATOR",
        max_length=320,
        description="Who runs `tunedrop cancel`, `retry` and `retune`, recorded with the action when Google "
        "credentials name nobody (the local stack's emulators); read by the `tunedrop` command only.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _Environment(settings_cls)

    @field_validator("*", mode="before")
    @classmethod
    def _whole_numbers_only(cls, raw: object, info: ValidationInfo) -> object:
        """An integer setting is written in ASCII digits: pydantic alone would take "5.0" as 5."""
        field = cls.model_fields[info.field_name] if info.field_name else None
        if field is not None and field.annotation is int and isinstance(raw, str) and not _WHOLE.fullmatch(raw):
            raise PydanticCustomError("int_parsing", "not a whole number")
        return raw

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings `environ` (os.environ when None) declares; every problem in one ConfigError."""
        token = _ENVIRON.set(environ)
        try:
            return cls.model_validate({})
        except ValidationError as exc:
            problems = [_problem(error, cls) for error in exc.errors()]
            # Pydantic skips the cross-field checks once a field fails: run them on what did parse.
            problems += cls._cross_field_problems(_declared(cls, os.environ if environ is None else environ))
            raise ConfigError("Tunedrop configuration is invalid: " + "; ".join(problems) + ".") from None
        finally:
            _ENVIRON.reset(token)

    @classmethod
    def _cross_field_problems(cls, declared: Mapping[str, str]) -> list[str]:
        """Problems between settings, for a model whose fields did not all validate (none by default)."""
        return []

    def check_base_model(self, today: date) -> None:
        """Refuse to take uploads when the default base model cannot be tuned today (one clear message)."""
        spec = registry().resolve(self.base_model)
        if spec is None:
            known = ", ".join(registry().names())
            raise ConfigError(
                f"Tunedrop configuration is invalid: TUNEDROP_BASE_MODEL={self.base_model!r} is not a model "
                f"Tunedrop can tune; use one of {known}."
            )
        if spec.status(today) is not ModelStatus.AVAILABLE:
            raise ConfigError(
                f"Tunedrop configuration is invalid: TUNEDROP_BASE_MODEL={self.base_model!r} cannot be tuned any "
                f"more: {spec.closed_message(today)}"
            )

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"


class Settings(CommonSettings):
    """Everything the functions read; the project and the bucket are required."""

    project: str = Field(validation_alias="GOOGLE_CLOUD_PROJECT", description=_PROJECT_DOC)
    bucket: str = Field(
        validation_alias="TUNEDROP_BUCKET",
        description="Datasets bucket: uploads under `incoming/`, reports under `reports/`.",
    )
    incoming_prefix: str = Field(
        "incoming/",
        validation_alias="TUNEDROP_INCOMING_PREFIX",
        description="Object prefix whose `.jsonl` uploads become jobs.",
    )
    reports_prefix: str = Field(
        "reports/", validation_alias="TUNEDROP_REPORTS_PREFIX", description="Object prefix for validation reports."
    )
    default_team: str = Field(
        "default",
        validation_alias="TUNEDROP_DEFAULT_TEAM",
        pattern=TEAM_NAME_PATTERN,
        description="Team of the objects directly under `incoming/` and `datasets/` (not in a team's folder).",
    )
    team_policies: Policies = Field(
        Policies(),
        validation_alias="TUNEDROP_TEAM_POLICIES",
        description="Operators' team policies as JSON (allowed models, maximum priority, slots, weight, monthly "
        "budget, maximum epochs, label keys); empty: every team gets today's limits. Format: deploy/README.md.",
    )
    tuning_prices: dict[str, float] = Field(
        default_factory=dict,
        validation_alias="TUNEDROP_TUNING_PRICES",
        description="Operators' tuning prices in USD per million training tokens, by base model, as JSON (e.g. "
        '`{"gemini-3.5-flash": 5}`); they count jobs against team budgets where the registry records no price, or '
        "override its price (a negotiated rate).",
    )
    uploads_topic: str = Field(
        "tunedrop-uploads",
        validation_alias="TUNEDROP_UPLOADS_TOPIC",
        pattern=_TOPIC_PATTERN,
        description="Topic that receives the bucket's notifications.",
    )
    dispatch_topic: str = Field(
        "tunedrop-dispatch",
        validation_alias="TUNEDROP_DISPATCH_TOPIC",
        pattern=_TOPIC_PATTERN,
        description="Topic that wakes the dispatcher.",
    )
    evaluate_topic: str = Field(
        "tunedrop-evaluate",
        validation_alias="TUNEDROP_EVALUATE_TOPIC",
        pattern=_TOPIC_PATTERN,
        description="Topic that asks the evaluation gate to judge a succeeded job that has promote_as.",
    )
    evaluation_max_cost_usd: float = Field(
        5.0,
        validation_alias="TUNEDROP_EVALUATION_MAX_COST_USD",
        ge=0,
        le=100_000,
        description="The most one gate evaluation may cost (estimated before any model call); over it, none runs "
        "and the verdict is inconclusive. A team policy or the gate may only lower it.",
    )
    evaluation_concurrency: int = Field(
        8,
        validation_alias="TUNEDROP_EVALUATION_CONCURRENCY",
        ge=1,
        le=64,
        description="Model calls one gate evaluation makes at once.",
    )
    evaluation_max_examples: int = Field(
        500,
        validation_alias="TUNEDROP_EVALUATION_MAX_EXAMPLES",
        ge=1,
        le=10_000,
        description="Held-out examples a gate evaluation judges at most (the first ones of the file).",
    )
    poll_topic: str = Field(
        "tunedrop-poll",
        validation_alias="TUNEDROP_POLL_TOPIC",
        pattern=_TOPIC_PATTERN,
        description="Topic of the scheduler's poll ticks.",
    )
    completions_topic: str = Field(
        "tunedrop-completions",
        validation_alias="TUNEDROP_COMPLETIONS_TOPIC",
        pattern=_TOPIC_PATTERN,
        description="Topic of completion events.",
    )
    events_topic: str = Field(
        "",
        validation_alias="TUNEDROP_EVENTS_TOPIC",
        pattern=_OPTIONAL_TOPIC_PATTERN,
        description="Optional topic of lifecycle events (queued, submitted, running, stuck, finished).",
    )
    stuck_seconds: int = Field(
        3600,
        validation_alias="TUNEDROP_STUCK_SECONDS",
        ge=60,
        le=30 * 86_400,
        description="A job still pending on Vertex AI after this long raises a stuck warning.",
    )
    max_running_seconds: int = Field(
        172_800,
        validation_alias="TUNEDROP_MAX_RUNNING_SECONDS",
        ge=60,
        le=30 * 86_400,
        description="A job running longer than this raises a stuck warning.",
    )
    validation_timeout_seconds: int = Field(
        7200,
        validation_alias="TUNEDROP_VALIDATION_TIMEOUT_SECONDS",
        ge=60,
        le=7 * 86_400,
        description="A job still VALIDATING after this long (longer than the upload subscription's retries last) "
        "ends FAILED with `validation_incomplete`.",
    )
    quota: int = Field(
        1,
        validation_alias="TUNEDROP_QUOTA",
        ge=1,
        le=1000,
        description="Concurrent tuning jobs Tunedrop may run (the project's global quota).",
    )
    quota_regions: tuple[str, ...] = Field(
        (),
        validation_alias="TUNEDROP_QUOTA_REGIONS",
        description="Comma-separated regions whose active tuning jobs, Tunedrop's or not, count against the quota "
        "(always includes TUNEDROP_REGION).",
    )
    tuning_service_accounts: tuple[str, ...] = Field(
        (),
        validation_alias="TUNEDROP_TUNING_SERVICE_ACCOUNTS",
        description="Service accounts a tuning job may run as (comma-separated emails): a manifest's "
        "`service_account` must be one of them. Empty: jobs run as Vertex AI's own tuning service agent.",
    )
    default_tuning_service_account: str = Field(
        "",
        validation_alias="TUNEDROP_DEFAULT_TUNING_SERVICE_ACCOUNT",
        description="The service account of a job that names none (one of TUNEDROP_TUNING_SERVICE_ACCOUNTS); "
        "empty: Vertex AI's own.",
    )
    encryption_keys: tuple[str, ...] = Field(
        (),
        validation_alias="TUNEDROP_ENCRYPTION_KEYS",
        description="Cloud KMS keys (comma-separated `projects/*/locations/*/keyRings/*/cryptoKeys/*`, in "
        "TUNEDROP_REGION) a job may encrypt with: a manifest's `encryption_key` must be one of them.",
    )
    default_encryption_key: str = Field(
        "",
        validation_alias="TUNEDROP_DEFAULT_ENCRYPTION_KEY",
        description="The key of a job that names none (one of TUNEDROP_ENCRYPTION_KEYS); empty: Google-managed "
        "encryption.",
    )
    retirement_notice_days: tuple[int, ...] = Field(
        (30, 7),
        validation_alias="TUNEDROP_RETIREMENT_NOTICE_DAYS",
        description="Days before a base model retires at which each succeeded job's tuned model gets a "
        "`model_retiring` lifecycle event (comma-separated).",
    )
    reconcile_page: int = Field(
        500,
        validation_alias="TUNEDROP_RECONCILE_PAGE",
        ge=0,
        le=5000,
        description="Objects under the incoming prefix the poll tick checks for a missing job, per tick.",
    )
    reconcile_grace_seconds: int = Field(
        900,
        validation_alias="TUNEDROP_RECONCILE_GRACE_SECONDS",
        ge=0,
        le=86_400,
        description="An upload without a job this long after it was written is notified again by the poll tick.",
    )
    reconcile_window_days: int = Field(
        7,
        validation_alias="TUNEDROP_RECONCILE_WINDOW_DAYS",
        ge=1,
        le=365,
        description="Uploads older than this are never notified again (shorter than TUNEDROP_RETENTION_DAYS, so an "
        "expired job's upload is not tuned twice).",
    )
    collection_prefix: str = Field(
        "tunedrop", validation_alias="TUNEDROP_COLLECTION_PREFIX", description="Prefix of the Firestore collections."
    )
    firestore_database: str = Field(
        "(default)", validation_alias="TUNEDROP_FIRESTORE_DATABASE", description="Firestore database id."
    )
    retention_days: int = Field(
        365,
        validation_alias="TUNEDROP_RETENTION_DAYS",
        ge=1,
        le=3650,
        description="Days until a finished job record expires (Firestore TTL on expire_at).",
    )
    # Longer than two Vertex AI call deadlines (30 s each), so a live submitter is never overtaken.
    submit_lease_seconds: int = Field(
        300,
        validation_alias="TUNEDROP_SUBMIT_LEASE_SECONDS",
        ge=60,
        le=86_400,
        description="How long a SUBMITTING claim holds before it is recovered.",
    )

    @field_validator("team_policies", mode="before")
    @classmethod
    def _policies(cls, raw: object) -> object:
        """The JSON document -> Policies; its ConfigError (naming each team and field) becomes this field's."""
        if not isinstance(raw, str):
            return raw
        try:
            return Policies.from_json(raw)
        except ConfigError as exc:
            raise ValueError(str(exc).rstrip(".")) from None

    @field_validator("tuning_prices", mode="before")
    @classmethod
    def _prices(cls, raw: object) -> object:
        """The JSON object (blank: none), typed by _PRICES, each model named as the registry names it."""
        if not isinstance(raw, str):
            return raw
        if not raw.strip():
            return {}
        try:
            prices = msgspec.json.decode(raw, type=_PRICES)
        except msgspec.ValidationError as exc:
            raise ValueError(f"TUNEDROP_TUNING_PRICES: {exc} (USD per million training tokens, 0..1000000)") from None
        except msgspec.DecodeError as exc:
            raise ValueError(f"TUNEDROP_TUNING_PRICES is not a JSON object: {exc}") from None
        canonical: dict[str, float] = {}
        for name, price in prices.items():
            spec = registry().resolve(name)
            if spec is None:
                raise ValueError(f"TUNEDROP_TUNING_PRICES names {name!r}, not a model the registry knows")
            canonical[spec.name] = price
        return canonical

    @field_validator("quota_regions", mode="before")
    @classmethod
    def _regions(cls, raw: object) -> object:
        return _shaped_list(raw, "TUNEDROP_QUOTA_REGIONS", _REGION_PATTERN, "a region like europe-west4")

    @field_validator("tuning_service_accounts", mode="before")
    @classmethod
    def _service_accounts(cls, raw: object) -> object:
        return _shaped_list(raw, "TUNEDROP_TUNING_SERVICE_ACCOUNTS", SERVICE_ACCOUNT_PATTERN, "a service account email")

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _encryption_keys(cls, raw: object) -> object:
        return _shaped_list(raw, "TUNEDROP_ENCRYPTION_KEYS", KMS_KEY_PATTERN, "a Cloud KMS key name")

    @model_validator(mode="after")
    def _compliance_defaults(self) -> Self:
        problems = [
            *_default_problems(
                self.default_tuning_service_account,
                self.tuning_service_accounts,
                "TUNEDROP_DEFAULT_TUNING_SERVICE_ACCOUNT",
                "TUNEDROP_TUNING_SERVICE_ACCOUNTS",
            ),
            *_default_problems(
                self.default_encryption_key,
                self.encryption_keys,
                "TUNEDROP_DEFAULT_ENCRYPTION_KEY",
                "TUNEDROP_ENCRYPTION_KEYS",
            ),
            *(
                f"TUNEDROP_ENCRYPTION_KEYS has {key!r}, in {key_location(key)}: a job's key must be in its region, "
                f"TUNEDROP_REGION={self.region}"
                for key in self.encryption_keys
                if key_location(key) != self.region
            ),
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("retirement_notice_days", mode="before")
    @classmethod
    def _notice_days(cls, raw: object) -> object:
        """'30,7' -> (30, 7): distinct whole days, largest first."""
        days = _split(raw)
        if not isinstance(days, tuple):
            return days
        bad = [d for d in days if not (str(d).isascii() and str(d).isdigit() and 1 <= int(d) <= 365)]
        if bad:
            raise ValueError(
                "; ".join(
                    f"TUNEDROP_RETIREMENT_NOTICE_DAYS has {str(d)!r}, which is not a whole number of days 1..365"
                    for d in bad
                )
            )
        return tuple(sorted({int(d) for d in days}, reverse=True))

    @model_validator(mode="after")
    def _window_within_retention(self) -> Self:
        problem = _window_problem(self.reconcile_window_days, self.retention_days)
        if problem:
            raise ValueError(problem)
        return self

    @classmethod
    def _cross_field_problems(cls, declared: Mapping[str, str]) -> list[str]:
        values = {}
        for name in ("reconcile_window_days", "retention_days"):
            raw = declared.get(env_name(cls.model_fields[name]), str(cls.model_fields[name].default))
            if not _WHOLE.fullmatch(raw):
                return []  # already reported as not a whole number
            values[name] = int(raw)
        problem = _window_problem(values["reconcile_window_days"], values["retention_days"])
        return [problem] if problem else []


def _shaped_list(raw: object, variable: str, pattern: str, shape: str) -> object:
    """'a, b' -> ('a', 'b'), each checked against `pattern`; every bad one named."""
    items = _split(raw)
    if not isinstance(items, tuple):
        return items
    bad = [item for item in items if not re.match(pattern, str(item))]
    if bad:
        raise ValueError("; ".join(f"{variable} has {str(item)!r}, which is not {shape}" for item in bad))
    return items


def _default_problems(default: str, allowed: tuple[str, ...], variable: str, list_variable: str) -> list[str]:
    if not default or default in allowed:
        return []
    return [f"{variable}={default!r} is not one of {list_variable}: add it there too"]


def _window_problem(window_days: int, retention_days: int) -> str:
    if window_days < retention_days:
        return ""
    return (
        f"TUNEDROP_RECONCILE_WINDOW_DAYS={window_days} must be shorter than "
        f"TUNEDROP_RETENTION_DAYS={retention_days}, or expired jobs' uploads would be tuned again"
    )


def _bounds(model: type[BaseSettings], name: str) -> tuple[object, object]:
    field = next(f for f in model.model_fields.values() if env_name(f) == name)
    low = next((m.ge for m in field.metadata if isinstance(m, Ge)), "")
    high = next((m.le for m in field.metadata if isinstance(m, Le)), "")
    return low, high


def _problem(error: ErrorDetails, model: type[BaseSettings]) -> str:
    """One pydantic error as the sentence the operator reads, naming the variable."""
    name = str(error["loc"][0]) if error["loc"] else ""
    value, kind, context = error["input"], error["type"], error.get("ctx") or {}
    if kind == "missing":
        return f"{name} is not set"
    if kind in _NOT_WHOLE:
        return f"{name}={value!r} is not a whole number"
    if kind in _OUT_OF_RANGE:
        low, high = _bounds(model, name)
        return f"{name}={value} is outside {low}..{high}"
    if kind == "string_pattern_mismatch":
        return f"{name}={value!r} is not {_PATTERN_SHAPES.get(str(context.get('pattern')), 'valid')}"
    if kind == "value_error":  # our validators write whole sentences
        return str(context.get("error", error["msg"]))
    return f"{name}={value!r}: {error['msg']}"


@dataclass(frozen=True)
class Setting:
    """One environment variable the code reads, as the README table shows it."""

    name: str
    default: str | None  # None: required
    doc: str


def _shown(field: FieldInfo) -> str | None:
    if field.is_required():
        return None
    default = field.get_default(call_default_factory=True)
    if isinstance(default, Policies):
        return ""  # the built-in policies, written as an empty document
    return ",".join(str(item) for item in default) if isinstance(default, tuple) else str(default)


def settings_table(model: type[CommonSettings] = Settings) -> tuple[Setting, ...]:
    """The environment variables a settings model reads, with their defaults and descriptions."""
    return tuple(Setting(env_name(f), _shown(f), f.description or "") for f in model.model_fields.values())


SETTINGS: Final = settings_table(Settings)
_DEFAULTS: Final = {s.name: s.default for s in SETTINGS}


def setting_default(name: str) -> str:
    """The default of a setting as its environment variable would spell it ("" for a required one)."""
    return _DEFAULTS[name] or ""
