"""The ListTuningJobs ``filter``: the subset of AIP-160 the emulator supports.

Terms joined by AND: ``labels.KEY="VALUE"``, ``labels.KEY!="VALUE"``, ``labels.KEY:*``,
``state=JOB_STATE_X``, ``state!=JOB_STATE_X`` and ``create_time<op>"RFC3339"`` (``createTime``
is accepted too). Anything else answers INVALID_ARGUMENT naming what is supported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from google.cloud import aiplatform_v1

from .errors import invalid_argument

JobState = aiplatform_v1.JobState

SUPPORTED: Final = (
    'supported: labels.KEY="VALUE", labels.KEY!="VALUE", labels.KEY:*, state=JOB_STATE_X, '
    'state!=JOB_STATE_X, create_time>="RFC3339" (also =, !=, <, <=, >), joined with AND'
)

_TERM_RE: Final = re.compile(
    r"""\s*(?P<field>labels\.[^\s=!<>:"]+|state|create_time|createTime)\s*
        (?P<op>!=|>=|<=|=|:|<|>)\s*
        (?P<value>"(?:[^"\\]|\\.)*"|[^\s"()]+)\s*""",
    re.VERBOSE,
)
_AND_RE: Final = re.compile(r"AND(?:\s+|$)")
_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_LABEL_PREFIX: Final = "labels."


def parse_rfc3339(value: str) -> int:
    """Microseconds since the epoch; the real service requires RFC 3339 for create_time."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise invalid_argument(
            f'create_time must be an RFC 3339 timestamp such as "2025-05-18T00:00:00Z", got {value!r}.'
        ) from None
    if parsed.tzinfo is None:
        raise invalid_argument(f"create_time {value!r} lacks a UTC offset (use ...Z).")
    delta = parsed - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


@dataclasses.dataclass(frozen=True)
class FilterTerm:
    field: str  # "state", "create_time" or "labels.<key>"
    op: str
    value: str

    def check(self, text: str) -> None:
        """Refuse a term the emulator cannot evaluate; ``text`` is the whole filter, for the message."""
        bad = invalid_argument(f"Unsupported filter term {self.field}{self.op}{self.value!r} in {text!r}; {SUPPORTED}.")
        if self.field == "state":
            if self.op not in ("=", "!="):
                raise bad
            if self.value not in JobState.__members__:
                raise invalid_argument(
                    f"Unknown job state {self.value!r} in filter {text!r}; expected e.g. JOB_STATE_RUNNING."
                )
        elif self.field == "create_time":
            if self.op == ":":
                raise bad
            parse_rfc3339(self.value)
        elif self.op not in ("=", "!=", ":") or (self.op == ":" and self.value != "*"):
            raise bad

    def matches(self, pb: Any) -> bool:
        """Whether the raw protobuf TuningJob ``pb`` satisfies this (checked) term."""
        left: object
        right: object
        if self.field == "state":
            left, right = pb.state, JobState.__members__[self.value]
        elif self.field == "create_time":
            left, right = pb.create_time.ToMicroseconds(), parse_rfc3339(self.value)
        elif self.op == ":":  # presence: labels.KEY:*
            return self.field.removeprefix(_LABEL_PREFIX) in pb.labels
        else:
            left, right = pb.labels.get(self.field.removeprefix(_LABEL_PREFIX)), self.value
        return _COMPARISONS[self.op](left, right)


def parse_filter(text: str) -> list[FilterTerm]:
    """The terms of ``text`` (empty: no terms, every job matches); INVALID_ARGUMENT if unsupported."""
    terms: list[FilterTerm] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TERM_RE.match(text, pos)
        if match is None:
            raise _unsupported(text, pos)
        field = "create_time" if match["field"] == "createTime" else match["field"]
        term = FilterTerm(field=field, op=match["op"], value=_unquote(match["value"]))
        term.check(text)
        terms.append(term)
        pos = match.end()
        if pos < len(text):
            joiner = _AND_RE.match(text, pos)
            if joiner is None or joiner.end() == len(text):
                raise _unsupported(text, pos)
            pos = joiner.end()
    return terms


def _unsupported(text: str, pos: int) -> Exception:
    return invalid_argument(f"Unsupported filter {text!r} at position {pos}; {SUPPORTED}.")


def matches_all(pb: Any, terms: Sequence[FilterTerm]) -> bool:
    return all(term.matches(pb) for term in terms)
