"""The validator's per-line loop against a plain reference: same numbers, same duplicates, whatever the lines."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.validation import engine, get_model
from shared.validation.engine import (
    _LISTED_TURNS,
    _LISTED_UNITS,
    CHARS_PER_TOKEN,
    PROGRESS_BYTES,
    SAMPLE_MAX_LINE_BYTES,
    _Counting,
    _Validation,
)
from shared.validation.report import ValidationReport
from shared.validation.schema import ExampleChecker, LineError, Shape, decode_line
from shared.validation.stats import LogHistogram, Reservoir
from tests.unit.validation.helpers import FILE

MODELS = ["gemini-2.5-flash", "gemini-1.0-pro-002"]


def test_counting_down_the_gap_keeps_the_same_sample_as_asking_per_item() -> None:
    for seed in range(50):
        for total in (0, 5, 10, 11, 1_000, 20_000):
            asked: Reservoir[int] = Reservoir(10, seed=seed)
            for i in range(total):
                if asked.wants():
                    asked.offer(i)
                else:
                    asked.skip()
            counted: Reservoir[int] = Reservoir(10, seed=seed)
            gap, skipped = counted.gap(), 0
            for i in range(total):
                if gap:
                    gap, skipped = gap - 1, skipped + 1
                else:
                    counted.skip(skipped)
                    counted.offer(i)
                    skipped, gap = 0, counted.gap()
            counted.skip(skipped)
            assert (counted.items, counted.seen) == (asked.items, asked.seen)


def _text(size: int) -> str:
    return ("ab c\u00e9" * (size // 4 + 1))[:size]  # some non-ASCII: characters, not bytes, are counted


def _contents_example(turns: int, size: int, system: bool, extra: bool) -> dict[str, Any]:
    roles = ["user", "model"] * turns
    body = [{"role": roles[len(roles) - turns + i], "parts": [{"text": _text(size + i)}]} for i in range(turns)]
    out: dict[str, Any] = {"contents": body}
    if system:
        out["systemInstruction"] = {"parts": [{"text": _text(size)}]}
    if extra:
        out["id"] = 1  # a warning: the line leaves the fast path but is still a clean example
    return out


def _messages_example(turns: int, size: int, system: bool, extra: bool) -> dict[str, Any]:
    roles = ["user", "model"] * turns
    messages = [{"role": roles[len(roles) - turns + i], "content": _text(size + i)} for i in range(turns)]
    if system:
        messages.insert(0, {"role": "system", "content": _text(size)})
    out: dict[str, Any] = {"messages": messages}
    if extra:
        out["id"] = 1
    return out


# Sizes and turn counts on both sides of the list caps, and a few broken lines.
line_specs = st.one_of(
    st.tuples(
        st.sampled_from([0, 1, 2, 3, 4, 7, _LISTED_TURNS - 1, _LISTED_TURNS, _LISTED_TURNS + 2]),
        st.sampled_from([0, 1, 5, 300, _LISTED_UNITS - 1, _LISTED_UNITS, _LISTED_UNITS + 10]),
        st.booleans(),
        st.booleans(),
    ),
    st.sampled_from([b"{not json", b"", b"[]", b'{"contents": [{"role": "user"}]}']),
)


def _line(spec: tuple[int, int, bool, bool] | bytes, model: str) -> bytes:
    if isinstance(spec, bytes):
        return spec
    turns, size, system, extra = spec
    if turns * size > 140_000:
        size = 3  # keeps the test quick; lines near the token limit are counted the same way
    build = _messages_example if model == "gemini-1.0-pro-002" else _contents_example
    return json.dumps(build(turns, size, system, extra), ensure_ascii=size % 2 == 0).encode()


def _reference(lines: list[bytes], model: str) -> tuple[LogHistogram, dict[int, int], int, int, list[int], int]:
    """Histogram, turn counts, characters, examples, duplicate line numbers and examples offered to the sample,
    one precise line at a time."""
    spec = get_model(model)
    assert spec is not None
    checker = ExampleChecker(spec)
    hist = LogHistogram()
    turns: dict[int, int] = {}
    chars = examples = sampled = 0
    seen: set[bytes] = set()
    duplicates = []
    for number, raw in enumerate(lines, start=1):
        try:
            obj = decode_line(raw)
        except LineError:
            continue
        examples += 1
        problems, shape = checker.check(obj)
        if any(not p.warning for p in problems):
            continue
        if raw in seen:
            duplicates.append(number)
        seen.add(raw)
        assert isinstance(shape, Shape)
        hist.add(shape.chars + int(CHARS_PER_TOKEN * shape.media_tokens))
        turns[shape.turns] = turns.get(shape.turns, 0) + 1
        chars += shape.chars
        sampled += len(raw) + 1 <= SAMPLE_MAX_LINE_BYTES  # +1: the newline
    return hist, turns, chars, examples, duplicates, sampled


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(line_specs, max_size=12), st.lists(st.integers(min_value=0, max_value=11), max_size=4), st.data())
def test_the_loop_counts_what_the_precise_path_counts(
    specs: list[tuple[int, int, bool, bool] | bytes], repeats: list[int], data: st.DataObject
) -> None:
    model = data.draw(st.sampled_from(MODELS))
    lines = [_line(s, model) for s in specs]
    lines += [lines[i] for i in repeats if i < len(lines)]  # exact repeats: duplicates
    spec = get_model(model)
    assert spec is not None
    report = ValidationReport(file=FILE)
    run = _Validation(spec, report, _Counting([], spec.name), label_files=False)
    body = b"".join(line + b"\n" for line in lines)
    examples, size = run.scan(io.BytesIO(body), FILE, training=True, progress=None)

    hist, turns, chars, want_examples, duplicates, sampled = _reference(lines, model)
    assert (examples, size) == (want_examples, len(body))
    got = run.est_hist
    assert (got.buckets, got.count, got.low, got.high, got.total) == (
        hist.buckets,
        hist.count,
        hist.low,
        hist.high,
        hist.total,
    )
    assert run.est_units == hist.total
    assert (run.turns_counts, run.chars) == (turns, chars)
    assert [i.line for i in report.warnings if i.code == "duplicate_example"] == duplicates
    assert run.sample.seen == sampled


def test_overlap_between_files_and_duplicates_within_one() -> None:
    spec = get_model("gemini-2.5-flash")
    assert spec is not None
    good = [_line((2, n, False, False), "gemini-2.5-flash") + b"\n" for n in range(1, 6)]
    report = ValidationReport(file=FILE)
    run = _Validation(spec, report, _Counting([], spec.name), label_files=True)
    run.scan(io.BytesIO(b"".join(good[:3])), "train", training=True, progress=None)
    run.scan(io.BytesIO(good[2] + good[3] + good[3] + good[0]), "validation", training=False, progress=None)
    # Hygiene findings: warnings unless the validation is strict.
    assert report.issues == []
    assert [(i.line, i.code, i.file) for i in report.warnings] == [
        (1, "train_validation_overlap", "validation"),
        (3, "duplicate_example", "validation"),
        (4, "train_validation_overlap", "validation"),
    ]


def test_progress_is_reported_every_few_megabytes_and_at_the_end() -> None:
    spec = get_model("gemini-2.5-flash")
    assert spec is not None
    line = json.dumps(_contents_example(2, 50_000, False, False), ensure_ascii=False).encode() + b"\n"
    seen: list[int] = []
    run = _Validation(spec, ValidationReport(file=FILE), _Counting([], spec.name), label_files=False)
    run.scan(io.BytesIO(line * 200), FILE, training=True, progress=seen.append)
    assert len(seen) == 1 + len(line) * 200 // PROGRESS_BYTES
    assert seen == sorted(seen) and seen[-1] == len(line) * 200


def test_repeats_are_found_within_and_across_the_bulk_checks() -> None:
    spec = get_model("gemini-2.5-flash")
    assert spec is not None

    def clean(i: int) -> bytes:
        question = {"role": "user", "parts": [{"text": f"question {i} " + "x" * 500}]}
        return json.dumps({"contents": [question, {"role": "model", "parts": [{"text": "answer"}]}]}).encode()

    other = json.dumps(_contents_example(2, 5, False, True)).encode()  # a warning: not the hot path
    train = [clean(i) for i in range(3_000)]  # about 1.5 MB: more than one bulk check
    train[7:7] = [train[5]]  # a repeat in the same run
    train[2_500:2_500] = [train[20], other, train[2_400], other]  # repeats across runs, around other lines
    train.append(train[-1])
    validation = [clean(5), clean(10_000), clean(10_000), other, clean(2_999), clean(10_001)]

    report = ValidationReport(file=FILE)
    run = _Validation(spec, report, _Counting([], spec.name), label_files=True)
    run.scan(io.BytesIO(b"".join(x + b"\n" for x in train)), "train", training=True, progress=None)
    run.scan(io.BytesIO(b"".join(x + b"\n" for x in validation)), "validation", training=False, progress=None)

    def firsts(lines: list[bytes]) -> list[int]:
        seen: set[bytes] = set()
        out = []
        for number, line in enumerate(lines, start=1):
            if line in seen:
                out.append(number)
            seen.add(line)
        return out

    duplicates = [(i.file, i.line) for i in report.warnings if i.code == "duplicate_example"]
    assert duplicates == [("train", n) for n in firsts(train)] + [("validation", n) for n in firsts(validation)]
    assert [(i.file, i.line) for i in report.warnings if i.code == "train_validation_overlap"] == [
        ("validation", 1),
        ("validation", 4),
        ("validation", 5),
    ]


def test_the_fast_tiers_change_no_figure_of_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast tiers only save time (tests/bench/validator.py measures how much): sending every line to the
    precise path must give the same report, down to the statistics and the sample the cost comes from."""
    from tests.unit.validation.helpers import GOOD, LEGACY_GOOD, FakeCounter, example, file_part, run, turn

    def message(role: str, content: str) -> dict[str, str]:
        return {"role": role, "content": content}

    odd_lines: list[Any] = [b"{not json", b"", GOOD, LEGACY_GOOD, [1, 2]]
    mixed = {
        "gemini-2.5-flash": [
            GOOD,
            example(turn("user", "describe"), turn("model", "a cat"), systemInstruction={"parts": [{"text": "brief"}]}),
            example({"role": "user", "parts": [file_part(), {"text": "what is it?"}]}, turn("model", "a cat")),
            example(
                {"role": "user", "parts": [file_part("gs://b/d.png"), file_part("gs://b/d.png")]}, turn("model", "x")
            ),
            example(turn("model", "starts with the model")),
            {
                "contents": [
                    {"role": "user", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                    turn("model", "ok"),
                ]
            },
            *odd_lines,
            *(example(turn("user", f"question {i} " * (i % 7 + 1)), turn("model", f"answer {i}")) for i in range(300)),
        ],
        "gemini-1.0-pro-002": [
            LEGACY_GOOD,
            {"messages": [message("system", "brief"), message("user", "hi"), message("model", "hello")]},
            {"messages": [message("user", "hi"), message("system", "late"), message("model", "hello")]},
            {"messages": [message("user", "hi"), message("user", "again")]},
            *odd_lines,
            *(
                {"messages": [message("user", f"question {i} " * (i % 7 + 1)), message("model", "ok")]}
                for i in range(300)
            ),
        ],
    }

    def report_dict(model: str) -> dict[str, Any]:
        counter = FakeCounter(lambda request: 3 + len(json.dumps(request)) // 5)
        report = run(*mixed[model], model=model, token_counter=counter, hyper_parameters={"epoch_count": 2})
        return report.to_dict()

    assert sorted(mixed) == sorted(MODELS)
    for model in MODELS:
        with_fast_tiers = report_dict(model)
        monkeypatch.setattr(engine, "FAST_TIERS", False)
        precise_only = report_dict(model)
        monkeypatch.setattr(engine, "FAST_TIERS", True)
        assert with_fast_tiers["stats"]["examples_checked"] > 300
        assert with_fast_tiers["error_count"] >= 4
        assert precise_only == with_fast_tiers
