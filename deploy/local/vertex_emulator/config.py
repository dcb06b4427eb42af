"""The emulator's knobs: constructor arguments first, then the environment, then the defaults.

* ``TUNEDROP_EMULATOR_QUOTA``: concurrent jobs allowed across everything served
  (default: ``TUNEDROP_QUOTA``, else 1).
* ``TUNEDROP_EMULATOR_JOB_SECONDS``: seconds from create to terminal state (default 5).
* ``TUNEDROP_EMULATOR_FAIL_RATE``: share of jobs that end FAILED (default 0).
* ``TUNEDROP_EMULATOR_UNAVAILABLE_RATE``: share of calls answered UNAVAILABLE (default 0).
* ``TUNEDROP_EMULATOR_SEED``: seed for ids, failures and unavailability (default 0).
* ``TUNEDROP_EMULATOR_QUOTA_MODE``: what a create beyond the quota gets: ``refuse`` (default,
  RESOURCE_EXHAUSTED) or ``wait`` (accepted and held PENDING until a slot frees).
* ``TUNEDROP_EMULATOR_DROPPED_EXAMPLES``: examples of each job's dataset reported dropped as over
  the model's token limit (default 0); a job's ``tunedrop_emulator_dropped_examples`` label overrides it.
* ``TUNEDROP_EMULATOR_TUNED_QUALITY``: percent (0-100) of prompts a tuned model answers from its training
  data, the rest generically like a base model (default 100); a job's ``emulator_quality`` label overrides it.
* ``TUNEDROP_EMULATOR_TUNED_NOISE``: percent (0-100) of the words of a training answer a tuned model drops,
  chosen per prompt (default 0): models answering alike, with noise; a job's ``emulator_noise`` label
  overrides it.

A bad value raises :class:`ConfigError` naming where it came from: the argument's name or the
environment variable's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, Final


class ConfigError(ValueError):
    """A knob (environment variable or constructor argument) has an invalid value."""


def _as_int(source: str, raw: object, *, minimum: int | None) -> int:
    value: int | None = None
    # bool is an int subclass, but True is no sensible quota or seed.
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str):
        with contextlib.suppress(ValueError):
            value = int(raw)
    if value is None:
        raise ConfigError(f"{source} must be an integer, got {raw!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{source} must be >= {minimum}, got {value}")
    return value


def _as_float(source: str, raw: object, *, lowest: float, highest: float | None) -> float:
    value: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        with contextlib.suppress(ValueError):
            value = float(raw)
    if value is None:
        raise ConfigError(f"{source} must be a number, got {raw!r}")
    if not math.isfinite(value) or value < lowest or (highest is not None and value > highest):
        bound = f"between {lowest:g} and {highest:g}" if highest is not None else f">= {lowest:g}"
        raise ConfigError(f"{source} must be {bound}, got {raw!r}")
    return value


def _as_percent(source: str, raw: object) -> int:
    value = _as_int(source, raw, minimum=0)
    if value > 100:
        raise ConfigError(f"{source} must be a percent between 0 and 100, got {value}")
    return value


QUOTA_MODES: Final = ("refuse", "wait")


def _as_quota_mode(source: str, raw: object) -> str:
    value = raw.strip().lower() if isinstance(raw, str) else raw
    if value not in QUOTA_MODES:
        raise ConfigError(f"{source} must be one of {', '.join(QUOTA_MODES)}, got {raw!r}")
    return str(value)


@dataclasses.dataclass(frozen=True)
class _Knob:
    field: str  # the EmulatorConfig field, also the constructor argument's name
    env_names: tuple[str, ...]  # read in order; the first non-empty one wins
    parse: Callable[[str, object], Any]  # (source, raw value) -> value, or ConfigError


_KNOBS: Final = (
    _Knob("quota", ("TUNEDROP_EMULATOR_QUOTA", "TUNEDROP_QUOTA"), functools.partial(_as_int, minimum=0)),
    _Knob("job_seconds", ("TUNEDROP_EMULATOR_JOB_SECONDS",), functools.partial(_as_float, lowest=0.0, highest=None)),
    _Knob("fail_rate", ("TUNEDROP_EMULATOR_FAIL_RATE",), functools.partial(_as_float, lowest=0.0, highest=1.0)),
    _Knob(
        "unavailable_rate",
        ("TUNEDROP_EMULATOR_UNAVAILABLE_RATE",),
        functools.partial(_as_float, lowest=0.0, highest=1.0),
    ),
    _Knob("seed", ("TUNEDROP_EMULATOR_SEED",), functools.partial(_as_int, minimum=None)),
    _Knob("quota_mode", ("TUNEDROP_EMULATOR_QUOTA_MODE",), _as_quota_mode),
    _Knob("dropped_examples", ("TUNEDROP_EMULATOR_DROPPED_EXAMPLES",), functools.partial(_as_int, minimum=0)),
    _Knob("tuned_quality", ("TUNEDROP_EMULATOR_TUNED_QUALITY",), _as_percent),
    _Knob("tuned_noise", ("TUNEDROP_EMULATOR_TUNED_NOISE",), _as_percent),
)


def _pick(knob: _Knob, argument: object, env: Mapping[str, str]) -> tuple[str, object] | None:
    """(source, raw value) from the argument if given, else the first non-empty env var."""
    if argument is not None:
        return knob.field, argument
    for name in knob.env_names:
        raw = env.get(name, "").strip()
        if raw:
            return name, raw
    return None


@dataclasses.dataclass(frozen=True)
class EmulatorConfig:
    """The resolved knobs; the field defaults are the emulator's defaults."""

    quota: int = 1
    job_seconds: float = 5.0
    fail_rate: float = 0.0
    unavailable_rate: float = 0.0
    seed: int = 0
    quota_mode: str = "refuse"
    dropped_examples: int = 0
    tuned_quality: int = 100
    tuned_noise: int = 0

    @property
    def waits_for_quota(self) -> bool:
        return self.quota_mode == "wait"

    @classmethod
    def resolve(cls, arguments: Mapping[str, object | None], env: Mapping[str, str]) -> EmulatorConfig:
        """Knobs from ``arguments`` (field name -> value, None when not given), else ``env``."""
        values: dict[str, Any] = {}
        for knob in _KNOBS:
            picked = _pick(knob, arguments.get(knob.field), env)
            if picked is not None:
                values[knob.field] = knob.parse(*picked)
        return cls(**values)
