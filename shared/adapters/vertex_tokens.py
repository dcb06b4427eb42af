"""TokenCounter on Vertex AI CountTokens (or the local emulator's): the adapter behind the validator's port."""

from __future__ import annotations

import functools
import json
from typing import Any

from shared.validation.tokens import Request, TokenCountRetryable, TokenCountUnavailable


def _upper_schema_types(value: Any) -> Any:
    """``value`` with every "type" string in upper case: the API's Schema.type is an enum (OBJECT, STRING, ...)
    whose JSON form is the name, while OpenAPI and JSON Schema write "object", "string"."""
    if isinstance(value, dict):
        return {
            k: (v.upper() if k == "type" and isinstance(v, str) else _upper_schema_types(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_upper_schema_types(v) for v in value]
    return value


def _request_json(request: Request, endpoint: str) -> str:
    """The CountTokensRequest as proto JSON: contents, systemInstruction, tools and generationConfig as the
    example spells them (camelCase or snake_case: the proto JSON reader takes both)."""
    body: dict[str, Any] = {"endpoint": endpoint, "model": endpoint, **request}
    if "tools" in body:
        body["tools"] = _upper_schema_types(body["tools"])
    return json.dumps(body, ensure_ascii=False, default=str)


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

            from shared.adapters.vertex_clients import regional_client

            self._client = regional_client(aiplatform_v1.LlmUtilityServiceClient, self._host, self._location)
        return self._client

    def count(self, request: Request, model: str) -> int:
        from google.api_core import exceptions as gexc
        from google.cloud import aiplatform_v1
        from google.protobuf import json_format

        endpoint = f"projects/{self._project}/locations/{self._location}/publishers/google/models/{model}"
        try:
            # Fields the API does not know are left out rather than refused: the count is what is asked
            # here, and the validator reports such fields itself.
            pb = aiplatform_v1.CountTokensRequest.from_json(
                _request_json(request, endpoint), ignore_unknown_fields=True
            )
            response = self._get_client().count_tokens(request=pb, timeout=self._timeout)
        except _retryable_errors() as exc:
            raise TokenCountRetryable(f"Vertex AI CountTokens failed: {exc}") from exc
        except (gexc.GoogleAPICallError, json_format.Error, ValueError, TypeError) as exc:
            raise TokenCountUnavailable(f"Vertex AI CountTokens failed: {exc}") from exc
        return int(response.total_tokens)


@functools.cache
def _retryable_errors() -> tuple[type[Exception], ...]:
    from google.api_core import exceptions as gexc

    # ResourceExhausted is a TooManyRequests and DeadlineExceeded a GatewayTimeout: the HTTP forms of
    # quota and time-outs are caught with the gRPC ones. RetryError: the client's own retries gave up.
    return (gexc.TooManyRequests, gexc.ServiceUnavailable, gexc.GatewayTimeout, gexc.RetryError)
