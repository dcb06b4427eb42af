"""The supported hyper-parameters: one table of their names and spellings, and their checks against a model.

``HYPER_PARAMETERS`` is the one list: the manifest takes its names (``HYPER_PARAMETER_NAMES``), the
CLI passes each option under its ``key``, and the validator accepts every spelling in ``aliases``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.validation.registry import ModelSpec
from shared.validation.report import Issue, ValidationReport

# Vertex AI's AdapterSize enum names (without their ADAPTER_SIZE_ prefix) and the ranks they stand for.
ADAPTER_SIZE_NAMES = {"ONE": 1, "TWO": 2, "FOUR": 4, "EIGHT": 8, "SIXTEEN": 16, "THIRTY_TWO": 32}


def as_int(value: Any) -> int | None:
    """A whole number from an int, an integral float or a string of digits; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    return None


def as_float(value: Any) -> float | None:
    """A finite number from anything float() takes (but a boolean); None otherwise."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def adapter_size(value: Any) -> int | None:
    """An adapter size as a number: 4, "4", "four" and "ADAPTER_SIZE_FOUR" all give 4."""
    if isinstance(value, str):
        name = value.strip().upper().removeprefix("ADAPTER_SIZE_")
        if name in ADAPTER_SIZE_NAMES:
            return ADAPTER_SIZE_NAMES[name]
    return as_int(value)


def _epochs_advice(value: Any, spec: ModelSpec) -> str:
    return f"Epoch count {value!r} is not allowed for {spec.name}: use a whole number {spec.epochs.describe()}."


def _adapter_size_advice(value: Any, spec: ModelSpec) -> str:
    allowed = ", ".join(str(s) for s in spec.adapter_sizes)
    default = f" (default {spec.default_adapter_size})" if spec.default_adapter_size else ""
    return f"Adapter size {value!r} is not supported by {spec.name}: use one of {allowed}{default}."


def _learning_rate_advice(value: Any, spec: ModelSpec) -> str:
    return (
        f"Learning-rate multiplier {value!r} is not allowed for {spec.name}: use a number "
        f"{spec.learning_rate_multiplier.describe()}."
    )


@dataclass(frozen=True)
class HyperParameter:
    """One supported hyper-parameter and how the validator checks it against a model."""

    name: str  # the manifest's key and the CLI option's name
    aliases: tuple[str, ...]  # spellings the validator accepts, in the order it looks for them
    code: str  # the issue code of a value the model does not allow
    parse: Callable[[Any], int | float | None]
    allowed: Callable[[ModelSpec, Any], bool]  # takes the parsed value, None when it did not parse
    advice: Callable[[Any, ModelSpec], str]  # the issue's message, quoting the value as given

    @property
    def key(self) -> str:
        """The spelling Tunedrop itself writes (the CLI) and suggests in messages."""
        return self.aliases[0]

    def find(self, values: Mapping[str, Any]) -> tuple[str, Any] | None:
        """(spelling, value) of the first spelling set to something other than None."""
        for alias in self.aliases:
            if values.get(alias) is not None:
                return alias, values[alias]
        return None


HYPER_PARAMETERS: tuple[HyperParameter, ...] = (
    HyperParameter(
        "epochs",
        ("epoch_count", "epochCount", "epochs"),
        "bad_epochs",
        as_int,
        lambda spec, n: n is not None and spec.epochs.contains(n),
        _epochs_advice,
    ),
    HyperParameter(
        "adapter_size",
        ("adapter_size", "adapterSize"),
        "bad_adapter_size",
        adapter_size,
        lambda spec, n: n in spec.adapter_sizes,
        _adapter_size_advice,
    ),
    HyperParameter(
        "learning_rate_multiplier",
        ("learning_rate_multiplier", "learningRateMultiplier"),
        "bad_learning_rate_multiplier",
        as_float,
        lambda spec, n: n is not None and spec.learning_rate_multiplier.contains(n),
        _learning_rate_advice,
    ),
)
HYPER_PARAMETER_NAMES = frozenset(p.name for p in HYPER_PARAMETERS)
HYPER_PARAMETER_ALIASES = frozenset(a for p in HYPER_PARAMETERS for a in p.aliases)
_SUGGESTED = ", ".join(p.key for p in HYPER_PARAMETERS[:-1]) + f" or {HYPER_PARAMETERS[-1].key}"


def check_hyper_parameters(values: Mapping[str, Any], spec: ModelSpec, report: ValidationReport) -> int | None:
    """Checks every supported hyper-parameter against ``spec`` into ``report``; the epoch count when valid."""
    for key in values:
        if key not in HYPER_PARAMETER_ALIASES:
            report.warn(
                Issue(
                    0,
                    "unknown_hyper_parameter",
                    f'Hyper-parameter "{key}" is not checked by Tunedrop: use {_SUGGESTED}.',
                    f"hyper_parameters.{key}",
                )
            )
    epochs: int | None = None
    for parameter in HYPER_PARAMETERS:
        found = parameter.find(values)
        if found is None:
            continue
        key, value = found
        parsed = parameter.parse(value)
        if not parameter.allowed(spec, parsed):
            report.add(Issue(0, parameter.code, parameter.advice(value, spec), f"hyper_parameters.{key}"))
        elif parameter.name == "epochs":
            epochs = as_int(parsed)
    return epochs
