"""TokenCounter on Vertex AI CountTokens (or the local emulator's): the adapter behind the validator's port."""

from __future__ import annotations

import functools
from typing import Any

from shared.validation.tokens import Request, TokenCountRetryable, TokenCountUnavailable

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
