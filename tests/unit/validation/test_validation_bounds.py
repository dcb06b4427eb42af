"""Bounded memory whatever the line: over-long lines, lines of countless tiny values, oversized files."""

from __future__ import annotations

import dataclasses
import io
import json
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.validation import engine, get_model, validate_dataset
from shared.validation.registry import ModelSpec
from shared.validation.schema import (
    BYTES_PER_TOKEN_BOUND,
    LINE_SLACK_BYTES,
    VALUES_PER_TOKEN_BOUND,
    json_values,
    max_json_values,
    max_line_bytes,
)
from shared.validation.tokens import SentencePieceTokenCounter
from tests.unit.validation.helpers import FILE, GOOD, FakeCounter, codes, example, line, turn, warnings

GOOD_LINE = line(GOOD)
VAL = "gs://ds/incoming/val.jsonl"


def spec(**changes: Any) -> ModelSpec:
    found = get_model("gemini-2.5-flash")
    assert found is not None
    return dataclasses.replace(found, **changes)


SMALL = spec(max_tokens_per_example=1_000)  # bounds of about a megabyte and 1,000 values: quick tests


class Generated(io.RawIOBase):
    """A readable stream of ``pieces``, made as they are read: a test file of any size costs no memory.

    ``read_bytes`` counts what was handed out; reading past ``most`` bytes fails the test at once.
    Wrapped in an io.BufferedReader, as the services do."""

    def __init__(self, pieces: Iterator[bytes], most: int | None = None) -> None:
        self._pieces = pieces
        self._buffer = b""
        self._most = most
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._buffer = piece
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        self.read_bytes += size
        assert self._most is None or self.read_bytes <= self._most, f"read {self.read_bytes:,} bytes"
        return size


class Recording(io.BufferedReader):
    """Records the longest piece handed to the validator by readline (iterating calls readline too)."""

    longest = 0

    def readline(self, size: int | None = -1) -> bytes:
        out = super().readline(-1 if size is None else size)
        self.longest = max(self.longest, len(out))
        return out


