"""Token counting that fails: quota errors are retried, and a length nobody measured never rejects an example."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from shared.adapters.vertex_tokens import VertexTokenCounter
from shared.errors import TransientError
from shared.validation import engine
from shared.validation.tokens import CountingIncomplete, TokenCountRetryable, TokenCountUnavailable
from tests.unit.validation.helpers import GOOD, FakeCounter, codes, example, file_part, run, text_chars, turn, warnings

MODEL = "gemini-1.5-pro-002"  # 32,000 tokens per example: a 40,000-byte text is over the bound


def long_example(chars: int) -> dict[str, Any]:
    return example(turn("user", "x" * chars), turn("model", "ok"))


class FlakyCounter:
    """Raises ``error`` for its first ``failures`` calls (every call when None), then counts with ``rule``.

    Records the length of the first text of every request it was asked about."""

    def __init__(
        self,
        rule: Callable[[Mapping[str, Any]], int] = lambda request: text_chars(request) // 10,
        *,
        failures: int | None = None,
        error: type[TokenCountUnavailable] = TokenCountRetryable,
        name: str = "flaky",
        counts_media: bool = True,
    ) -> None:
        self.rule = rule
        self.failures = failures
        self.error = error
        self.name = name
        self.counts_media = counts_media
        self.asked: list[int] = []
        self._lock = threading.Lock()

    def count(self, request: Mapping[str, Any], model: str) -> int:
        with self._lock:
            self.asked.append(len(request["contents"][0]["parts"][-1].get("text", "")))
            calls = len(self.asked)
        if self.failures is None or calls <= self.failures:
            raise self.error("429 RESOURCE_EXHAUSTED: quota exceeded for CountTokens")
        return self.rule(request)


@pytest.mark.parametrize("unverified", ["warn", "raise"])
def test_quota_errors_are_retried_and_a_valid_dataset_is_accepted(unverified: str) -> None:
    counter = FlakyCounter(failures=3)
    report = run(
        GOOD,
        long_example(40_000),
        example(turn("user", "a"), turn("model", "b")),
        model=MODEL,
        token_counter=counter,
        unverified_length=unverified,
        count_deadline=5.0,
    )
    assert report.valid and report.warnings == []
    assert counter.asked[:4] == [40_000] * 4  # three refusals, then the count: 4,000 tokens
    assert report.stats["exactly_counted_examples"] == 1 and report.stats["tokens_per_example"]["max"] == 4_000
    assert "retried 3 time(s)" in " ".join(report.notes)
    # The two short examples, sampled for the cost estimate, were counted too.
    assert "uniform random sample of 2 examples" in report.cost["method"] and len(counter.asked) == 6


def test_an_over_limit_example_is_still_rejected_once_the_quota_comes_back() -> None:
    counter = FlakyCounter(lambda request: 32_001, failures=2)
    report = run(long_example(40_000), model=MODEL, token_counter=counter, unverified_length="raise", count_deadline=5)
    assert codes(report) == [(1, "too_many_tokens")]
    assert "32,001 tokens (counted with flaky)" in report.issues[0].message


def test_a_counter_that_never_recovers_raises_for_a_retry() -> None:
    counter = FlakyCounter()
    started = time.monotonic()
    with pytest.raises(CountingIncomplete) as raised:
        run(
            GOOD,
            long_example(40_000),
            model=MODEL,
            token_counter=counter,
            unverified_length="raise",
            count_deadline=0.5,
        )
    assert time.monotonic() - started < 5  # bounded by the deadline, not by the number of tries
    assert isinstance(raised.value, TransientError)  # the upload service lets Pub/Sub redeliver
    message = str(raised.value)
    assert "line 2 of gs://ds/incoming/train.jsonl" in message and "upper bound of 40,0" in message
    assert "flaky: 429 RESOURCE_EXHAUSTED" in message and "still failing after 0.5 s" in message
    assert len(counter.asked) >= 2  # retried before giving up


def test_offline_a_counter_that_never_recovers_leaves_warnings_and_is_given_up() -> None:
    counter = FlakyCounter()
    report = run(long_example(40_000), long_example(40_001), model=MODEL, token_counter=counter, count_deadline=0.3)
    assert report.valid
    assert warnings(report) == [(1, "may_exceed_token_limit"), (2, "may_exceed_token_limit")]
    assert "no token counter was available to count it exactly (flaky: 429" in report.warnings[0].message
    assert set(counter.asked) == {40_000}  # given up after the first example's deadline: no wait for the second
    assert any("flaky was out of quota or unavailable" in note for note in report.notes)
    assert "rule of thumb" in report.cost["method"]


@pytest.mark.parametrize("unverified", ["warn", "raise"])
def test_a_permanent_error_falls_back_to_the_next_counter_as_before(unverified: str) -> None:
    down = FlakyCounter(error=TokenCountUnavailable, name="down")
    spare = FakeCounter(lambda request: 40_000, name="spare")
    report = run(
        long_example(40_000),
        long_example(40_001),
        model=MODEL,
        token_counter=[down, spare],
        unverified_length=unverified,
        count_deadline=5,
    )
    assert codes(report) == [(1, "too_many_tokens"), (2, "too_many_tokens")]
    assert "counted with spare" in report.issues[0].message
    assert down.asked == [40_000]  # neither retried nor asked again
    assert any("down was unavailable" in note for note in report.notes)


def test_a_permanent_error_without_a_spare_warns_offline_and_raises_for_the_upload() -> None:
    report = run(long_example(40_000), model=MODEL, token_counter=FlakyCounter(error=TokenCountUnavailable))
    assert report.valid and warnings(report) == [(1, "may_exceed_token_limit")]
    with pytest.raises(CountingIncomplete, match="no token counter was available"):
        run(
            long_example(40_000),
            model=MODEL,
            token_counter=FlakyCounter(error=TokenCountUnavailable),
            unverified_length="raise",
        )


def test_a_media_estimate_that_only_a_failed_counter_could_settle_raises_for_the_upload() -> None:
    # Vertex AI (which counts media) is out of quota; a text-only counter finds the text under the limit,
    # and only the media estimate takes it over: asking Vertex AI again later can settle it.
    vertex = FlakyCounter(name="vertex")
    text_only = FakeCounter(text_chars, name="local", counts_media=False)
    line = example(
        {"role": "user", "parts": [*[file_part(f"gs://b/{i}.png") for i in range(30)], {"text": "y" * 25_000}]}
    )
    line["contents"].append(turn("model", "ok"))
    with pytest.raises(CountingIncomplete, match="local counted 25,002 tokens of its text"):
        run(
            line,
            model="gemini-1.5-flash-002",
            token_counter=[vertex, text_only],
            unverified_length="raise",
            count_deadline=0.3,
        )
    report = run(line, model="gemini-1.5-flash-002", token_counter=[vertex, text_only], count_deadline=0.3)
    assert report.valid and warnings(report) == [(1, "may_exceed_token_limit")]


def test_quota_errors_in_the_cost_sample_never_raise_nor_reject() -> None:
    counter = FlakyCounter()
    short = [example(turn("user", f"question {i}"), turn("model", "answer")) for i in range(5)]
    report = run(*short, model=MODEL, token_counter=counter, unverified_length="raise", count_deadline=0.3)
    assert report.valid and report.warnings == []
    assert counter.asked  # the sample was tried
    assert "rule of thumb" in report.cost["method"]


# ---- Vertex AI CountTokens errors, sorted


class FakeClient:
    """An LlmUtilityServiceClient answering count_tokens with ``answer`` (an exception is raised)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[Any] = []

    def count_tokens(self, request: Any, timeout: float) -> Any:
        self.requests.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


