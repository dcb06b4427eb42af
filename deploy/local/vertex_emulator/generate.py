"""GenerateContent (PredictionService): what a request may say, which model it names, and the answer's shape.

What the request must say (GenerateContentRequest and Content in ``aiplatform_v1`` 2.7, read 2026-11-30;
https://docs.cloud.google.com/python/docs/reference/aiplatform/latest/google.cloud.aiplatform_v1.types.GenerateContentRequest):

* ``model``: "Required. The fully qualified name of the publisher model or tuned model endpoint to use.
  Publisher model format: projects/{project}/locations/{location}/publishers/*/models/* Tuned model endpoint
  format: projects/{project}/locations/{location}/endpoints/{endpoint}".
* ``contents``: "Required. The content of the current conversation with the model."; each Content's
  ``role`` "Must be either 'user' or 'model'" (or unset) and its ``parts`` are "Required".

A publisher model serves when it is Google's and the registry (shared/models.json) knows it and it has not
retired (a retired model "and every model tuned from it stop serving"); otherwise NOT_FOUND with the wording
Vertex AI gives for a model it does not have (see :func:`.validation.check_base_model`). Which answer each
model gives is :mod:`.answers`; ``usage_metadata`` counts tokens with :mod:`.tokens`' approximation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any, Final

import grpc
from google.cloud import aiplatform_v1

from shared.validation.registry import ModelStatus, registry

from . import tokens
from .answers import last_user_text
from .errors import EmulatorError, invalid_argument
from .names import project_number

_LOCATION: Final = r"projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
_PUBLISHER_MODEL_RE: Final = re.compile(_LOCATION + r"/publishers/(?P<publisher>[^/]+)/models/(?P<model>[^/]+)")
_ENDPOINT_RE: Final = re.compile(_LOCATION + r"/endpoints/(?P<endpoint>[^/]+)")
ROLES: Final = ("user", "model", "")
GOOGLE: Final = "google"


@dataclasses.dataclass(frozen=True)
class Target:
    """The model a request names: a publisher model or an endpoint, in a project (by number) and location."""

    number: str
    location: str
    publisher: str  # "" for an endpoint
    resource_id: str  # the model id, or the endpoint id

    @property
    def is_endpoint(self) -> bool:
        return not self.publisher


def parse_model(name: str) -> Target:
    publisher = _PUBLISHER_MODEL_RE.fullmatch(name)
    if publisher is not None:
        return Target(
            project_number(publisher["project"]), publisher["location"], publisher["publisher"], publisher["model"]
        )
    endpoint = _ENDPOINT_RE.fullmatch(name)
    if endpoint is not None:
        return Target(project_number(endpoint["project"]), endpoint["location"], "", endpoint["endpoint"])
    raise invalid_argument(
        f"Invalid model {name!r}: expected projects/{{project}}/locations/{{location}}/publishers/google/models/"
        "{model} or projects/{project}/locations/{location}/endpoints/{endpoint}."
    )


def prompt_text(request: aiplatform_v1.GenerateContentRequest) -> str:
    """The last user turn's text, once the contents are checked (INVALID_ARGUMENT naming the field)."""
    if not request.contents:
        raise invalid_argument("contents is required: give at least one Content.")
    turns: list[tuple[str, str]] = []
    for index, content in enumerate(request.contents):
        if content.role not in ROLES:
            raise invalid_argument(f"contents[{index}].role must be 'user' or 'model', got {content.role!r}.")
        if not content.parts:
            raise invalid_argument(f"contents[{index}].parts is required: give at least one Part.")
        turns.append((content.role, "".join(part.text for part in content.parts)))
    return last_user_text(turns)


def serving_model(target: Target, today: dt.date) -> str:
    """The registry's name of the publisher model ``target`` names, or NOT_FOUND."""
    spec = registry().resolve(target.resource_id) if target.publisher == GOOGLE else None
    if spec is None or spec.status(today) is ModelStatus.RETIRED:
        raise EmulatorError(
            grpc.StatusCode.NOT_FOUND,
            f"Publisher Model `projects/{target.number}/locations/{target.location}/publishers/{target.publisher}/"
            f"models/{target.resource_id}` was not found or your project does not have access to it. Please "
            "ensure you are using a valid model version.",
        )
    return spec.name


def endpoint_missing(model: str) -> EmulatorError:
    return EmulatorError(grpc.StatusCode.NOT_FOUND, f"Endpoint {model} not found.")


def response(
    request: aiplatform_v1.GenerateContentRequest, text: str, model_version: str, now: float
) -> aiplatform_v1.GenerateContentResponse:
    """One candidate with ``text``, finished normally, and the usage the emulator's tokenizer counts."""
    prompt_tokens, _ = tokens.prompt_cost(request)
    answer_tokens = tokens.approximate_tokens(text)
    answer: Any = aiplatform_v1.GenerateContentResponse(
        candidates=[
            aiplatform_v1.Candidate(
                index=0,
                content=aiplatform_v1.Content(role="model", parts=[aiplatform_v1.Part(text=text)]),
                finish_reason=aiplatform_v1.Candidate.FinishReason.STOP,
            )
        ],
        model_version=model_version,
        usage_metadata=aiplatform_v1.GenerateContentResponse.UsageMetadata(
            prompt_token_count=prompt_tokens,
            candidates_token_count=answer_tokens,
            total_token_count=prompt_tokens + answer_tokens,
        ),
    )
    aiplatform_v1.GenerateContentResponse.pb(answer).create_time.FromMicroseconds(round(now * 1_000_000))
    result: aiplatform_v1.GenerateContentResponse = answer
    return result
