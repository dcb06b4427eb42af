"""Settings, read once per instance from the environment and validated at cold start."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from shared.errors import ConfigError
from shared.validation.registry import ModelStatus, registry

_TOPIC_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")


@dataclass(frozen=True)
class Setting:
    """One environment variable the code reads; the README table is generated from these."""

    name: str
    default: str | None
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting("GOOGLE_CLOUD_PROJECT", None, "Project that holds the bucket, topics, Firestore and tuning jobs."),
    Setting("TUNEDROP_REGION", "us-central1", "Vertex AI region where tuning jobs run."),
    Setting("TUNEDROP_BUCKET", None, "Datasets bucket: uploads under `incoming/`, reports under `reports/`."),
    Setting("TUNEDROP_INCOMING_PREFIX", "incoming/", "Object prefix whose `.jsonl` uploads become jobs."),
    Setting("TUNEDROP_REPORTS_PREFIX", "reports/", "Object prefix for validation reports."),
    Setting("TUNEDROP_UPLOADS_TOPIC", "tunedrop-uploads", "Topic that receives the bucket's notifications."),
    Setting("TUNEDROP_DISPATCH_TOPIC", "tunedrop-dispatch", "Topic that wakes the dispatcher."),
    Setting("TUNEDROP_POLL_TOPIC", "tunedrop-poll", "Topic of the scheduler's poll ticks."),
    Setting("TUNEDROP_COMPLETIONS_TOPIC", "tunedrop-completions", "Topic of completion events."),
    Setting(
        "TUNEDROP_EVENTS_TOPIC", "", "Optional topic of lifecycle events (queued, submitted, running, stuck, finished)."
    ),
    Setting(
        "TUNEDROP_STUCK_SECONDS", "3600", "A job still pending on Vertex AI after this long raises a stuck warning."
    ),
    Setting("TUNEDROP_MAX_RUNNING_SECONDS", "172800", "A job running longer than this raises a stuck warning."),
    Setting(
        "TUNEDROP_VALIDATION_TIMEOUT_SECONDS",
        "7200",
        "A job still VALIDATING after this long (longer than the upload subscription's retries last) ends FAILED "
        "with `validation_incomplete`.",
    ),
    Setting("TUNEDROP_QUOTA", "1", "Concurrent tuning jobs Tunedrop may run (the project's global quota)."),
    Setting(
        "TUNEDROP_QUOTA_REGIONS",
        "",
        "Comma-separated regions whose active tuning jobs, Tunedrop's or not, count against the quota "
        "(always includes TUNEDROP_REGION).",
    ),
    Setting("TUNEDROP_BASE_MODEL", "gemini-3.5-flash", "Base model when the upload's metadata names none."),
    Setting(
        "TUNEDROP_MODEL_RETIRING_DAYS",
        "30",
        "Reports and events of a model whose new tuning closes within this many days carry `model_retiring`.",
    ),
    Setting(
        "TUNEDROP_RETIREMENT_NOTICE_DAYS",
        "30,7",
        "Days before a base model retires at which each succeeded job's tuned model gets a `model_retiring` "
        "lifecycle event (comma-separated).",
    ),
    Setting(
        "TUNEDROP_RECONCILE_PAGE",
        "500",
        "Objects under the incoming prefix the poll tick checks for a missing job, per tick.",
    ),
    Setting(
        "TUNEDROP_RECONCILE_GRACE_SECONDS",
        "900",
        "An upload without a job this long after it was written is notified again by the poll tick.",
    ),
    Setting(
        "TUNEDROP_RECONCILE_WINDOW_DAYS",
        "7",
        "Uploads older than this are never notified again (shorter than TUNEDROP_RETENTION_DAYS, so an expired "
        "job's upload is not tuned twice).",
    ),
    Setting("TUNEDROP_COLLECTION_PREFIX", "tunedrop", "Prefix of the Firestore collections."),
    Setting("TUNEDROP_FIRESTORE_DATABASE", "(default)", "Firestore database id."),
    Setting("TUNEDROP_RETENTION_DAYS", "365", "Days until a finished job record expires (Firestore TTL on expire_at)."),
    Setting("TUNEDROP_SUBMIT_LEASE_SECONDS", "300", "How long a SUBMITTING claim holds before it is recovered."),
    Setting("TUNEDROP_VERTEX_EMULATOR_HOST", "", "host:port of the local Vertex AI emulator (local stack only)."),
)
_DEFAULTS = {s.name: s.default for s in SETTINGS}


def setting_default(name: str) -> str:
    """The default of a setting in SETTINGS ("" for a required one)."""
    return _DEFAULTS[name] or ""


@dataclass(frozen=True)
class Settings:
    project: str
    region: str
    bucket: str
    incoming_prefix: str
    reports_prefix: str
    uploads_topic: str
    dispatch_topic: str
    poll_topic: str
    completions_topic: str
    quota: int
    base_model: str
    collection_prefix: str
    firestore_database: str
    submit_lease_seconds: int
    events_topic: str = ""
    retention_days: int = 365
    stuck_seconds: int = 3600
    max_running_seconds: int = 172_800
    vertex_emulator_host: str = ""
    quota_regions: tuple[str, ...] = ()
    validation_timeout_seconds: int = 7200
    reconcile_page: int = 500
    reconcile_grace_seconds: int = 900
    reconcile_window_days: int = 7
    model_retiring_days: int = 30
    retirement_notice_days: tuple[int, ...] = (30, 7)
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        problems: list[str] = []

        def get(name: str) -> str:
            value = env.get(name, "").strip() or (_DEFAULTS.get(name) or "")
            if not value and _DEFAULTS.get(name) is None:
                problems.append(f"{name} is not set")
            return value

        def get_int(name: str, low: int, high: int) -> int:
            raw = get(name)
            try:
                value = int(raw)
            except ValueError:
                problems.append(f"{name}={raw!r} is not a whole number")
                return low
            if not low <= value <= high:
                problems.append(f"{name}={value} is outside {low}..{high}")
            return value

        def get_topic(name: str) -> str:
            value = get(name)
            if value and (not _TOPIC_NAME.match(value) or value.lower().startswith("goog")):
                problems.append(f"{name}={value!r} is not a valid Pub/Sub topic id")
            return value

        settings = cls(
            project=get("GOOGLE_CLOUD_PROJECT"),
            region=get("TUNEDROP_REGION"),
            bucket=get("TUNEDROP_BUCKET"),
            incoming_prefix=get("TUNEDROP_INCOMING_PREFIX"),
            reports_prefix=get("TUNEDROP_REPORTS_PREFIX"),
            uploads_topic=get_topic("TUNEDROP_UPLOADS_TOPIC"),
            dispatch_topic=get_topic("TUNEDROP_DISPATCH_TOPIC"),
            poll_topic=get_topic("TUNEDROP_POLL_TOPIC"),
            completions_topic=get_topic("TUNEDROP_COMPLETIONS_TOPIC"),
            quota=get_int("TUNEDROP_QUOTA", 1, 1000),
            base_model=get("TUNEDROP_BASE_MODEL"),
            collection_prefix=get("TUNEDROP_COLLECTION_PREFIX"),
            firestore_database=get("TUNEDROP_FIRESTORE_DATABASE"),
            # Longer than two Vertex AI call deadlines (30 s each), so a live submitter is never overtaken.
            submit_lease_seconds=get_int("TUNEDROP_SUBMIT_LEASE_SECONDS", 60, 86_400),
            events_topic=get_topic("TUNEDROP_EVENTS_TOPIC"),
            retention_days=get_int("TUNEDROP_RETENTION_DAYS", 1, 3650),
            stuck_seconds=get_int("TUNEDROP_STUCK_SECONDS", 60, 30 * 86_400),
            max_running_seconds=get_int("TUNEDROP_MAX_RUNNING_SECONDS", 60, 30 * 86_400),
            vertex_emulator_host=env.get("TUNEDROP_VERTEX_EMULATOR_HOST", "").strip(),
            quota_regions=tuple(r.strip() for r in env.get("TUNEDROP_QUOTA_REGIONS", "").split(",") if r.strip()),
            reconcile_page=get_int("TUNEDROP_RECONCILE_PAGE", 0, 5000),
            reconcile_grace_seconds=get_int("TUNEDROP_RECONCILE_GRACE_SECONDS", 0, 86_400),
            reconcile_window_days=get_int("TUNEDROP_RECONCILE_WINDOW_DAYS", 1, 365),
            validation_timeout_seconds=get_int("TUNEDROP_VALIDATION_TIMEOUT_SECONDS", 60, 7 * 86_400),
            model_retiring_days=get_int("TUNEDROP_MODEL_RETIRING_DAYS", 0, 365),
            retirement_notice_days=_notice_days(get("TUNEDROP_RETIREMENT_NOTICE_DAYS"), problems),
        )
        for region in settings.quota_regions:
            if not _REGION.match(region):
                problems.append(f"TUNEDROP_QUOTA_REGIONS has {region!r}, which is not a region like europe-west4")
        if settings.reconcile_window_days >= settings.retention_days:
            problems.append(
                f"TUNEDROP_RECONCILE_WINDOW_DAYS={settings.reconcile_window_days} must be shorter than "
                f"TUNEDROP_RETENTION_DAYS={settings.retention_days}, or expired jobs' uploads would be tuned again"
            )
        if settings.region and not _REGION.match(settings.region):
            problems.append(f"TUNEDROP_REGION={settings.region!r} is not a region like us-central1")
        if problems:
            raise ConfigError("Tunedrop configuration is invalid: " + "; ".join(problems) + ".")
        return settings

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


def _notice_days(raw: str, problems: list[str]) -> tuple[int, ...]:
    """'30,7' -> (30, 7): distinct whole days, largest first."""
    days: set[int] = set()
    for part in raw.split(","):
        text = part.strip()
        if not text:
            continue
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 365:
            problems.append(f"TUNEDROP_RETIREMENT_NOTICE_DAYS has {text!r}, which is not a whole number of days 1..365")
            continue
        days.add(int(text))
    return tuple(sorted(days, reverse=True))
