"""Property tests: whatever the bytes, the validator never crashes and accounts for every line."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.validation import get_model, validate_dataset
from shared.validation.schema import (
    FAST_DECODER,
    MESSAGES_DECODER,
    TEXT_DECODER,
    ExampleChecker,
    MessagesExample,
    Shape,
    TextExample,
    fast_check,
    messages_chars,
    text_chars,
)
from tests.unit.validation.helpers import FILE, GOOD, LEGACY_GOOD

MODELS = ["gemini-2.5-flash", "gemini-1.0-pro-002", "gemini-1.5-pro-002"]
GOOD_LINE = json.dumps(GOOD).encode()


def text_shape(ex: TextExample) -> Shape | None:
    """The text fast path's answer as a Shape, to compare with the precise path's."""
    chars = text_chars(ex)
    return None if chars < 0 else Shape(len(ex.turns), chars)


def messages_shape(ex: MessagesExample) -> Shape | None:
    chars = messages_chars(ex)
    return None if chars < 0 else Shape(len(ex.turns), chars)


def accounted(data: bytes, model: str) -> None:
    """Every non-blank... every line is an example or has an issue with its number; nothing raises."""
    report = validate_dataset(io.BytesIO(data), file=FILE, model=model)
    lines = io.BytesIO(data).readlines()
    assert report.byte_count == len(data)
    issue_lines = {i.line for i in report.issues}
    assert all(0 <= i.line <= len(lines) for i in report.issues)
    assert all(i.message for i in report.issues)
    objects = 0
    for number, raw in enumerate(lines, start=1):
        try:
            is_object = isinstance(json.loads(raw), dict)
        except (ValueError, RecursionError):
            is_object = False
        objects += is_object
        if not is_object and report.counts.total() < 100:
            assert number in issue_lines, (number, raw[:80])
    assert report.example_count <= objects
    json.dumps(report.to_dict())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200), max_size=8), st.sampled_from(MODELS))
def test_random_bytes(chunks: list[bytes], model: str) -> None:
    accounted(b"\n".join(chunks), model)


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=len(GOOD_LINE)), st.sampled_from(MODELS))
def test_truncated_lines(cut: int, model: str) -> None:
    accounted(GOOD_LINE + b"\n" + GOOD_LINE[:cut] + b"\n" + GOOD_LINE, model)


@settings(max_examples=50)
@given(st.integers(min_value=1, max_value=200_000), st.sampled_from(["[", '{"a":']))
def test_deep_nesting(depth: int, opener: str) -> None:
    accounted(GOOD_LINE + b"\n" + (opener * depth).encode() + b"\n", "gemini-2.5-flash")


def test_deep_nesting_inside_an_example() -> None:
    deep = b'{"contents": [{"role": "user", "parts": [{"functionCall": {"name": "f", "args": ' + b"[" * 100_000
    deep += b"]" * 100_000 + b'}}]}, {"role": "model", "parts": [{"text": "x"}]}]}'
    accounted(deep + b"\n", "gemini-2.5-flash")


@settings(max_examples=100)
@given(st.binary(min_size=1, max_size=8), st.integers(min_value=0, max_value=len(GOOD_LINE)))
def test_invalid_utf8_anywhere(junk: bytes, at: int) -> None:
    accounted(GOOD_LINE[:at] + b"\xff" + junk + GOOD_LINE[at:] + b"\n", "gemini-2.5-flash")


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=1, max_value=3_000_000))
def test_huge_lines(size: int) -> None:
    huge = json.dumps(
        {"contents": [{"role": "user", "parts": [{"text": "x" * size}]}, {"role": "model", "parts": [{"text": "y"}]}]}
    )
    accounted(huge.encode() + b"\n" + b"{" * 3 + b"\n", "gemini-1.5-flash-002")


@settings(max_examples=200)
@given(json_values, st.sampled_from(MODELS))
def test_random_json_values(value: Any, model: str) -> None:
    accounted(json.dumps(value).encode() + b"\n", model)


def mutated_examples() -> st.SearchStrategy[dict[str, Any]]:
    """Near-valid examples: the places the fast path looks at get random, often valid, values."""
    role = st.sampled_from(["user", "model", "system", "assistant", "", None, 3])
    text = st.sampled_from(["hi", "", None, 5, "🙂"])
    file_data = st.fixed_dictionaries(
        {},
        optional={
            "mimeType": st.sampled_from(["image/png", "image/gif", "audio/mpeg", "", 4]),
            "mime_type": st.just("image/png"),
            "fileUri": st.sampled_from(["gs://b/x", "gs://", "http://h/x", "file:///x", ""]),
            "file_uri": st.just("gs://b/y"),
        },
    )
    part = st.fixed_dictionaries(
        {},
        optional={
            "text": text,
            "fileData": file_data,
            "file_data": file_data,
            "functionCall": st.sampled_from([{"name": "f"}, {}, {"name": ""}, None]),
            "inlineData": st.just({"data": "AA=="}),
            "videoMetadata": st.just({}),
        },
    )
    turn = st.fixed_dictionaries({}, optional={"role": role, "parts": st.lists(part, max_size=3), "extra": st.just(1)})
    message = st.fixed_dictionaries({}, optional={"role": role, "content": text})
    return st.fixed_dictionaries(
        {},
        optional={
            "contents": st.lists(turn, max_size=4),
            "messages": st.lists(message, max_size=4),
            "systemInstruction": st.fixed_dictionaries(
                {}, optional={"role": role, "parts": st.lists(part, max_size=2)}
            ),
            "system_instruction": st.just({"parts": [{"text": "s"}]}),
            "tools": st.just([]),
            "id": st.just(1),
        },
    )


@settings(max_examples=1500)
@given(mutated_examples(), st.sampled_from(MODELS))
def test_the_fast_paths_never_pass_what_the_precise_path_rejects(obj: dict[str, Any], model: str) -> None:
    spec = get_model(model)
    assert spec is not None
    raw = json.dumps(obj).encode()
    problems, precise = ExampleChecker(spec).check(obj)
    clean = not problems  # warnings too: the fast paths only pass lines with nothing to say
    # Each fast path: decode with its decoder, then its check; the text path is for "contents" models only,
    # the messages path for "messages" models only.
    paths: list[tuple[str, Callable[[bytes], Shape | None]]] = [
        ("contents", lambda line: text_shape(TEXT_DECODER.decode(line))),
        ("messages", lambda line: messages_shape(MESSAGES_DECODER.decode(line))),
        ("any", lambda line: fast_check(FAST_DECODER.decode(line), spec)),
    ]
    for model_format, fast_path in paths:
        if model_format not in ("any", spec.format):
            continue
        try:
            shape = fast_path(raw)
        except Exception:  # any decode failure just means "not the fast path"
            continue
        if shape is not None:
            assert clean, (obj, problems)
            assert (shape.turns, shape.chars, shape.media, shape.media_tokens) == (
                precise.turns,
                precise.chars,
                precise.media,
                precise.media_tokens,
            )


def test_known_good_examples_take_the_fast_paths() -> None:
    flash = get_model("gemini-2.5-flash")
    assert flash is not None
    assert text_shape(TEXT_DECODER.decode(json.dumps(GOOD))) is not None
    assert messages_shape(MESSAGES_DECODER.decode(json.dumps(LEGACY_GOOD))) is not None
    media = {
        "contents": [
            {"role": "user", "parts": [{"fileData": {"mimeType": "image/png", "fileUri": "gs://b/x"}}]},
            GOOD["contents"][1],
        ]
    }
    assert fast_check(FAST_DECODER.decode(json.dumps(media)), flash) is not None