REQUEST = {"contents": [turn("user", "hello")], "systemInstruction": {"parts": [{"text": "Be brief."}]}}


@pytest.mark.parametrize(
    "error",
    [
        gexc.ResourceExhausted("Quota exceeded for CountTokens requests per minute"),
        gexc.TooManyRequests("429"),
        gexc.ServiceUnavailable("The service is currently unavailable."),
        gexc.DeadlineExceeded("Deadline Exceeded"),
        gexc.RetryError("retries exhausted", gexc.ServiceUnavailable("down")),
    ],
)
def test_vertex_quota_and_availability_errors_are_retryable(error: Exception) -> None:
    counter = VertexTokenCounter("p", client=FakeClient(error))
    with pytest.raises(TokenCountRetryable, match="Vertex AI CountTokens failed"):
        counter.count(REQUEST, "gemini-2.5-flash")


@pytest.mark.parametrize(
    "error",
    [
        gexc.InvalidArgument("Invalid endpoint"),
        gexc.PermissionDenied("aiplatform.endpoints.predict denied"),
        gexc.NotFound("model not found"),
    ],
)
def test_vertex_refusals_are_permanent(error: Exception) -> None:
    counter = VertexTokenCounter("p", client=FakeClient(error))
    with pytest.raises(TokenCountUnavailable) as raised:
        counter.count(REQUEST, "gemini-2.5-flash")
    assert not isinstance(raised.value, TokenCountRetryable)