def tiny_parts_line(size: int) -> Iterator[bytes]:
    """One example of about ``size`` bytes whose first turn holds empty text parts, in 1 MiB pieces."""
    head = b'{"contents": [{"role": "user", "parts": [{"text": ""}'
    piece = b', {"text": ""}' * (2**20 // 14)
    yield head
    for _ in range(-(-max(0, size - len(head)) // len(piece))):  # rounded up: at least size bytes
        yield piece
    yield b']}, {"role": "model", "parts": [{"text": "ok"}]}]}\n'


def padded(target: int, newline: bool = True) -> bytes:
    """GOOD padded with spaces (valid JSON, no tokens) to exactly ``target`` bytes."""
    body = json.dumps(GOOD).encode()
    end = b"\n" if newline else b""
    return body + b" " * (target - len(body) - len(end)) + end


def peak_bytes(action: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---- the bounds


def test_the_bounds_follow_the_model_limit() -> None:
    assert max_line_bytes(SMALL) == 1_000 * BYTES_PER_TOKEN_BOUND + LINE_SLACK_BYTES
    assert max_json_values(SMALL) == 1_000 * VALUES_PER_TOKEN_BOUND
    big = spec()
    assert max_line_bytes(big) == 131_072 * 64 + 2**20  # 9 MiB for a 131,072-token model


def test_values_are_counted_outside_strings_only_when_it_matters() -> None:
    raw = b'{"a": [1, 2, {}], "b": "x,y{["}'
    # Values: the object, the array, 1, 2, {} and the string: 6. Commas 3 + "{" 2 + "[" 1 = 6.
    assert json_values(raw, most=6) == 6
    assert json_values(raw, most=100) == 9  # under the cap, the rough count (string punctuation too) is enough
    assert json_values(b'"' + b"," * 1_000 + b'"', most=10) == 0


# ---- over-long lines


def test_a_50_mb_line_of_tiny_parts_is_refused_unread_and_the_next_line_is_checked() -> None:
    pieces = iter([GOOD_LINE, *tiny_parts_line(50_000_000), b"{oops\n", GOOD_LINE])
    stream = Generated(pieces)
    reader = Recording(stream, buffer_size=1 << 16)
    report, peak = peak_bytes(lambda: validate_dataset(reader, file=FILE, model="gemini-2.5-flash"))
    assert codes(report) == [(2, "line_too_long"), (3, "not_json")]
    assert warnings(report) == [(4, "duplicate_example")]  # line 4 was read and checked
    assert report.example_count == 2 and report.byte_count == stream.read_bytes > 50_000_000
    message = report.issues[0].message
    assert f"{report.byte_count - 2 * len(GOOD_LINE) - len(b'{oops' + bytes([10])):,} bytes" in message
    assert "9,437,184 bytes for gemini-2.5-flash" in message
    # Never more of the line than the bound in one piece, and far less memory than the line.
    assert reader.longest <= max_line_bytes(spec()) + 1
    assert peak < 40 * 2**20


def test_line_just_under_at_and_over_the_bound() -> None:
    most = max_line_bytes(SMALL)
    for wrap in (io.BytesIO, list):  # a reader, and lines already split by the caller
        for size, refused in ((most - 1, False), (most, False), (most + 1, True), (most + 2 * 2**20, True)):
            data = padded(size) + b"{oops\n" + GOOD_LINE
            source: Any = wrap(data) if wrap is io.BytesIO else io.BytesIO(data).readlines()
            report = validate_dataset(source, file=FILE, model=SMALL)
            expected = [(1, "line_too_long")] if refused else []
            assert codes(report) == [*expected, (2, "not_json")], (wrap, size)
            assert report.byte_count == len(data)
            assert report.example_count == (1 if refused else 2)
            if refused:
                assert report.issues[0].message.startswith(f"Line is {size:,} bytes")


def test_a_last_line_over_the_bound_without_newline() -> None:
    most = max_line_bytes(SMALL)
    data = GOOD_LINE + padded(most + 1, newline=False)
    report = validate_dataset(io.BytesIO(data), file=FILE, model=SMALL)
    assert codes(report) == [(2, "line_too_long")]
    assert report.byte_count == len(data)
    data = GOOD_LINE + padded(most, newline=False)
    assert validate_dataset(io.BytesIO(data), file=FILE, model=SMALL).valid


def test_a_gigabyte_line_costs_no_more_than_the_bound() -> None:
    stream = Generated(iter([*tiny_parts_line(1_000_000_000), GOOD_LINE]))
    report, peak = peak_bytes(lambda: validate_dataset(io.BufferedReader(stream), file=FILE, model=SMALL))
    assert codes(report) == [(1, "line_too_long")] and report.example_count == 1
    assert stream.read_bytes > 1_000_000_000
    assert peak < 8 * 2**20  # SMALL's bound is about 1 MiB


# ---- lines of countless values


def parts_line(count: int, part: bytes = b'{"text": "a"}') -> bytes:
    """One example whose first turn holds ``count`` parts. Its commas, "{" and "[" number 2 * count + 9:
    per part a "{" and a "," (but the first), plus 3 "{" and 4 "," of the turns and 3 "{" and "[" around."""
    parts = b", ".join([part] * count)
    return (
        b'{"contents": [{"role": "user", "parts": [' + parts + b']}, {"role": "model", "parts": [{"text": "ok"}]}]}\n'
    )


def test_a_line_of_tiny_parts_over_the_value_cap_is_refused_and_one_under_is_read() -> None:
    cap = max_json_values(SMALL)  # 1,000
    under = (cap - 9) // 2  # 495 parts: 999 values
    counter = FakeCounter(lambda request: 900)
    report = validate_dataset(
        io.BytesIO(parts_line(under) + parts_line(under + 1) + b"{oops\n"),
        file=FILE,
        model=SMALL,
        token_counter=counter,
    )
    assert codes(report) == [(2, "too_many_values"), (3, "not_json")]
    message = report.issues[0].message
    assert f"about {2 * (under + 1) + 9:,} JSON values" in message and f"at most {cap:,} for" in message
    assert report.stats["exactly_counted_examples"] == 1  # line 1 was decoded and counted
    assert [len(request["contents"][0]["parts"]) for request in counter.calls][:1] == [under]


def test_punctuation_inside_text_does_not_count_as_values() -> None:
    text = ", [{" * 3_000  # 12,000 bytes of commas and brackets in one string, 9,000 of them counted roughly
    example = {"contents": [{"role": "user", "parts": [{"text": text}]}, {"role": "model", "parts": [{"text": "ok"}]}]}
    report = validate_dataset(
        io.BytesIO(line(example)), file=FILE, model=SMALL, token_counter=FakeCounter(lambda request: 999)
    )
    assert report.valid and report.stats["exactly_counted_examples"] == 1


def test_a_line_of_a_million_empty_arrays_is_refused_without_decoding() -> None:
    call = b'{"functionCall": {"name": "f", "args": {"x": [' + b",".join([b"[]"] * 1_000_000) + b"]}}}"
    raw = b'{"contents": [{"role": "model", "parts": [' + call + b"]}]}\n"
    assert len(raw) < max_line_bytes(spec())
    report, peak = peak_bytes(lambda: validate_dataset(io.BytesIO(raw + GOOD_LINE), file=FILE))
    assert codes(report) == [(1, "too_many_values")] and report.example_count == 1
    assert peak < 16 * 2**20  # a few copies of the 3 MB line; decoding a million lists would take about 60 MB


def test_deep_nesting_is_rejected_cheaply_and_the_next_line_is_checked() -> None:
    deep = b'{"contents": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    report = validate_dataset(io.BytesIO(deep + GOOD_LINE + b"{oops\n"), file=FILE)
    assert codes(report) == [(1, "not_json"), (3, "not_json")]
    assert "too deeply" in report.issues[0].message


# ---- oversized files


def endless_good_lines(count: int = 10**9) -> Iterator[bytes]:
    for i in range(count):
        yield line({"contents": [{"role": "user", "parts": [{"text": f"q{i}"}]}, GOOD["contents"][1]]})


def test_a_file_known_to_be_over_the_limit_is_reported_at_once() -> None:
    stream = Generated(endless_good_lines(), most=16 * 2**20)
    report = validate_dataset(
        io.BufferedReader(stream), file=FILE, model=spec(max_file_bytes=10_000), file_size=5 * 2**30
    )
    assert codes(report) == [(0, "file_too_large")]
    assert "is 5.00 GiB" in report.issues[0].message
    # The first 8 MiB (the default) are still checked, for line errors and statistics; no more.
    assert 8 * 2**20 <= report.byte_count < 8 * 2**20 + 1_000
    assert stream.read_bytes < report.byte_count + 2**20
    assert report.stats["examples"] == report.example_count > 50_000
    assert report.cost == {}
    assert any("only its first" in note for note in report.notes)


def test_a_prefix_of_an_oversized_file_reports_its_line_errors_and_none_can_be_read() -> None:
    data = GOOD_LINE + b"{oops\n" + GOOD_LINE * 10
    small = spec(max_file_bytes=100, min_examples=1_000)
    report = validate_dataset(io.BytesIO(data), file=FILE, model=small, file_size=10**12, oversized_scan_bytes=1)
    # Only the first line is read; too_few_examples would describe only what was read.
    assert codes(report) == [(0, "file_too_large")] and report.byte_count == len(GOOD_LINE)
    report = validate_dataset(
        io.BytesIO(data), file=FILE, model=small, file_size=10**12, oversized_scan_bytes=len(GOOD_LINE) + 1
    )
    assert codes(report) == [(0, "file_too_large"), (2, "not_json")] and report.example_count == 1
    reader = io.BytesIO(data)
    report = validate_dataset(reader, file=FILE, model=small, file_size=10**12, oversized_scan_bytes=0)
    assert codes(report) == [(0, "file_too_large")] and reader.tell() == 0 and report.byte_count == 0


def test_a_file_of_unknown_size_is_read_only_up_to_the_limit() -> None:
    stream = Generated(endless_good_lines(), most=2**20)
    report = validate_dataset(io.BufferedReader(stream), file=FILE, model=spec(max_file_bytes=100_000))
    assert codes(report) == [(0, "file_too_large")]
    assert "is over 0.00 GiB (reading stopped there)" in report.issues[0].message
    assert 100_000 < report.byte_count < 100_200


def test_an_oversized_validation_file_stops_early_too() -> None:
    small = spec(max_file_bytes=10_000)
    report = validate_dataset(
        io.BytesIO(GOOD_LINE),
        file=FILE,
        model=small,
        validation=Generated(endless_good_lines(), most=2**20),
        validation_file=VAL,
        validation_file_size=2**40,
        oversized_scan_bytes=20_000,
    )
    assert [(i.file, i.line, i.code) for i in report.issues] == [(VAL, 0, "file_too_large")]
    assert 20_000 <= report.validation_byte_count < 20_200


@pytest.mark.parametrize("size", [None, 20_000])
def test_a_file_within_the_limit_is_read_to_the_end(size: int | None) -> None:
    data = b"".join(endless_good_lines(100))
    report = validate_dataset(io.BytesIO(data), file=FILE, model=spec(max_file_bytes=20_000), file_size=size)
    assert report.valid and report.byte_count == len(data) < 20_000 and report.example_count == 100


class HalvingProcessor:
    """A stand-in SentencePiece processor: one token per two characters."""

    def encode(self, text: str) -> list[int]:
        return [0] * (len(text) // 2)


def long_text_example(chars: int) -> dict[str, Any]:
    return example(turn("user", "x" * chars), turn("model", "ok"))


@pytest.mark.parametrize("unverified_length", ["warn", "raise"])
def test_past_the_remote_budget_no_example_is_rejected_on_an_estimate(
    monkeypatch: pytest.MonkeyPatch, unverified_length: str
) -> None:
    # Long examples whose 4-characters-per-token estimate is under SMALL's limit but whose bound is over it;
    # one is really over (the remote counter says 1,200 for it), but only the first two are counted.
    monkeypatch.setattr(engine, "MAX_EXACT_COUNTS", 2)
    remote = FakeCounter(lambda request: 1_200 if len(str(request)) > 3_000 else 600)
    lines = [long_text_example(1_500 + n) for n in range(4)] + [long_text_example(3_000)]
    report = validate_dataset(
        io.BytesIO(b"".join(line(ex) for ex in lines)),
        file=FILE,
        model=SMALL,
        token_counter=remote,
        unverified_length=unverified_length,  # type: ignore[arg-type]
    )
    # Validating again would meet the same budget: a warning, never too_many_tokens nor a retry.
    assert report.valid and "too_many_tokens" not in report.counts
    assert warnings(report) == [
        (3, "may_exceed_token_limit"),
        (4, "may_exceed_token_limit"),
        (5, "may_exceed_token_limit"),
    ]
    assert report.stats["exactly_counted_examples"] == 2  # the budget; the others only in the cost sample


def test_a_local_tokenizer_keeps_counting_past_the_remote_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "MAX_EXACT_COUNTS", 1)
    remote = FakeCounter(lambda request: 600)
    local = SentencePieceTokenCounter(HalvingProcessor())
    lines = [long_text_example(1_500), long_text_example(1_600), long_text_example(2_400)]
    report = validate_dataset(
        io.BytesIO(b"".join(line(ex) for ex in lines)), file=FILE, model=SMALL, token_counter=[remote, local]
    )
    assert codes(report) == [(3, "too_many_tokens")] and warnings(report) == []
    assert "counted with sentencepiece" in report.issues[0].message
    assert report.stats["exactly_counted_examples"] == 3
