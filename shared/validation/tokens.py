"""Counting tokens: a small port, and the Vertex AI and SentencePiece adapters behind it.

Why the validator rarely needs to count: Gemini's tokenizer is a SentencePiece model with byte
fallback, so every token stands for at least one byte of UTF-8 text. The UTF-8 length of an
example's text (plus a few tokens per turn for role markers) is therefore an upper bound of its
text tokens, and the raw JSON line is longer still. Only examples whose bound is above the model's
limit need an exact count.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from shared.errors import TransientError

Request = Mapping[str, Any]  # {"contents": [...], "systemInstruction": {...}} in camelCase


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
# Vertex AI CountTokens

_SNAKE = {
    "fileData": "file_data",
    "mimeType": "mime_type",
    "fileUri": "file_uri",
    "functionCall": "function_call",
    "functionResponse": "function_response",
    "videoMetadata": "video_metadata",
    "displayName": "display_name",
    "systemInstruction": "system_instruction",
}


def _snake(value: Any) -> Any:
    """``value`` with snake_case keys; the very objects that need no change are returned as they are,
    so a request of many small parts is not copied whole."""
    if isinstance(value, dict):
        out = {_SNAKE.get(k, k): (v if k in ("args", "response") else _snake(v)) for k, v in value.items()}
        # Two spellings of one key in the input leave fewer keys: then it differs.
        same = len(out) == len(value) and all(
            a is b and x is y for (a, x), (b, y) in zip(out.items(), value.items(), strict=True)
        )
        return value if same else out
    if isinstance(value, list):
        items = [_snake(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


class VertexTokenCounter:
    """Vertex AI CountTokens (or the local emulator's).

    The installed client library serves CountTokens from ``LlmUtilityService``; older ones had it on
    ``PredictionService``. The emulator answers both.

    ``host`` ("127.0.0.1:8089") talks insecure gRPC to the emulator; without it the client uses the
    regional endpoint and Application Default Credentials.
    """

    name = "vertex-count-tokens"
    counts_media = True

    def __init__(
        self,
        project: str,
        location: str = "us-central1",
        *,
        host: str = "",
        timeout: float = 30.0,
        client: Any = None,
    ) -> None:
        self._project = project
        self._location = location
        self._host = host
        self._timeout = timeout
        self._client: Any = client  # an LlmUtilityServiceClient; made on first use when None

    def _get_client(self) -> Any:
        if self._client is None:
            from google.cloud import aiplatform_v1

            if self._host:
                import grpc
                from google.cloud.aiplatform_v1.services.llm_utility_service.transports.grpc import (
                    LlmUtilityServiceGrpcTransport,
                )

                channel = grpc.insecure_channel(self._host)
                transport = LlmUtilityServiceGrpcTransport(channel=channel)
                self._client = aiplatform_v1.LlmUtilityServiceClient(transport=transport)
            else:
                options = {"api_endpoint": f"{self._location}-aiplatform.googleapis.com"}
                self._client = aiplatform_v1.LlmUtilityServiceClient(client_options=options)
        return self._client

    def count(self, request: Request, model: str) -> int:
        from google.api_core import exceptions as gexc
        from google.cloud import aiplatform_v1

        endpoint = f"projects/{self._project}/locations/{self._location}/publishers/google/models/{model}"
        body = _snake(dict(request))
        try:
            pb = aiplatform_v1.CountTokensRequest(endpoint=endpoint, model=endpoint, **body)
            response = self._get_client().count_tokens(request=pb, timeout=self._timeout)
        except _retryable_errors() as exc:
            raise TokenCountRetryable(f"Vertex AI CountTokens failed: {exc}") from exc
        except (gexc.GoogleAPICallError, ValueError, TypeError) as exc:
            raise TokenCountUnavailable(f"Vertex AI CountTokens failed: {exc}") from exc
        return int(response.total_tokens)


@functools.cache
def _retryable_errors() -> tuple[type[Exception], ...]:
    from google.api_core import exceptions as gexc

    # ResourceExhausted is a TooManyRequests and DeadlineExceeded a GatewayTimeout: the HTTP forms of
    # quota and time-outs are caught with the gRPC ones. RetryError: the client's own retries gave up.
    return (gexc.TooManyRequests, gexc.ServiceUnavailable, gexc.GatewayTimeout, gexc.RetryError)


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
        turns = list(request.get("contents") or [])
        system = request.get("systemInstruction")
        if system:
            turns.append(system)
        total = 0
        for turn in turns:
            total += self._per_turn
            for part in turn.get("parts") or []:
                text = part.get("text")
                if isinstance(text, str):
                    total += len(self._processor.encode(text))
        return total
