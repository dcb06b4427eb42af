"""ModelAnswers on Vertex AI PredictionService.GenerateContent (or the local emulator of it).

Transient answers (RESOURCE_EXHAUSTED, UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, ABORTED) are retried with
truncated exponential backoff for at most RETRY_DEADLINE_SECONDS per call: for a 429 the documentation says
"Implement a retry strategy by using truncated exponential backoff"
(https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429, read 2026-11-30). What still fails is
TuningUnavailable; what the service refuses for good (invalid argument, permission, not found) is
TuningRejected, as in shared/adapters/vertex_tuning.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from google.api_core import exceptions as gexc
from google.api_core import retry as retries
from google.cloud import aiplatform_v1
from google.protobuf import json_format

from shared.adapters.vertex_clients import regional_client
from shared.ports import Generated, ModelAnswers, TuningRejected, TuningUnavailable

# Every attempt gets a deadline (an answer takes seconds), and all attempts of one call together at most
# RETRY_DEADLINE_SECONDS, so a stuck model cannot hold an evaluation's message past its ack deadline.
CALL_TIMEOUT_SECONDS: Final = 60.0
RETRY_DEADLINE_SECONDS: Final = 120.0
RETRY_INITIAL_SECONDS: Final = 1.0
RETRY_MAXIMUM_SECONDS: Final = 30.0
TRANSIENT_ERRORS: Final = (
    gexc.ResourceExhausted,
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.Aborted,
)
_MODEL_LOCATION_RE: Final = re.compile(
    r"projects/[^/]+/locations/(?P<location>[^/]+)/(publishers/[^/]+/models|endpoints)/[^/]+"
)


def transient_retry(deadline: float = RETRY_DEADLINE_SECONDS, initial: float = RETRY_INITIAL_SECONDS) -> retries.Retry:
    """Truncated exponential backoff on the transient codes, bounded by ``deadline`` seconds in all."""
    return retries.Retry(
        predicate=retries.if_exception_type(*TRANSIENT_ERRORS),
        initial=initial,
        maximum=RETRY_MAXIMUM_SECONDS,
        multiplier=2.0,
        timeout=deadline,
    )


def call_vertex(description: str, method: Callable[..., Any], request: Any, retry: retries.Retry) -> Any:
    """One API call with ``retry``; Google API errors become Tunedrop's transient or permanent errors."""
    try:
        return method(request=request, retry=retry, timeout=CALL_TIMEOUT_SECONDS)
    except (*TRANSIENT_ERRORS, gexc.RetryError, gexc.Cancelled, gexc.Unknown, gexc.ServerError) as exc:
        raise TuningUnavailable(f"{description}: {exc}") from exc
    except gexc.GoogleAPICallError as exc:  # the 4xx answers: invalid, denied, not found, unimplemented
        raise TuningRejected(f"{description}: {exc}") from exc


def prediction_client(emulator_host: str, region: str) -> aiplatform_v1.PredictionServiceClient:
    """A PredictionService client for ``region``: insecure gRPC to the emulator at ``emulator_host`` when given,
    else the regional endpoint with Application Default Credentials. Made when called, never at import."""
    return regional_client(aiplatform_v1.PredictionServiceClient, emulator_host, region)


def location_of(model: str) -> str:
    """The region in a publisher model's or an endpoint's resource name; TuningRejected for anything else."""
    match = _MODEL_LOCATION_RE.fullmatch(model)
    if match is None:
        raise TuningRejected(
            f"{model!r} is not a model: expected projects/P/locations/L/publishers/google/models/ID or "
            "projects/P/locations/L/endpoints/E"
        )
    return match["location"]


def generate_request(
    model: str, contents: Sequence[Mapping[str, Any]], system_instruction: Mapping[str, Any] | None
) -> aiplatform_v1.GenerateContentRequest:
    """The request, from Gemini contents as a dataset holds them (camelCase or snake_case keys)."""
    # Temperature 0: the gate compares two models, so each should give its most likely answer, the same when a
    # delivery is repeated (GenerationConfig.temperature, aiplatform_v1 2.7).
    body: dict[str, Any] = {"model": model, "contents": list(contents), "generationConfig": {"temperature": 0.0}}
    if system_instruction is not None:
        body["systemInstruction"] = system_instruction
    try:
        request: aiplatform_v1.GenerateContentRequest = aiplatform_v1.GenerateContentRequest.from_json(
            json.dumps(body, ensure_ascii=False)
        )
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise TuningRejected(f"the contents for {model} are not Gemini contents: {exc}") from exc
    return request


def generated(response: aiplatform_v1.GenerateContentResponse) -> Generated:
    """The first candidate's text (thoughts left out) and the tokens used. Thinking tokens are output the model
    generated (UsageMetadata.thoughts_token_count, "Number of tokens present in thoughts output", aiplatform_v1
    2.7), so they count as output tokens: a cost estimate then errs high, not low. No candidate (a blocked
    prompt) is an empty answer."""
    text = ""
    if response.candidates:
        text = "".join(part.text for part in response.candidates[0].content.parts if not part.thought)
    usage = response.usage_metadata
    return Generated(
        text=text,
        prompt_tokens=int(usage.prompt_token_count),
        output_tokens=int(usage.candidates_token_count) + int(usage.thoughts_token_count),
    )


class VertexModelAnswers(ModelAnswers):
    """GenerateContent in the model's own region: ``client_for(region)`` gives that region's client (cache it:
    ``functools.cache(lambda region: prediction_client(host, region))``). ``retry`` replaces the default
    backoff (tests shorten it)."""

    def __init__(
        self,
        client_for: Callable[[str], aiplatform_v1.PredictionServiceClient],
        *,
        retry: retries.Retry | None = None,
    ) -> None:
        self._client_for = client_for
        self._retry = retry or transient_retry()

    def generate(
        self,
        model: str,
        contents: Sequence[Mapping[str, Any]],
        system_instruction: Mapping[str, Any] | None = None,
    ) -> Generated:
        client = self._client_for(location_of(model))
        request = generate_request(model, contents, system_instruction)
        response = call_vertex(f"generating an answer with {model}", client.generate_content, request, self._retry)
        return generated(response)
