"""The model registry, and a sweep over every model checking that its own limits are enforced."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from shared.validation import get_model, registry, validate_dataset
from shared.validation.registry import ModelSpec, parse_registry
from shared.validation.schema import ExampleChecker
from tests.unit.validation.helpers import FILE, LEGACY_GOOD, FakeCounter, codes, example, file_part, run, turn

MODELS = registry().names()


def model(name: str) -> ModelSpec:
    found = get_model(name)
    assert found is not None
    return found


def good(spec: ModelSpec) -> dict[str, Any]:
    return LEGACY_GOOD if spec.format == "messages" else example()


def enough(spec: ModelSpec) -> list[dict[str, Any]]:
    return [good(spec)] * spec.min_examples


def test_the_registry_holds_both_generations_with_their_documented_figures() -> None:
    assert set(MODELS) == {
        "gemini-1.0-pro-002",
        "gemini-1.5-pro-002",
        "gemini-1.5-flash-002",
        "gemini-2.0-flash-001",
        "gemini-2.0-flash-lite-001",
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
    }
    assert model("gemini-1.0-pro-002").format == "messages" and not model("gemini-1.0-pro-002").multimodal
    assert (model("gemini-1.5-pro-002").adapter_sizes, model("gemini-1.5-pro-002").default_adapter_size) == ((1, 4), 4)
    assert (model("gemini-1.5-flash-002").adapter_sizes, model("gemini-1.5-flash-002").default_adapter_size) == (
        (1, 4, 8, 16),
        8,
    )
    for name in ("gemini-1.0-pro-002", "gemini-1.5-pro-002", "gemini-1.5-flash-002"):
        assert (model(name).max_tokens_per_example, model(name).max_validation_examples) == (32_000, 256)
    for name in ("gemini-2.0-flash-001", "gemini-2.0-flash-lite-001"):
        spec = model(name)
        assert spec.max_tokens_per_example == 131_072 and spec.max_validation_examples == 5_000
        assert spec.max_file_bytes == 2**30
        assert (spec.max_examples_text, spec.max_examples_multimodal) == (1_000_000, 300_000)
        assert spec.adapter_sizes == (1, 2, 4, 8)
    assert get_model("gemini-2.0-flash") == model("gemini-2.0-flash-001")
    assert get_model("GEMINI-2.0-FLASH-LITE") == model("gemini-2.0-flash-lite-001")
    assert get_model("gemini-9") is None
    assert registry().checked and registry().disagreements


@pytest.mark.parametrize("name", MODELS)
def test_every_figure_has_a_source(name: str) -> None:
    spec = model(name)
    assert spec.sources and all(source in registry().sources for source in spec.sources)
    assert spec.regions and "us-central1" in spec.regions
    assert spec.price_per_million_tokens_usd is None or spec.price_date


def test_adding_a_model_is_a_data_change() -> None:
    doc = json.loads((__import__("importlib.resources").resources.files("shared") / "models.json").read_text())
    doc["models"]["gemini-9-flash"] = {**doc["models"]["gemini-2.5-flash"], "aliases": ["gemini-9"]}
    doc["models"]["gemini-9-flash"]["max_validation_examples"] = 7
    extended = parse_registry(doc)
    found = extended.resolve("gemini-9")
    assert found is not None and found.name == "gemini-9-flash" and found.max_validation_examples == 7


def test_a_text_only_contents_model_rejects_media() -> None:
    spec = model("gemini-2.5-flash")
    text_only = dataclasses.replace(spec, media={})
    problems, _ = ExampleChecker(text_only).check(example({"role": "user", "parts": [file_part()]}, turn("model", "a")))
    assert [p.code for p in problems] == ["media_not_supported"]


# ---- the sweep


@pytest.mark.parametrize("name", MODELS)
def test_adapter_sizes_epochs_and_learning_rate(name: str) -> None:
    spec = model(name)
    for size in spec.adapter_sizes:
        assert run(*enough(spec), model=name, hyper_parameters={"adapter_size": size}).valid
    for size in sorted({0, 3, max(spec.adapter_sizes) * 2} - set(spec.adapter_sizes)):
        report = run(*enough(spec), model=name, hyper_parameters={"adapter_size": size})
        assert codes(report) == [(0, "bad_adapter_size")]
    low, high = int(spec.epochs.low), int(spec.epochs.high)
    assert run(*enough(spec), model=name, hyper_parameters={"epoch_count": low}).valid
    assert run(*enough(spec), model=name, hyper_parameters={"epoch_count": high}).valid
    for bad in (low - 1, high + 1):
        assert codes(run(*enough(spec), model=name, hyper_parameters={"epoch_count": bad})) == [(0, "bad_epochs")]
    lrm = spec.learning_rate_multiplier
    assert run(*enough(spec), model=name, hyper_parameters={"learning_rate_multiplier": lrm.high}).valid
    too_big = {"learning_rate_multiplier": lrm.high * 1.01}
    assert codes(run(*enough(spec), model=name, hyper_parameters=too_big)) == [(0, "bad_learning_rate_multiplier")]


@pytest.mark.parametrize("name", MODELS)
def test_format_minimum_and_file_size(name: str) -> None:
    spec = model(name)
    other = example() if spec.format == "messages" else LEGACY_GOOD
    assert codes(run(*enough(spec), other, model=name)) == [(spec.min_examples + 1, "missing_contents")]
    assert run(*enough(spec), model=name, file_size=spec.max_file_bytes).valid
    assert codes(run(*enough(spec), model=name, file_size=spec.max_file_bytes + 1)) == [(0, "file_too_large")]
    if spec.min_examples > 1:
        assert codes(run(*enough(spec)[1:], model=name)) == [(0, "too_few_examples")]


@pytest.mark.parametrize("name", MODELS)
def test_token_limit(name: str) -> None:
    spec = model(name)
    limit = spec.max_tokens_per_example
    big = "w" * (limit + 10)
    long = (
        {"messages": [{"role": "user", "content": big}, {"role": "model", "content": "ok"}]}
        if (spec.format == "messages")
        else example(turn("user", big), turn("model", "ok"))
    )
    at_limit = FakeCounter(lambda request: limit)
    assert run(*enough(spec), long, model=name, token_counter=at_limit).valid
    over = FakeCounter(lambda request: limit + 1)
    assert codes(run(*enough(spec), long, model=name, token_counter=over)) == [
        (spec.min_examples + 1, "too_many_tokens")
    ]


@pytest.mark.parametrize("name", MODELS)
def test_validation_set_limit(name: str) -> None:
    spec = model(name)
    limit = spec.max_validation_examples

    def validation(count: int) -> io.BytesIO:
        return io.BytesIO((json.dumps(good(spec)).encode() + b"\n") * count)

    train = io.BytesIO(
        b"".join(json.dumps(e).encode() + b"\n" for e in [example(turn("user", "t"), turn("model", "m"))])
    )
    if spec.format == "messages":
        train = io.BytesIO(
            b"".join(
                json.dumps(
                    {"messages": [{"role": "user", "content": f"t{i}"}, {"role": "model", "content": "m"}]}
                ).encode()
                + b"\n"
                for i in range(spec.min_examples)
            )
        )
    at = validate_dataset(train, file=FILE, model=name, validation=validation(limit), validation_file="v")
    assert "validation_too_large" not in at.counts
    train.seek(0)
    over = validate_dataset(train, file=FILE, model=name, validation=validation(limit + 1), validation_file="v")
    assert [(i.line, i.code) for i in over.issues] == [(0, "validation_too_large")]


@pytest.mark.parametrize("name", [n for n in MODELS if model(n).multimodal])
def test_media_types_and_per_example_counts(name: str) -> None:
    spec = model(name)
    for mime in sorted(spec.mime_types):
        media = example({"role": "user", "parts": [file_part("gs://b/f", mime)]}, turn("model", "ok"))
        assert run(media, model=name).valid, mime
    for mime in ("image/gif", "application/zip", "video/mp4" if "video" not in spec.media else "text/html"):
        media = example({"role": "user", "parts": [file_part("gs://b/f", mime)]}, turn("model", "ok"))
        assert codes(run(media, model=name)) == [(1, "unsupported_mime_type")], mime
    for rule in spec.media.values():
        if rule.max_per_example is None:
            continue
        mime = sorted(rule.mime_types)[0]

        def with_files(count: int, mime: str = mime) -> dict[str, Any]:
            return example(
                {"role": "user", "parts": [file_part(f"gs://b/{i}", mime) for i in range(count)]}, turn("model", "ok")
            )

        assert run(with_files(rule.max_per_example), model=name).valid
        assert codes(run(with_files(rule.max_per_example + 1), model=name)) == [(1, "too_many_media")]


def _repeat(line: bytes, count: int) -> Iterator[bytes]:
    # The same bytes object each time: its hash is cached, so a million lines stay cheap.
    return itertools.repeat(line, count)


@pytest.mark.parametrize("name", [n for n in MODELS if model(n).max_examples_text is not None])
def test_dataset_size_limits(name: str) -> None:
    spec = model(name)
    assert spec.max_examples_text is not None and spec.max_examples_multimodal is not None
    text = json.dumps(good(spec)).encode() + b"\n"
    report = validate_dataset(_repeat(text, spec.max_examples_text + 1), file=FILE, model=name)
    assert [(i.line, i.code) for i in report.issues] == [(0, "too_many_examples")]
    media = json.dumps(example({"role": "user", "parts": [file_part()]}, turn("model", "ok"))).encode() + b"\n"
    report = validate_dataset(_repeat(media, spec.max_examples_multimodal + 1), file=FILE, model=name)
    assert [(i.line, i.code) for i in report.issues] == [(0, "too_many_examples")]
