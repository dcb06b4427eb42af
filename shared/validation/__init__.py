"""Dataset validation: stream a JSONL dataset once and report every problem with its line.

The upload service calls :func:`validate_dataset`; :func:`render_markdown` and
``ValidationReport.to_dict()`` give the two report forms.
"""

from typing import TYPE_CHECKING, Any

from shared.validation.engine import validate_dataset
from shared.validation.markdown import render_markdown
from shared.validation.registry import DEFAULT_MODEL, ModelSpec, get_model, registry
from shared.validation.report import MAX_ISSUES_PER_CODE, Issue, ValidationReport
from shared.validation.tokens import SentencePieceTokenCounter, TokenCounter, TokenCountUnavailable
from shared.validation.uris import UriChecker

if TYPE_CHECKING:
    from shared.adapters.gcs_uris import GcsUriChecker
    from shared.adapters.vertex_tokens import VertexTokenCounter


def __getattr__(name: str) -> Any:
    """The two Cloud adapters moved to shared.adapters; their old names here resolve lazily, since an eager
    import would be circular (each adapter imports its port from this package)."""
    if name == "VertexTokenCounter":
        from shared.adapters.vertex_tokens import VertexTokenCounter

        return VertexTokenCounter
    if name == "GcsUriChecker":
        from shared.adapters.gcs_uris import GcsUriChecker

        return GcsUriChecker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_MODEL",
    "MAX_ISSUES_PER_CODE",
    "GcsUriChecker",
    "Issue",
    "ModelSpec",
    "SentencePieceTokenCounter",
    "TokenCountUnavailable",
    "TokenCounter",
    "UriChecker",
    "ValidationReport",
    "VertexTokenCounter",
    "get_model",
    "registry",
    "render_markdown",
    "validate_dataset",
]
