"""The model registry, and a sweep over every model checking that its own limits are enforced."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import math
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from shared.config import setting_default
from shared.validation import get_model, registry, validate_dataset
from shared.validation.engine import check_example_count
from shared.validation.registry import DEFAULT_MODEL, ModelSpec, ModelStatus, parse_registry
from shared.validation.report import ValidationReport
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


CURRENT = {"gemini-3.5-flash", "gemini-3.5-flash-lite", "gemini-3.1-flash-lite"}
SEEDS = {
    "gemini-1.0-pro-002",
    "gemini-1.5-pro-002",
    "gemini-1.5-flash-002",
    "gemini-2.0-flash-001",
    "gemini-2.0-flash-lite-001",
}
TODAY = date(2026, 11, 29)  # the day the registry was checked against Google's pages


def test_the_registry_holds_todays_models_and_keeps_the_retired_ones() -> None:
    assert set(MODELS) == CURRENT | SEEDS | {"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"}
    assert registry().checked == TODAY.isoformat()
    assert set(registry().tunable(TODAY)) == CURRENT
    assert registry().disagreements


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_todays_models_share_the_gemini_3_limits(name: str) -> None:
    spec = model(name)
    assert (spec.max_tokens_per_example, spec.max_validation_examples) == (131_072, 5_000)
    assert (spec.max_examples_text, spec.max_examples_multimodal) == (10_000_000, 300_000)
    assert spec.adapter_sizes == (1, 2, 4, 8, 16) and spec.max_file_bytes == 2**30
    assert spec.regions == {"us-central1", "europe-west4"} and spec.cmek is False
    assert (spec.validation_share_above, spec.max_validation_share) == (1000, 0.3)
    assert not spec.lifecycle.preview and spec.lifecycle.released is not None
    assert spec.media["document"].max_per_example == 4
    # No video count: the video tuning page's own Gemini 3 example holds two videos (see "disagreements").
    assert spec.media["video"].max_per_example is None
    assert spec.part_media_resolution and spec.function_calling


def test_function_calling_is_refused_where_vertex_refuses_it() -> None:
    # python-aiplatform#6127: 2.0 Flash and Flash-Lite tune the function-calling dataset, 2.5 models refuse it.
    assert [name for name in registry().names() if name.startswith("gemini-2.") and model(name).function_calling] == [
        "gemini-2.0-flash-001",
        "gemini-2.0-flash-lite-001",
    ]
    assert "gemini-2.5-flash" not in registry().function_calling_models()
    assert "gemini-2.0-flash-001" not in registry().function_calling_models(TODAY)  # retired
    for name in CURRENT:
        assert any(note.startswith("function calling:") for note in model(name).unconfirmed), name


def test_video_length_depends_on_the_media_resolution() -> None:
    video = model("gemini-2.5-flash").media["video"]
    assert video.max_per_example == 1
    assert (video.seconds_allowed("MEDIA_RESOLUTION_LOW"), video.seconds_allowed("MEDIA_RESOLUTION_HIGH")) == (
        1200,
        300,
    )
    assert video.seconds_allowed("") == 300
    assert model("gemini-2.0-flash-001").media["document"].max_per_example == 4


def test_retired_models_keep_their_own_limits() -> None:
    assert model("gemini-2.5-pro").adapter_sizes == (1, 2, 4, 8)
    assert model("gemini-1.0-pro-002").format == "messages" and not model("gemini-1.0-pro-002").multimodal
    assert (model("gemini-1.5-pro-002").adapter_sizes, model("gemini-1.5-pro-002").default_adapter_size) == ((1, 4), 4)
    for name in ("gemini-1.0-pro-002", "gemini-1.5-pro-002", "gemini-1.5-flash-002"):
        assert (model(name).max_tokens_per_example, model(name).max_validation_examples) == (32_000, 256)


def test_aliases_resolve_case_insensitively_and_unknown_names_do_not() -> None:
    assert get_model("gemini-2.0-flash") == model("gemini-2.0-flash-001")
    assert get_model("GEMINI-2.0-FLASH-LITE") == model("gemini-2.0-flash-lite-001")
    assert get_model("gemini-9") is None


@pytest.mark.parametrize("name", sorted(SEEDS | {"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"}))
def test_retired_models_keep_their_rules_dates_and_a_tunable_successor(name: str) -> None:
    spec = model(name)
    life = spec.lifecycle
    assert life.released and life.retires and life.replacement and life.retires < TODAY
    assert spec.status(TODAY) is ModelStatus.RETIRED
    successor = registry().successor(spec, TODAY)
    assert successor is not None and successor.name in CURRENT
    assert successor.name in spec.closed_message(TODAY)


def test_status_moves_from_available_to_tuning_closed_to_retired() -> None:
    spec = model("gemini-2.5-flash")
    retires = spec.lifecycle.retires
    assert retires == date(2026, 10, 16)  # the stricter of the two dates Google's pages give
    closes = spec.lifecycle.tuning_closes
    assert closes == retires - timedelta(days=30)
    assert spec.status(closes - timedelta(days=1)) is ModelStatus.AVAILABLE
    assert spec.status(closes) is ModelStatus.TUNING_CLOSED
    assert spec.status(retires - timedelta(days=1)) is ModelStatus.TUNING_CLOSED
    assert spec.status(retires) is ModelStatus.RETIRED
    assert model("gemini-3.5-flash").status(date(2030, 1, 1)) is ModelStatus.AVAILABLE  # no date announced


def test_the_default_model_is_ga_and_open_for_tuning() -> None:
    spec = model(DEFAULT_MODEL)
    assert spec.status(TODAY) is ModelStatus.AVAILABLE and not spec.lifecycle.preview
    assert setting_default("TUNEDROP_BASE_MODEL") == DEFAULT_MODEL


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


def _lines(spec: ModelSpec, count: int) -> io.BytesIO:
    return io.BytesIO((json.dumps(good(spec)).encode() + b"\n") * count)


def _validation_codes(name: str, train: int, validation: int) -> list[tuple[int, str]]:
    spec = model(name)
    report = validate_dataset(
        _lines(spec, train), file=FILE, model=name, validation=_lines(spec, validation), validation_file="v"
    )
    return [(i.line, i.code) for i in report.issues if i.code == "validation_too_large"]


@pytest.mark.parametrize("name", MODELS)
def test_validation_set_limit(name: str) -> None:
    spec = model(name)
    limit = spec.max_validation_examples
    share = spec.max_validation_share
    # Enough training examples that only the absolute limit can apply (copies are warnings, not errors).
    train = max(spec.min_examples, math.ceil(limit / share) if share else 1)
    assert _validation_codes(name, train, limit) == []
    assert _validation_codes(name, train, limit + 1) == [(0, "validation_too_large")]


@pytest.mark.parametrize("name", [n for n in MODELS if model(n).max_validation_share is not None])
def test_validation_share_of_training(name: str) -> None:
    spec = model(name)
    above, share = spec.validation_share_above, spec.max_validation_share
    assert above is not None and share is not None
    # Up to `above` validation examples, any training size will do.
    assert _validation_codes(name, 1, above) == []
    # Beyond it, at most `share` of the training examples (6,668 training examples take 2,000 at 30%).
    train = math.ceil(above / share) * 2
    most = int(share * train)
    assert most > above
    assert _validation_codes(name, train, most) == []
    assert _validation_codes(name, train, most + 1) == [(0, "validation_too_large")]


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
    # The count rule at both boundaries (streaming ten million lines per model would take minutes) ...
    for most, multimodal in ((spec.max_examples_text, False), (spec.max_examples_multimodal, True)):
        at = ValidationReport(file=FILE)
        check_example_count(at, spec, most, multimodal=multimodal)
        assert at.valid
        over = ValidationReport(file=FILE)
        check_example_count(over, spec, most + 1, multimodal=multimodal)
        assert [(i.line, i.code) for i in over.issues] == [(0, "too_many_examples")]


def _one_model_per_multimodal_limit() -> list[str]:
    by_limit: dict[int, str] = {}
    for name in [DEFAULT_MODEL, *MODELS]:
        limit = model(name).max_examples_multimodal
        if limit is not None:
            by_limit.setdefault(limit, name)
    return sorted(by_limit.values())


@pytest.mark.parametrize("name", _one_model_per_multimodal_limit())
def test_the_validator_applies_the_count_rule_while_streaming(name: str) -> None:
    # The rule is one code path for every model (checked at both boundaries above); streaming
    # 300,000 lines twice costs seconds, so it runs once per distinct limit.
    spec = model(name)
    assert spec.max_examples_multimodal is not None
    media = json.dumps(example({"role": "user", "parts": [file_part()]}, turn("model", "ok"))).encode() + b"\n"
    report = validate_dataset(_repeat(media, spec.max_examples_multimodal), file=FILE, model=name)
    assert report.valid
    report = validate_dataset(_repeat(media, spec.max_examples_multimodal + 1), file=FILE, model=name)
    assert [(i.line, i.code) for i in report.issues] == [(0, "too_many_examples")]
