"""Counting tokens: a small port, and the local SentencePiece counter behind it.

The Vertex AI CountTokens adapter lives in shared.adapters.vertex_tokens.

Why the validator rarely needs to count: Gemini's tokenizer is a SentencePiece model with byte
fallback, so every token stands for at least one byte of UTF-8 text. The UTF-8 length of an
example's text (plus a few tokens per turn for role markers) is therefore an upper bound of its
text tokens, and the raw JSON line is longer still. Only examples whose bound is above the model's
limit need an exact count.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from shared.errors import TransientError

Request = Mapping[str, Any]  # {"contents": [...], "systemInstruction": {...}, "tools": [...]} in camelCase


class TokenCountUnavailable(Exception):
    """The counter cannot answer (package missing, bad configuration, request refused): asking it again
    during this run would not help."""


class TokenCountRetryable(TokenCountUnavailable):
    """The counter is out of quota or briefly unavailable (RESOURCE_EXHAUSTED, UNAVAILABLE,
    DEADLINE_EXCEEDED): the same request may succeed after a pause."""


class CountingIncomplete(TransientError):
    """Validation could not settle an example's length: no token counter could count it and its upper
    bound is over the limit. A TransientError, so the upload is validated again on redelivery rather
    than rejected for a length nobody measured."""


@runtime_checkable
class TokenCounter(Protocol):
    """Counts the tokens of one example for one base model."""

    @property
    def name(self) -> str: ...

    @property
    def counts_media(self) -> bool:
        """True when the count includes fileData parts (otherwise the validator adds its estimate)."""
        ...

    def count(self, request: Request, model: str) -> int:
        """Tokens of the request; raises TokenCountRetryable when a later try may succeed and
        TokenCountUnavailable when it cannot count."""
        ...


# --------------------------------------------------------------------------------------------
# SentencePiece (optional dependency)


class SentencePieceTokenCounter:
    """Counts text tokens with a local SentencePiece model file; media parts are estimated elsewhere."""

    name = "sentencepiece"
    counts_media = False

    def __init__(self, processor: Any, per_turn: int = 0) -> None:
        self._processor = processor
        self._per_turn = per_turn

    @classmethod
    def load(
        cls, model_file: str, *, importer: Callable[[str], Any] = importlib.import_module
    ) -> SentencePieceTokenCounter:
        """Load the tokenizer; raises TokenCountUnavailable when the package or the file is missing."""
        try:
            module = importer("sentencepiece")
        except ImportError as exc:
            raise TokenCountUnavailable(
                "the sentencepiece package is not installed (pip install sentencepiece) to use " + model_file
            ) from exc
        try:
            processor = module.SentencePieceProcessor(model_file=model_file)
        except (OSError, RuntimeError) as exc:
            raise TokenCountUnavailable(f"cannot load the SentencePiece model {model_file}: {exc}") from exc
        return cls(processor)

    def count(self, request: Request, model: str) -> int:
        """Tokens of the text; function calls, responses and the tools block are counted as their JSON text
        (how Gemini renders them is not documented)."""
        turns = list(request.get("contents") or [])
        system = request.get("systemInstruction")
        if system:
            turns.append(system)
        total = 0
        for turn in turns:
            total += self._per_turn
            for part in turn.get("parts") or []:
                text = part.get("text")
                if not isinstance(text, str):
                    payload = part.get("functionCall", part.get("functionResponse"))
                    text = None if payload is None else _json_text(payload)
                if text is not None:
                    total += len(self._processor.encode(text))
        tools = request.get("tools")
        if tools:
            total += len(self._processor.encode(_json_text(tools)))
        return total


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
