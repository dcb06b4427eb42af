"""The validation report: what was wrong, where, and what to do about it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_ISSUES_PER_CODE = 100


def plural(count: int, noun: str, nouns: str = "") -> str:
    """``count`` and ``noun``, in the plural (``nouns``, default noun + "s") unless the count is one."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


@dataclass(frozen=True)
class Issue:
    """One problem. ``line`` is 1-based in ``file``; 0 means the dataset as a whole."""

    line: int
    code: str
    message: str
    path: str = ""
    file: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "code": self.code, "message": self.message}
        if self.path:
            out["path"] = self.path
        if self.file:
            out["file"] = self.file
        return out


@dataclass
class ValidationReport:
    """Keeps the first MAX_ISSUES_PER_CODE issues (and warnings) of each code and counts them all."""

    file: str
    example_count: int = 0
    byte_count: int = 0
    issues: list[Issue] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    warnings: list[Issue] = field(default_factory=list)
    warning_counts: Counter[str] = field(default_factory=Counter)
    model: str = ""
    requested_model: str = ""  # the base model as asked for, when that is not the registry id in ``model``
    validation_file: str = ""
    validation_example_count: int = 0
    validation_byte_count: int = 0
    hyper_parameters: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    strict: bool = False  # hygiene findings are errors, not warnings (TUNEDROP_STRICT_VALIDATION)

    def add(self, issue: Issue) -> None:
        self.counts[issue.code] += 1
        if self.counts[issue.code] <= MAX_ISSUES_PER_CODE:
            self.issues.append(issue)

    def warn(self, issue: Issue) -> None:
        """Something to look at that does not stop the tuning job."""
        self.warning_counts[issue.code] += 1
        if self.warning_counts[issue.code] <= MAX_ISSUES_PER_CODE:
            self.warnings.append(issue)

    def hygiene(self, issue: Issue) -> None:
        """A finding Vertex AI accepts but that is probably a mistake (a duplicate, a train/validation
        overlap): a warning, or an error under strict validation."""
        if self.strict:
            self.add(issue)
        else:
            self.warn(issue)

    @property
    def error_count(self) -> int:
        return sum(self.counts.values())

    @property
    def warning_count(self) -> int:
        return sum(self.warning_counts.values())

    @property
    def valid(self) -> bool:
        return self.error_count == 0

    def _order(self, issue: Issue) -> tuple[int, int, int]:
        # Dataset-level issues first, then the training file's lines, then the validation file's.
        return (0 if issue.line == 0 else 1, 0 if issue.file in ("", self.file) else 1, issue.line)

    def sorted_issues(self) -> list[Issue]:
        return sorted(self.issues, key=self._order)

    def first_errors(self, limit: int = 10) -> list[dict[str, Any]]:
        return [i.to_dict() for i in self.sorted_issues()[:limit]]

    def summary(self) -> dict[str, Any]:
        """The short form kept on the job document."""
        out: dict[str, Any] = {
            "valid": self.valid,
            "file": self.file,
            "example_count": self.example_count,
            "byte_count": self.byte_count,
            "error_count": self.error_count,
            "error_counts": dict(self.counts),
        }
        if self.model:
            out["model"] = self.model
        if self.requested_model:
            out["requested_model"] = self.requested_model
        if self.validation_file:
            out["validation_file"] = self.validation_file
            out["validation_example_count"] = self.validation_example_count
        if self.warning_counts:
            out["warning_count"] = self.warning_count
        if self.strict:
            out["strict"] = True
        tokens = self.stats.get("tokens_per_example")
        if tokens:
            out["tokens_per_example"] = {k: tokens[k] for k in ("min", "median", "p95", "max") if k in tokens}
        if self.cost.get("billable_tokens") is not None:
            out["estimated_billable_tokens"] = self.cost["billable_tokens"]
        if self.cost.get("estimated_cost_usd") is not None:
            out["estimated_cost_usd"] = self.cost["estimated_cost_usd"]
        return out

    def to_dict(self) -> dict[str, Any]:
        out = {**self.summary(), "errors": [i.to_dict() for i in self.sorted_issues()]}
        out["warnings"] = [i.to_dict() for i in sorted(self.warnings, key=self._order)]
        out["warning_counts"] = dict(self.warning_counts)
        if self.validation_file:
            out["validation_byte_count"] = self.validation_byte_count
        if self.hyper_parameters:
            out["hyper_parameters"] = dict(self.hyper_parameters)
        if self.stats:
            out["stats"] = self.stats
        if self.cost:
            out["cost"] = self.cost
        if self.notes:
            out["notes"] = list(self.notes)
        return out
