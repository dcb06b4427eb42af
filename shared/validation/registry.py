"""The model registry: what each tunable Gemini base model accepts, read once from shared/models.json.

Adding a model is a data change: a new entry in shared/models.json, no code.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

_PUBLISHER_PREFIX = "publishers/google/models/"


@dataclass(frozen=True)
class MediaRule:
    kind: str
    mime_types: frozenset[str]
    max_per_example: int | None
    max_file_bytes: int | None
    token_estimate: int


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


def _model(name: str, raw: Mapping[str, Any], doc: Mapping[str, Any]) -> ModelSpec:
    kinds = doc["media_kinds"]
    media = {
        kind: MediaRule(
            kind=kind,
            mime_types=frozenset(m.lower() for m in kinds[kind]["mime_types"]),
            max_per_example=limits.get("max_per_example"),
            max_file_bytes=limits.get("max_file_bytes"),
            token_estimate=int(kinds[kind]["token_estimate"]),
        )
        for kind, limits in raw.get("media", {}).items()
    }
    lrm = raw["learning_rate_multiplier"]
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
