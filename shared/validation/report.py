"""The validation report: what was wrong, where, and what to do about it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_ISSUES_PER_CODE = 100


@dataclass(frozen=True)
class Issue:
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
    """Keeps the first MAX_ISSUES_PER_CODE issues of each code and counts them all."""

    file: str
    example_count: int = 0
    byte_count: int = 0
    issues: list[Issue] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, issue: Issue) -> None:
        self.counts[issue.code] += 1
        if self.counts[issue.code] <= MAX_ISSUES_PER_CODE:
            self.issues.append(issue)

    @property
    def error_count(self) -> int:
        return sum(self.counts.values())

    @property
    def valid(self) -> bool:
        return self.error_count == 0

    def first_errors(self, limit: int = 10) -> list[dict[str, Any]]:
        return [i.to_dict() for i in sorted(self.issues, key=lambda i: i.line)[:limit]]

    def summary(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "file": self.file,
            "example_count": self.example_count,
            "byte_count": self.byte_count,
            "error_count": self.error_count,
            "error_counts": dict(self.counts),
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "errors": [i.to_dict() for i in sorted(self.issues, key=lambda i: i.line)]}
