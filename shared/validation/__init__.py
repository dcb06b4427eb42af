"""Dataset validation: stream a JSONL dataset once and report every problem with its line."""

from shared.validation.report import Issue, ValidationReport
from shared.validation.stream import validate_stream

__all__ = ["Issue", "ValidationReport", "validate_stream"]