def test_vertex_counter_sends_snake_case_and_returns_the_total() -> None:
    from google.cloud import aiplatform_v1

    client = FakeClient(aiplatform_v1.CountTokensResponse(total_tokens=7))
    counter = VertexTokenCounter("p", "europe-west4", client=client)
    assert counter.count(REQUEST, "gemini-2.5-flash") == 7
    sent = client.requests[0]
    assert sent.endpoint == "projects/p/locations/europe-west4/publishers/google/models/gemini-2.5-flash"
    assert sent.system_instruction.parts[0].text == "Be brief." and sent.contents[0].parts[0].text == "hello"


def test_past_the_exact_count_budget_a_long_example_is_a_warning_even_for_the_upload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Validating again would meet the same budget: raising could only loop.
    monkeypatch.setattr(engine, "MAX_EXACT_COUNTS", 1)
    counter = FakeCounter(lambda request: 1_000)
    report = run(
        long_example(40_000), long_example(40_001), model=MODEL, token_counter=counter, unverified_length="raise"
    )
    assert report.valid and warnings(report) == [(2, "may_exceed_token_limit")]
    assert "counts at most 1 long examples exactly per run" in report.warnings[0].message


# ---- issue 12: tools and function payloads are counted, and sent to CountTokens

TOOLS = [
    {
        "functionDeclarations": [
            {"name": "lookup", "description": "Look a product up " * 20, "parameters": {"type": "object"}}
        ]
    }
]
CALL_TURN = {"role": "model", "parts": [{"functionCall": {"name": "lookup", "args": {"q": "y" * 300}}}]}


def test_tools_and_function_payloads_count_toward_the_estimate_on_both_paths() -> None:
    from shared.validation.registry import get_model
    from shared.validation.schema import FAST_DECODER, ExampleChecker, fast_check, text_bound, to_request

    spec = get_model("gemini-3.5-flash")
    assert spec is not None
    line = example(turn("user", "a"), CALL_TURN, tools=TOOLS)
    problems, shape = ExampleChecker(spec).check(line)
    assert problems == [] and shape.chars > 300 + 20 * len("Look a product up ")
    # The fast path measures the payloads as written; compact JSON gives the precise path's figure.
    fast = fast_check(FAST_DECODER.decode(json.dumps(line, separators=(",", ":")).encode()), spec)
    assert fast is not None and fast.chars == shape.chars
    request = to_request(line, spec)
    assert request["tools"] == TOOLS
    assert text_bound(request) > text_bound({"contents": request["contents"]}) > 300


def test_vertex_counter_sends_tools_with_the_schema_types_it_knows() -> None:
    from google.cloud import aiplatform_v1

    client = FakeClient(aiplatform_v1.CountTokensResponse(total_tokens=9))
    counter = VertexTokenCounter("p", client=client)
    request = {**REQUEST, "contents": [turn("user", "hello"), CALL_TURN], "tools": TOOLS}
    assert counter.count(request, "gemini-3.5-flash") == 9
    sent = client.requests[0]
    declaration = sent.tools[0].function_declarations[0]
    assert declaration.name == "lookup" and declaration.parameters.type_ == aiplatform_v1.Type.OBJECT
    assert sent.contents[1].parts[0].function_call.args["q"] == "y" * 300
    assert sent.system_instruction.parts[0].text == "Be brief."
