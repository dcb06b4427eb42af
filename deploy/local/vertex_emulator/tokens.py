"""CountTokens without Gemini's tokenizer: a deterministic approximation.

Each run of word characters costs one token per started 5 characters, every other non-space
character one token, and each ``fileData`` part 258 tokens (Gemini's figure for one image). Function
calls, responses and the ``tools`` declarations are counted as their JSON text. Like
the real tokenizer it never gives more tokens than the text has UTF-8 bytes.
"""

from __future__ import annotations

import re
from typing import Any, Final

from google.cloud import aiplatform_v1

from .errors import invalid_argument

TOKENS_PER_FILE: Final = 258  # Gemini's token count for one image up to 384x384 px
CHARS_PER_WORD_TOKEN: Final = 5

_WORD_RE: Final = re.compile(r"\w+|[^\w\s]")
_MODEL_RE: Final = re.compile(r"^projects/[^/]+/locations/[^/]+/(publishers/[^/]+/models/[^/]+|endpoints/[^/]+)$")


def approximate_tokens(text: str) -> int:
    """Deterministic stand-in for Gemini's tokenizer: at most one token per UTF-8 byte."""
    return sum(
        -(-len(m) // CHARS_PER_WORD_TOKEN) if m[0].isalnum() or m[0] == "_" else 1 for m in _WORD_RE.findall(text)
    )


def _part_cost(part: Any) -> tuple[int, int]:
    """(tokens, billable characters) of one Part."""
    if part.text:
        return approximate_tokens(part.text), sum(1 for c in part.text if not c.isspace())
    if part.file_data.file_uri:
        return TOKENS_PER_FILE, 0
    if part.function_call.name:
        return approximate_tokens(aiplatform_v1.FunctionCall.to_json(part.function_call, indent=None)), 0
    if part.function_response.name:
        return approximate_tokens(aiplatform_v1.FunctionResponse.to_json(part.function_response, indent=None)), 0
    return 0, 0


def _tools_cost(tools: Any) -> int:
    """Tokens of the function declarations, counted as their JSON like every other structured value here
    (the real service counts ``tools`` too: CountTokensRequest's field 6)."""
    return sum(approximate_tokens(aiplatform_v1.Tool.to_json(tool, indent=None)) for tool in tools)


def count_tokens(request: aiplatform_v1.CountTokensRequest) -> aiplatform_v1.CountTokensResponse:
    """The CountTokens answer: the contents and the system instruction, part by part."""
    target = request.endpoint or request.model
    if not _MODEL_RE.match(target):
        raise invalid_argument(
            f"Invalid endpoint {target!r}: expected projects/{{project}}/locations/{{location}}/publishers/google/"
            "models/{model}."
        )
    if not request.contents:
        raise invalid_argument("contents is required: give at least one Content.")
    tokens, characters = prompt_cost(request)
    return aiplatform_v1.CountTokensResponse(total_tokens=tokens, total_billable_characters=characters)


def prompt_cost(request: Any) -> tuple[int, int]:
    """(tokens, billable characters) of a request's contents, system instruction and tools: CountTokens'
    answer, and GenerateContent's ``usage_metadata.prompt_token_count``."""
    turns = list(request.contents)
    if request.system_instruction.parts:
        turns.append(request.system_instruction)
    tokens = 0
    characters = 0
    for turn in turns:
        for part in turn.parts:
            part_tokens, part_characters = _part_cost(part)
            tokens += part_tokens
            characters += part_characters
    return tokens + _tools_cost(request.tools), characters
