"""CountTokens on the local Vertex AI emulator, through the real gRPC client and the validator's counter."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.llm_utility_service.transports.grpc import LlmUtilityServiceGrpcTransport
from hypothesis import given
from hypothesis import strategies as st
from tunedrop_local.vertex_emulator import (
    PREDICTION_SERVICE_NAME,
    TOKENS_PER_FILE,
    VertexEmulator,
    approximate_tokens,
    serve,
)

from shared.adapters.vertex_tokens import VertexTokenCounter
from shared.validation import validate_dataset
from shared.validation.tokens import CountingIncomplete, TokenCountRetryable

pytestmark = pytest.mark.integration

ENDPOINT = "projects/tunedrop-dev/locations/us-central1/publishers/google/models/gemini-3.5-flash"


@pytest.fixture
def host() -> Iterator[str]:
    server, port = serve("127.0.0.1", 0, emulator=VertexEmulator(env={}))
    yield f"127.0.0.1:{port}"
    server.stop(None)


@pytest.fixture
def client(host: str) -> Iterator[aiplatform_v1.LlmUtilityServiceClient]:
    channel = grpc.insecure_channel(host)
    yield aiplatform_v1.LlmUtilityServiceClient(transport=LlmUtilityServiceGrpcTransport(channel=channel))
    channel.close()


def test_count_tokens_over_grpc(client: aiplatform_v1.LlmUtilityServiceClient) -> None:
    response = client.count_tokens(
        request={
            "endpoint": ENDPOINT,
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": "Hello, world!"},
                        {"file_data": {"mime_type": "image/png", "file_uri": "gs://b/x.png"}},
                    ],
                },
                {"role": "model", "parts": [{"text": "internationalization"}]},
            ],
            "system_instruction": {"parts": [{"text": "Be brief."}]},
        }
    )
    # Hello , world ! = 4; image = 258; internationalization = 20 chars = 4; Be brief . = 3
    assert response.total_tokens == 4 + TOKENS_PER_FILE + 4 + 3
    assert response.total_billable_characters == len("Hello,world!") + len("internationalization") + len("Bebrief.")


def test_count_tokens_rejects_a_bad_request(client: aiplatform_v1.LlmUtilityServiceClient) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="Invalid endpoint"):
        client.count_tokens(request={"endpoint": "gemini-3.5-flash", "contents": [{"parts": [{"text": "x"}]}]})
    with pytest.raises(exceptions.InvalidArgument, match="contents is required"):
        client.count_tokens(request={"endpoint": ENDPOINT})


def test_other_rpcs_are_unimplemented(client: aiplatform_v1.LlmUtilityServiceClient) -> None:
    with pytest.raises(exceptions.MethodNotImplemented):
        client.compute_tokens(request={"endpoint": ENDPOINT})


def test_count_tokens_is_also_served_on_prediction_service(host: str) -> None:
    # Older clients call PredictionService/CountTokens; the wire format is the same.
    with grpc.insecure_channel(host) as channel:
        call = channel.unary_unary(
            f"/{PREDICTION_SERVICE_NAME}/CountTokens",
            request_serializer=aiplatform_v1.CountTokensRequest.serialize,
            response_deserializer=aiplatform_v1.CountTokensResponse.deserialize,
        )
        request = aiplatform_v1.CountTokensRequest(
            endpoint=ENDPOINT, contents=[{"role": "user", "parts": [{"text": "a b"}]}]
        )
        assert call(request, timeout=10).total_tokens == 2


@given(st.text())
def test_the_approximation_never_exceeds_the_utf8_bound(text: str) -> None:
    assert 0 <= approximate_tokens(text) <= len(text.encode("utf-8"))


def test_the_validator_counts_long_examples_and_the_sample_with_the_emulator(host: str) -> None:
    counter = VertexTokenCounter("tunedrop-dev", "us-central1", host=host)
    long_text = "word " * 30_000  # 150,000 bytes: above gemini-3.5-flash's 131,072 bound, ~30,000 tokens
    lines = [
        {
            "contents": [
                {"role": "user", "parts": [{"text": f"question {i}"}]},
                {"role": "model", "parts": [{"text": "answer"}]},
            ]
        }
        for i in range(10)
    ]
    lines.append(
        {"contents": [{"role": "user", "parts": [{"text": long_text}]}, {"role": "model", "parts": [{"text": "ok"}]}]}
    )
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    report = validate_dataset(io.BytesIO(data), file="t.jsonl", token_counter=counter)
    assert report.valid, report.to_dict()["errors"]
    assert report.stats["exactly_counted_examples"] == 1
    assert report.stats["tokens_per_example"]["max"] == 30_001
    assert report.stats["token_counters"] == ["vertex-count-tokens"]
    assert "uniform random sample of 10 examples" in report.cost["method"]


def test_an_unreachable_service_is_retried_then_warned_offline_or_raised_for_the_upload() -> None:
    counter = VertexTokenCounter("tunedrop-dev", host="127.0.0.1:1", timeout=2)
    with pytest.raises(TokenCountRetryable):  # UNAVAILABLE: a later try may succeed
        counter.count({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, "gemini-3.5-flash")
    lines = (
        b'{"contents": [{"role": "user", "parts": [{"text": "'
        + b"x" * 140_000
        + b'"}]}, {"role": "model", "parts": [{"text": "y"}]}]}\n'
    )
    unreachable = VertexTokenCounter("p", host="127.0.0.1:1", timeout=2)
    report = validate_dataset(io.BytesIO(lines), file="t.jsonl", token_counter=unreachable, count_deadline=1)
    assert report.valid  # its length was never measured: a warning, not a rejection
    assert [i.code for i in report.warnings] == ["may_exceed_token_limit"]
    assert "no token counter was available" in report.warnings[0].message
    assert any("vertex-count-tokens was out of quota or unavailable" in note for note in report.notes)
    with pytest.raises(CountingIncomplete, match=r"line 1 of t\.jsonl"):
        validate_dataset(
            io.BytesIO(lines), file="t.jsonl", token_counter=unreachable, count_deadline=1, unverified_length="raise"
        )


def test_an_emulator_that_is_often_unavailable_still_counts_every_long_example() -> None:
    # Half the calls answer UNAVAILABLE: retries with backoff get each count through, nothing is rejected.
    server, port = serve("127.0.0.1", 0, emulator=VertexEmulator(unavailable_rate=0.5, seed=3, env={}))
    try:
        counter = VertexTokenCounter("tunedrop-dev", "us-central1", host=f"127.0.0.1:{port}")
        long_text = "word " * 30_000
        lines = [
            {
                "contents": [
                    {"role": "user", "parts": [{"text": f"{i} {long_text}"}]},
                    {"role": "model", "parts": [{"text": "ok"}]},
                ]
            }
            for i in range(4)
        ]
        data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
        report = validate_dataset(
            io.BytesIO(data), file="t.jsonl", token_counter=counter, count_deadline=30, unverified_length="raise"
        )
    finally:
        server.stop(None)
    assert report.valid and report.warnings == [], report.to_dict()
    assert report.stats["exactly_counted_examples"] == 4
    assert any("retried" in note for note in report.notes)


def test_count_tokens_counts_tools_and_function_payloads(client: aiplatform_v1.LlmUtilityServiceClient) -> None:
    turns = [
        {"role": "user", "parts": [{"text": "Hello"}]},
        {"role": "model", "parts": [{"function_call": {"name": "lookup", "args": {"q": "pixel"}}}]},
    ]
    tool = {"function_declarations": [{"name": "lookup", "description": "Find a product in the catalogue"}]}
    bare = client.count_tokens(request={"endpoint": ENDPOINT, "contents": turns}).total_tokens
    with_tools = client.count_tokens(request={"endpoint": ENDPOINT, "contents": turns, "tools": [tool]}).total_tokens
    declaration = aiplatform_v1.Tool.to_json(aiplatform_v1.Tool(tool), indent=None)
    assert with_tools == bare + approximate_tokens(declaration)
    call = aiplatform_v1.FunctionCall.to_json(
        aiplatform_v1.FunctionCall(name="lookup", args={"q": "pixel"}), indent=None
    )
    assert bare == approximate_tokens("Hello") + approximate_tokens(call)


def test_the_validator_sends_tools_to_the_emulator(host: str) -> None:
    counter = VertexTokenCounter("tunedrop-dev", host=host)
    request = {
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
        "tools": [{"functionDeclarations": [{"name": "lookup", "parameters": {"type": "object"}}]}],
    }
    assert counter.count(request, "gemini-3.5-flash") > counter.count(
        {"contents": request["contents"]}, "gemini-3.5-flash"
    )
