"""Dataset validation: stream a JSONL dataset once and report every problem with its line.

The upload service calls :func:`validate_dataset`; :func:`render_markdown` and
``ValidationReport.to_dict()`` give the two report forms.
"""

from shared.validation.engine import validate_dataset
from shared.validation.markdown import render_markdown
from shared.validation.registry import DEFAULT_MODEL, ModelSpec, get_model, registry
from shared.validation.report import MAX_ISSUES_PER_CODE, Issue, ValidationReport
from shared.validation.tokens import SentencePieceTokenCounter, TokenCounter, TokenCountUnavailable
from shared.validation.uris import UriChecker

__all__ = [
    "DEFAULT_MODEL",
    "MAX_ISSUES_PER_CODE",
    "Issue",
    "ModelSpec",
    "SentencePieceTokenCounter",
    "TokenCountUnavailable",
    "TokenCounter",
    "UriChecker",
    "ValidationReport",
    "get_model",
    "registry",
    "render_markdown",
    "validate_dataset",
]
