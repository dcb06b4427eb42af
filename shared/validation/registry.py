"""The model registry: what each tunable Gemini base model accepts, read once from shared/models.json.

Adding a model is a data change: a new entry in shared/models.json, no code.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from importlib import resources
from typing import Any

_PUBLISHER_PREFIX = "publishers/google/models/"
# The base model when an upload names none: a GA model whose tuning is open (tests keep it so).
DEFAULT_MODEL = "gemini-3.5-flash"
# Google blocks new tuning jobs on a model about a month before it retires; where a page gives no
# date of its own, the registry derives the closing date this long before retirement.
TUNING_CLOSES_BEFORE_RETIREMENT = timedelta(days=30)


class ModelStatus(StrEnum):
    """Whether a base model can be tuned on a given day."""

    AVAILABLE = "available"
    TUNING_CLOSED = "tuning_closed"  # no new tuning jobs; existing tuned models still serve
    RETIRED = "retired"  # the model and every model tuned from it stop serving

    @property
    def error_code(self) -> str:
        """The validation code of an upload for a model in this status ("" when it can be tuned)."""
        return {ModelStatus.TUNING_CLOSED: "model_tuning_closed", ModelStatus.RETIRED: "model_retired"}.get(self, "")


@dataclass(frozen=True)
class Lifecycle:
    """A model's dates, as Google's model-versions and tuning pages give them."""

    released: date | None
    retires: date | None
    replacement: str | None
    preview: bool
    # None when no page gives a date: then TUNING_CLOSES_BEFORE_RETIREMENT before retirement.
    tuning_closes_stated: date | None = None
    sources: tuple[str, ...] = ()

    @property
    def tuning_closes(self) -> date | None:
        if self.tuning_closes_stated is not None:
            return self.tuning_closes_stated
        return self.retires - TUNING_CLOSES_BEFORE_RETIREMENT if self.retires else None

    def status(self, on: date) -> ModelStatus:
        if self.retires is not None and on >= self.retires:
            return ModelStatus.RETIRED
        closes = self.tuning_closes
        if closes is not None and on >= closes:
            return ModelStatus.TUNING_CLOSED
        return ModelStatus.AVAILABLE

    def days_until_tuning_closes(self, on: date) -> int | None:
        closes = self.tuning_closes
        return None if closes is None else (closes - on).days

    def days_until_retirement(self, on: date) -> int | None:
        return None if self.retires is None else (self.retires - on).days


NO_LIFECYCLE = Lifecycle(released=None, retires=None, replacement=None, preview=False)


@dataclass(frozen=True)
class MediaRule:
    kind: str
    mime_types: frozenset[str]
    max_per_example: int | None
    max_file_bytes: int | None
    token_estimate: int
    # The validator cannot see a file's duration, pages or bytes; it checks a duration only where the
    # example states one (a video part's videoMetadata start and end offsets).
    max_seconds: int | None = None
    max_pages: int | None = None
    # Video at MEDIA_RESOLUTION_LOW may run longer (the video tuning page: 5 minutes at HIGH or MEDIUM,
    # 20 at LOW); None when the model has no such figure.
    max_seconds_low_resolution: int | None = None

    def seconds_allowed(self, resolution: str | None) -> int | None:
        """The longest media this rule allows at ``resolution`` (the example's mediaResolution, if any)."""
        if resolution == "MEDIA_RESOLUTION_LOW" and self.max_seconds_low_resolution is not None:
            return self.max_seconds_low_resolution
        return self.max_seconds


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    low_inclusive: bool = True

    def contains(self, value: float) -> bool:
        above = value >= self.low if self.low_inclusive else value > self.low
        return above and value <= self.high

    def describe(self) -> str:
        low = f">= {self.low:g}" if self.low_inclusive else f"> {self.low:g}"
        return f"{low} and <= {self.high:g}"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    display_name: str
    aliases: tuple[str, ...]
    format: str  # "contents" (Gemini 1.5 and later) or "messages" (legacy gemini-1.0-pro-002)
    max_tokens_per_example: int
    max_validation_examples: int
    min_examples: int
    max_examples_text: int | None
    max_examples_multimodal: int | None
    max_file_bytes: int
    adapter_sizes: tuple[int, ...]
    default_adapter_size: int | None
    media: Mapping[str, MediaRule]
    epochs: Range
    learning_rate_multiplier: Range
    regions: frozenset[str]
    price_per_million_tokens_usd: float | None
    price_date: str
    sources: tuple[str, ...]
    unconfirmed: tuple[str, ...] = field(default=())
    lifecycle: Lifecycle = NO_LIFECYCLE
    # Whether examples may hold functionCall / functionResponse parts (Vertex AI refuses them per model:
    # https://github.com/googleapis/python-aiplatform/issues/6127).
    function_calling: bool = True
    # Whether a media part may carry its own mediaResolution ("Gemini 3 and higher models only" on the
    # image, document and video tuning pages).
    part_media_resolution: bool = False
    # Whether a tuning job on this model may use a customer-managed encryption key (None: not stated).
    cmek: bool | None = None
    # Whether a job may continue tuning a tuned model of this base model (continue_from; None: not stated).
    continuous_tuning: bool | None = None
    # Beyond `validation_share_above` validation examples, at most this share of the training examples.
    validation_share_above: int | None = None
    max_validation_share: float | None = None

    def status(self, on: date) -> ModelStatus:
        return self.lifecycle.status(on)

    def closed_message(self, on: date) -> str:
        """Why a model that is not available cannot be tuned, naming its replacement; "" when it can."""
        status = self.status(on)
        if status is ModelStatus.AVAILABLE:
            return ""
        life = self.lifecycle
        successor = registry().successor(self, on)
        instead = f" Use {successor.name} instead (set base_model: {successor.name})." if successor else ""
        if status is ModelStatus.RETIRED:
            return f"{self.name} was retired on {life.retires}: it can no longer be tuned or served.{instead}"
        return (
            f"New tuning of {self.name} closed on {life.tuning_closes} (it retires on {life.retires}): "
            f"Vertex AI no longer starts tuning jobs on it.{instead}"
        )

    @property
    def multimodal(self) -> bool:
        return bool(self.media)

    def media_kind(self, mime_type: str) -> MediaRule | None:
        """The media rule whose MIME types include ``mime_type`` (case-insensitive), if any."""
        wanted = mime_type.strip().lower()
        for rule in self.media.values():
            if wanted in rule.mime_types:
                return rule
        return None

    @functools.cached_property
    def mime_types(self) -> frozenset[str]:
        return frozenset(m for rule in self.media.values() for m in rule.mime_types)


@dataclass(frozen=True)
class Registry:
    models: Mapping[str, ModelSpec]
    aliases: Mapping[str, str]
    checked: str
    sources: Mapping[str, str]
    disagreements: tuple[str, ...]

    def resolve(self, name: str) -> ModelSpec | None:
        """The model for a name, alias or resource name (``.../publishers/google/models/NAME``)."""
        key = name.strip()
        if _PUBLISHER_PREFIX in key:
            key = key.split(_PUBLISHER_PREFIX, 1)[1]
        key = key.split("@", 1)[0].lower()
        canonical = self.aliases.get(key, key)
        return self.models.get(canonical)

    def names(self) -> list[str]:
        return sorted(self.models)

    def function_calling_models(self, on: date | None = None) -> list[str]:
        """The models whose examples may hold function calls (those that can be tuned ``on``, if given)."""
        return sorted(
            name
            for name, spec in self.models.items()
            if spec.function_calling and (on is None or spec.status(on) is ModelStatus.AVAILABLE)
        )

    def media_models(self, mime_type: str) -> tuple[str, list[str]] | None:
        """(kind, models that tune that kind) for a MIME type some model of the registry tunes, else None.

        Models already retired when the registry was checked are left out; the validator has no clock
        of its own, and the registry's check date is the latest day its lifecycle facts are known for.
        """
        checked = date.fromisoformat(self.checked)
        found = [(name, rule) for name, spec in self.models.items() if (rule := spec.media_kind(mime_type))]
        if not found:
            return None
        live = [name for name, _ in found if self.models[name].status(checked) is not ModelStatus.RETIRED]
        return found[0][1].kind, sorted(live)

    def tunable(self, on: date) -> list[str]:
        """The models that can be tuned on ``on``."""
        return sorted(name for name, spec in self.models.items() if spec.status(on) is ModelStatus.AVAILABLE)

    def successor(self, spec: ModelSpec, on: date) -> ModelSpec | None:
        """The model to move to from ``spec``: its replacement, or that one's, and so on, until one can be
        tuned on ``on`` (the pages name replacements that have since retired themselves)."""
        seen = {spec.name}
        current = spec
        while current.lifecycle.replacement:
            following = self.resolve(current.lifecycle.replacement)
            if following is None or following.name in seen:
                return None
            if following.status(on) is ModelStatus.AVAILABLE:
                return following
            seen.add(following.name)
            current = following
        return None


def _model(name: str, raw: Mapping[str, Any], doc: Mapping[str, Any]) -> ModelSpec:
    kinds = doc["media_kinds"]
    media = {
        kind: MediaRule(
            kind=kind,
            mime_types=frozenset(m.lower() for m in kinds[kind]["mime_types"]),
            max_per_example=limits.get("max_per_example"),
            max_file_bytes=limits.get("max_file_bytes"),
            token_estimate=int(kinds[kind]["token_estimate"]),
            max_seconds=limits.get("max_seconds"),
            max_pages=limits.get("max_pages"),
            max_seconds_low_resolution=limits.get("max_seconds_low_resolution"),
        )
        for kind, limits in raw.get("media", {}).items()
    }
    lrm = raw["learning_rate_multiplier"]
    share = raw.get("validation_share") or {}
    return ModelSpec(
        name=name,
        display_name=raw.get("display_name", name),
        aliases=tuple(raw.get("aliases", ())),
        format=raw["format"],
        max_tokens_per_example=int(raw["max_tokens_per_example"]),
        max_validation_examples=int(raw["max_validation_examples"]),
        min_examples=int(raw.get("min_examples", 1)),
        max_examples_text=raw.get("max_examples_text"),
        max_examples_multimodal=raw.get("max_examples_multimodal"),
        max_file_bytes=int(raw["max_file_bytes"]),
        adapter_sizes=tuple(raw["adapter_sizes"]),
        default_adapter_size=raw.get("default_adapter_size"),
        media=media,
        epochs=Range(raw["epochs"]["min"], raw["epochs"]["max"]),
        # Zero would be no learning at all, so the lower bound is exclusive.
        learning_rate_multiplier=Range(lrm["min"], lrm["max"], low_inclusive=lrm["min"] > 0),
        regions=frozenset(doc["region_sets"][raw["region_set"]]["regions"]),
        price_per_million_tokens_usd=raw.get("price_per_million_training_tokens_usd"),
        price_date=raw.get("price_date", ""),
        sources=tuple(raw.get("sources", ())),
        unconfirmed=tuple(raw.get("unconfirmed", ())),
        lifecycle=_lifecycle(raw.get("lifecycle")),
        function_calling=bool(raw.get("function_calling", True)),
        part_media_resolution=bool(raw.get("part_media_resolution", False)),
        cmek=raw.get("cmek"),
        continuous_tuning=raw.get("continuous_tuning"),
        validation_share_above=share.get("above"),
        max_validation_share=share.get("max_share_of_training"),
    )


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None


def _lifecycle(raw: Mapping[str, Any] | None) -> Lifecycle:
    if not raw:
        return NO_LIFECYCLE
    return Lifecycle(
        released=_date(raw.get("released")),
        retires=_date(raw.get("retires")),
        replacement=raw.get("replacement") or None,
        preview=bool(raw.get("preview", False)),
        tuning_closes_stated=_date(raw.get("tuning_closes")),
        sources=tuple(raw.get("sources", ())),
    )


def parse_registry(doc: Mapping[str, Any]) -> Registry:
    models = {name.lower(): _model(name.lower(), raw, doc) for name, raw in doc["models"].items()}
    aliases: dict[str, str] = {}
    for spec in models.values():
        for alias in spec.aliases:
            aliases[alias.lower()] = spec.name
    return Registry(
        models=models,
        aliases=aliases,
        checked=doc.get("checked", ""),
        sources=doc.get("sources", {}),
        disagreements=tuple(doc.get("disagreements", ())),
    )


@functools.cache
def registry() -> Registry:
    """The registry shipped in the package, parsed on first use and kept."""
    text = resources.files("shared").joinpath("models.json").read_text(encoding="utf-8")
    return parse_registry(json.loads(text))


def get_model(name: str) -> ModelSpec | None:
    return registry().resolve(name)


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def model_summary(spec: ModelSpec, on: date) -> dict[str, Any]:
    """One model as `tunedrop models --json` prints it: lifecycle, status on ``on`` and key limits.

    Scripts rely on these keys; add keys freely, never rename or remove one."""
    life = spec.lifecycle
    return {
        "id": spec.name,
        "display_name": spec.display_name,
        "aliases": list(spec.aliases),
        "status": spec.status(on).value,
        "preview": life.preview,
        "released": _iso(life.released),
        "tuning_closes": _iso(life.tuning_closes),
        "retires": _iso(life.retires),
        "replacement": life.replacement,
        "max_tokens_per_example": spec.max_tokens_per_example,
        "max_validation_examples": spec.max_validation_examples,
        "max_training_examples_text": spec.max_examples_text,
        "max_training_examples_multimodal": spec.max_examples_multimodal,
        "max_file_bytes": spec.max_file_bytes,
        "adapter_sizes": list(spec.adapter_sizes),
        "epochs": {"min": spec.epochs.low, "max": spec.epochs.high},
        "learning_rate_multiplier": {
            "min": spec.learning_rate_multiplier.low,
            "max": spec.learning_rate_multiplier.high,
        },
        "modalities": ["text", *sorted(spec.media)],
        "media": {
            kind: {
                "max_per_example": rule.max_per_example,
                "max_file_bytes": rule.max_file_bytes,
                "max_seconds": rule.max_seconds,
                "max_pages": rule.max_pages,
                "max_seconds_low_resolution": rule.max_seconds_low_resolution,
            }
            for kind, rule in sorted(spec.media.items())
        },
        "function_calling": spec.function_calling,
        "part_media_resolution": spec.part_media_resolution,
        "cmek": spec.cmek,
        "continuous_tuning": spec.continuous_tuning,
        "regions": sorted(spec.regions),
        "price_per_million_training_tokens_usd": spec.price_per_million_tokens_usd,
    }


def markdown_table(models: Mapping[str, ModelSpec]) -> str:
    """The README's model table: one row per model, newest release first (tests keep the README in step)."""
    head = (
        "| model | aliases | stage | released | new tuning closes | retires | replacement | tokens per example "
        "| validation examples | modalities | function calling | tuning regions | USD per 1M training tokens |"
    )
    rows = [head, "|" + "---|" * 13]
    ordered = sorted(models.values(), key=lambda s: (s.lifecycle.released or date.min, s.name), reverse=True)
    for spec in ordered:
        life = spec.lifecycle
        price = spec.price_per_million_tokens_usd
        unconfirmed_price = any(note.startswith("price") for note in spec.unconfirmed)
        regions = sorted(spec.regions)
        cells = [
            f"`{spec.name}`",
            ", ".join(f"`{a}`" for a in spec.aliases) or "—",
            "preview" if life.preview else "GA",
            _iso(life.released) or "—",
            _iso(life.tuning_closes) or "not announced",
            _iso(life.retires) or "not announced",
            f"`{life.replacement}`" if life.replacement else "—",
            f"{spec.max_tokens_per_example:,}",
            f"{spec.max_validation_examples:,}",
            ", ".join(["text", *sorted(spec.media)]),
            "yes" if spec.function_calling else "no",
            ", ".join(regions) if len(regions) <= 3 else f"{len(regions)} regions",
            "unconfirmed" if price is None else f"{price:g}" + (" (unconfirmed)" if unconfirmed_price else ""),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
