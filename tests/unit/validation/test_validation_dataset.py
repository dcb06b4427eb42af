"""Dataset-level rules, token limits through the counter port, and gs:// checks through the URI port."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from shared.adapters.gcs_uris import GcsUriChecker
from shared.validation import SentencePieceTokenCounter, TokenCountUnavailable, engine, get_model, validate_dataset
from shared.validation.report import MAX_ISSUES_PER_CODE, Issue, ValidationReport
from shared.validation.tokens import CountingIncomplete
from shared.validation.uris import StoredObject, check_all, split_gs_uri
from tests.unit.validation.helpers import (
    FILE,
    GOOD,
    FakeCounter,
    body,
    codes,
    example,
    file_part,
    run,
    text_chars,
    turn,
    warnings,
)

VAL = "gs://ds/incoming/val.jsonl"


def spec(name: str = "gemini-2.5-flash", **changes: Any) -> Any:
    found = get_model(name)
    assert found is not None
    return dataclasses.replace(found, **changes)


def long_example(chars: int) -> dict[str, Any]:
    return example(turn("user", "x" * chars), turn("model", "ok"))


# ---- file and dataset sizes


def test_file_size_from_the_caller_or_counted() -> None:
    report = run(GOOD, model=spec(max_file_bytes=100))
    assert codes(report) == [(0, "file_too_large")]
    assert "GiB" in report.issues[0].message
    assert run(GOOD, file_size=2**30 + 1).counts == {"file_too_large": 1}
    assert run(GOOD, file_size=2**30).valid


def test_example_count_limits_depend_on_media() -> None:
    small = spec(max_examples_text=2, max_examples_multimodal=1)
    assert run(GOOD, GOOD, model=small).valid
    assert codes(run(GOOD, GOOD, GOOD, model=small)) == [(0, "too_many_examples")]
    media = example({"role": "user", "parts": [file_part()]}, turn("model", "a cat"))
    report = run(GOOD, media, model=small)
    assert codes(report) == [(0, "too_many_examples")] and "multimodal" in report.issues[0].message


def test_too_few_examples() -> None:
    assert codes(run(GOOD, model=spec(min_examples=2))) == [(0, "too_few_examples")]


@pytest.mark.parametrize("strict", [False, True])
def test_validation_set_size_overlap_and_labels(strict: bool) -> None:
    train = body(GOOD, example(turn("user", "a"), turn("model", "b")))
    validation = body(example(turn("user", "c"), turn("model", "d")), GOOD, b"oops", GOOD)
    report = validate_dataset(
        io.BytesIO(train),
        file=FILE,
        validation=io.BytesIO(validation),
        validation_file=VAL,
        model=spec(max_validation_examples=2),
        strict=strict,
    )
    # Vertex AI accepts an overlap or a duplicate: hygiene findings, errors only under strict validation.
    hygiene = [(VAL, 2, "train_validation_overlap"), (VAL, 4, "duplicate_example")]
    errors = [(VAL, 0, "validation_too_large"), (VAL, 3, "not_json")]
    assert [(i.file, i.line, i.code) for i in report.sorted_issues()] == sorted(
        errors + (hygiene if strict else []), key=lambda found: found[1]
    )
    assert [(w.file, w.line, w.code) for w in report.warnings] == ([] if strict else hygiene)
    assert report.validation_example_count == 3 and report.validation_byte_count == len(validation)
    doc = report.to_dict()
    assert doc["validation_file"] == VAL and all(e["file"] == VAL for e in doc["errors"])
    assert doc.get("strict", False) is strict


def test_an_overlap_alone_leaves_the_dataset_valid_unless_strict() -> None:
    def check(strict: bool) -> ValidationReport:
        return validate_dataset(
            io.BytesIO(body(GOOD)), file=FILE, validation=io.BytesIO(body(GOOD)), validation_file=VAL, strict=strict
        )

    lenient = check(strict=False)
    assert lenient.valid and [w.code for w in lenient.warnings] == ["train_validation_overlap"]
    assert [i.code for i in check(strict=True).issues] == ["train_validation_overlap"]


def test_an_empty_validation_file_is_an_error() -> None:
    report = validate_dataset(io.BytesIO(body(GOOD)), file=FILE, validation=io.BytesIO(b""), validation_file=VAL)
    assert [(i.file, i.code) for i in report.issues] == [(VAL, "empty_dataset")]


def test_duplicates_within_the_training_file_are_warnings() -> None:
    report = run(GOOD, GOOD, example(turn("user", "a"), turn("model", "b")), GOOD)
    assert report.valid
    assert warnings(report) == [(2, "duplicate_example"), (4, "duplicate_example")]


def test_unknown_model_is_reported_and_lines_are_still_checked() -> None:
    report = run(GOOD, b"{", model="gpt-4")
    assert codes(report) == [(0, "unknown_model"), (2, "not_json")]
    assert "gemini-2.5-flash" in report.issues[0].message
    assert report.notes


def test_model_names_resolve_aliases_and_resource_names() -> None:
    assert run(GOOD, model="gemini-2.0-flash").model == "gemini-2.0-flash-001"
    assert run(GOOD, model="projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro").model == (
        "gemini-2.5-pro"
    )


# ---- hyper-parameters and region


@pytest.mark.parametrize(
    ("hyper", "code"),
    [
        ({"epoch_count": 0}, "bad_epochs"),
        ({"epochCount": "three"}, "bad_epochs"),
        ({"epochs": 2.5}, "bad_epochs"),
        ({"adapter_size": 3}, "bad_adapter_size"),
        ({"adapterSize": "ADAPTER_SIZE_THIRTY_TWO"}, "bad_adapter_size"),
        ({"learning_rate_multiplier": 0}, "bad_learning_rate_multiplier"),
        ({"learningRateMultiplier": "fast"}, "bad_learning_rate_multiplier"),
        ({"learning_rate_multiplier": float("nan")}, "bad_learning_rate_multiplier"),
    ],
)
def test_bad_hyper_parameters(hyper: dict[str, Any], code: str) -> None:
    report = run(GOOD, hyper_parameters=hyper)
    assert codes(report) == [(0, code)]
    assert report.issues[0].path.startswith("hyper_parameters.")


def test_good_hyper_parameters_and_named_adapter_sizes() -> None:
    hyper = {"epoch_count": 3, "adapter_size": "ADAPTER_SIZE_FOUR", "learning_rate_multiplier": 0.5, "batch": 8}
    report = run(GOOD, hyper_parameters=hyper)
    assert report.valid
    assert warnings(report) == [(0, "unknown_hyper_parameter")]
    assert report.cost["epochs"] == 3


def test_region() -> None:
    assert run(GOOD, region="us-central1").valid
    assert codes(run(GOOD, region="mars-west1")) == [(0, "unsupported_region")]


# ---- token limit


def test_short_lines_are_never_counted() -> None:
    counter = FakeCounter(text_chars)
    report = run(*[GOOD] * 5, token_counter=counter)
    sample_calls = len(counter.calls)
    assert report.valid and report.stats["exactly_counted_examples"] == 0
    assert sample_calls == 5  # only the cost sample, never the limit check


def test_escapes_make_a_line_long_but_the_text_bound_short() -> None:
    # 20,000 newlines: 40,000 bytes of JSON, 20,000 bytes of text: under the 32,000-token bound.
    counter = FakeCounter(text_chars)
    report = run(
        example(turn("user", "\n" * 20_000), turn("model", "ok")), model="gemini-1.5-flash-002", token_counter=counter
    )
    assert report.valid
    assert report.stats["exactly_counted_examples"] == 0


def test_over_the_bound_is_counted_exactly() -> None:
    counter = FakeCounter(lambda request: text_chars(request) // 10)
    report = run(GOOD, long_example(40_000), model="gemini-1.5-pro-002", token_counter=counter)
    assert report.valid  # 4,000 tokens
    assert report.stats["exactly_counted_examples"] == 1
    assert report.stats["tokens_per_example"]["max"] == 4_000


def test_over_the_limit_with_an_exact_count() -> None:
    counter = FakeCounter(lambda request: 32_001)
    report = run(GOOD, long_example(40_000), model="gemini-1.5-pro-002", token_counter=counter)
    assert codes(report) == [(2, "too_many_tokens")]
    assert "32,001 tokens (counted with fake)" in report.issues[0].message
    assert "32,000" in report.issues[0].message


def test_without_a_counter_the_bound_is_a_warning_or_raises() -> None:
    report = run(GOOD, long_example(40_000), model="gemini-1.5-pro-002")
    assert report.valid  # its length was never measured: not a reason to reject it
    assert warnings(report) == [(2, "may_exceed_token_limit")]
    message = report.warnings[0].message
    assert "upper bound is 40,0" in message and "no token counter" in message
    with pytest.raises(CountingIncomplete, match=r"line 2 of .*upper bound of 40,0"):
        run(GOOD, long_example(40_000), model="gemini-1.5-pro-002", unverified_length="raise")


def test_a_failing_counter_falls_back_to_the_next_one_and_is_noted() -> None:
    down = FakeCounter(lambda request: 1, name="down", fail=True)
    spare = FakeCounter(lambda request: 40_000, name="spare")
    report = run(long_example(40_000), long_example(40_001), model="gemini-1.5-pro-002", token_counter=[down, spare])
    assert codes(report) == [(1, "too_many_tokens"), (2, "too_many_tokens")]
    assert "counted with spare" in report.issues[0].message
    assert len(down.calls) == 1  # not asked again after it failed
    assert any("down was unavailable" in note for note in report.notes)


def test_media_estimates_are_added_when_the_counter_counts_text_only() -> None:
    text_only = FakeCounter(text_chars, counts_media=False)
    parts = [file_part(f"gs://b/{i}.png") for i in range(30)]
    # 30 images x 258 tokens = 7,740 estimated; with 25,000 characters the bound passes 32,000, but
    # only the estimate takes it there: a warning, also when asked to raise (asking again cannot help).
    line = example({"role": "user", "parts": [*parts, {"text": "y" * 25_000}]}, turn("model", "ok"))
    for unverified in ("warn", "raise"):
        report = run(line, model="gemini-1.5-flash-002", token_counter=text_only, unverified_length=unverified)
        assert report.valid and warnings(report) == [(1, "may_exceed_token_limit")]
        assert "fake counted 25,002 tokens of its text, which the 7,740 estimated" in report.warnings[0].message
    # The text alone over the limit is proof enough.
    line = example({"role": "user", "parts": [*parts, {"text": "y" * 32_001}]}, turn("model", "ok"))
    report = run(line, model="gemini-1.5-flash-002", token_counter=text_only)
    assert codes(report) == [(1, "too_many_tokens")]
    assert "39,743 tokens (counted with fake, 7,740 of them estimated for its media)" in report.issues[0].message


def test_sentencepiece_counter_is_optional() -> None:
    def missing(name: str) -> Any:
        raise ImportError(name)

    with pytest.raises(TokenCountUnavailable, match="not installed"):
        SentencePieceTokenCounter.load("gemini.spm", importer=missing)

    class Processor:
        def __init__(self, model_file: str) -> None:
            if model_file != "gemini.spm":
                raise OSError("no such file")

        def encode(self, text: str) -> list[int]:
            return [1] * len(text.split())

    class Module:
        SentencePieceProcessor = Processor

    counter = SentencePieceTokenCounter.load("gemini.spm", importer=lambda name: Module)
    request = {"contents": [turn("user", "one two three")], "systemInstruction": {"parts": [{"text": "four"}]}}
    assert counter.count(request, "gemini-2.5-flash") == 4
    with pytest.raises(TokenCountUnavailable, match="cannot load"):
        SentencePieceTokenCounter.load("other.spm", importer=lambda name: Module)


# ---- gs:// objects

MiB = 2**20


class FakeObjects:
    """An in-memory object store answering each gs:// URI's size; tracks calls and concurrency."""

    def __init__(
        self, sizes: Mapping[str, int] | Iterable[str] = (), *, broken: Iterable[str] = (), delay: float = 0.0
    ) -> None:
        # A bare list of URIs stands for small objects, when only their existence matters.
        self.sizes = dict(sizes) if isinstance(sizes, Mapping) else dict.fromkeys(sizes, 1024)
        self.broken = set(broken)
        self.delay = delay
        self.calls: list[str] = []
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def __call__(self, uri: str) -> StoredObject | None:
        with self._lock:
            self.calls.append(uri)
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if self.delay:
                time.sleep(self.delay)  # lets concurrent calls overlap; nothing is timed
            if uri in self.broken:
                raise PermissionError("403 forbidden")
            size = self.sizes.get(uri)
            return None if size is None else StoredObject(size_bytes=size)
        finally:
            with self._lock:
                self.active -= 1


def media_example(*uris: str, mime: str = "image/png") -> dict[str, Any]:
    return example({"role": "user", "parts": [file_part(u, mime) for u in uris]}, turn("model", "pictures"))


def test_missing_objects_are_reported_at_their_first_reference_and_each_uri_checked_once() -> None:
    objects = FakeObjects({"gs://b/1.png", "gs://b/2.png"})
    report = run(
        media_example("gs://b/1.png", "gs://b/2.png"),
        media_example("gs://b/3.png", "https://example.com/4.png"),
        media_example("gs://b/3.png", "gs://b/1.png"),
        uri_checker=objects,
    )
    assert codes(report) == [(2, "missing_file")]
    assert report.issues[0].path == "$.contents[0].parts[0]"
    assert "gs://b/3.png" in report.issues[0].message
    assert sorted(objects.calls) == ["gs://b/1.png", "gs://b/2.png", "gs://b/3.png"]


def test_a_check_that_fails_is_a_warning() -> None:
    report = run(media_example("gs://b/secret.png"), uri_checker=FakeObjects(broken={"gs://b/secret.png"}))
    assert report.valid
    assert warnings(report) == [(1, "uri_check_failed")]
    assert "PermissionError" in report.warnings[0].message


def test_a_checker_answering_a_bool_is_a_failed_check_not_a_size() -> None:
    report = run(media_example("gs://b/cat.png"), uri_checker=lambda uri: True)
    assert report.valid
    assert warnings(report) == [(1, "uri_check_failed")]
    assert "TypeError" in report.warnings[0].message


# (MIME type, its media kind, the limit gemini-2.5-flash's registry entry gives for that kind)
LIMITS = [
    ("image/png", "image", 20 * MiB),
    ("application/pdf", "document", 20 * MiB),
    ("video/mp4", "video", 100 * MiB),
    ("audio/mpeg", "audio", 100 * MiB),
]


@pytest.mark.parametrize("fast_tiers", [True, False], ids=["fast tiers", "precise tier"])
@pytest.mark.parametrize(("mime", "kind", "limit"), LIMITS, ids=[m for m, _, _ in LIMITS])
def test_a_file_over_its_media_kinds_limit_is_an_error(
    mime: str, kind: str, limit: int, fast_tiers: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "FAST_TIERS", fast_tiers)
    sizes = {"gs://b/under": limit - 1, "gs://b/at": limit, "gs://b/over": limit + 1}
    report = run(*(media_example(uri, mime=mime) for uri in sizes), uri_checker=FakeObjects(sizes))
    assert codes(report) == [(3, "media_file_too_large")]
    issue = report.issues[0]
    assert issue.path == "$.contents[0].parts[0]"
    assert "gs://b/over" in issue.message and f"{limit + 1:,} bytes" in issue.message
    assert f"gemini-2.5-flash takes {kind} files of at most {limit // MiB} MB ({limit:,} bytes)" in issue.message


def test_the_size_message_says_what_to_do_for_a_video() -> None:
    report = run(
        media_example("gs://b/long.mp4", mime="video/mp4"), uri_checker=FakeObjects({"gs://b/long.mp4": 150 * MiB})
    )
    assert codes(report) == [(1, "media_file_too_large")]
    message = report.issues[0].message
    assert "150 MB" in message and "at most 100 MB" in message
    assert "split the video" in message


def test_sizes_follow_the_model_and_a_kind_without_a_limit_is_not_checked() -> None:
    uri = "gs://b/photo.png"
    objects = FakeObjects({uri: 30 * MiB})
    assert codes(run(media_example(uri), uri_checker=objects)) == [(1, "media_file_too_large")]
    base = spec()
    unlimited = spec(media={**base.media, "image": dataclasses.replace(base.media["image"], max_file_bytes=None)})
    assert run(media_example(uri), model=unlimited, uri_checker=objects).valid
    larger = spec(media={**base.media, "image": dataclasses.replace(base.media["image"], max_file_bytes=40 * MiB)})
    assert run(media_example(uri), model=larger, uri_checker=objects).valid


def test_a_large_file_used_by_many_examples_is_checked_and_reported_once() -> None:
    objects = FakeObjects({"gs://b/big.png": 21 * MiB, "gs://b/small.png": MiB})
    report = run(
        media_example("gs://b/small.png"),
        media_example("gs://b/big.png", "gs://b/small.png"),
        media_example("gs://b/big.png"),
        uri_checker=objects,
    )
    assert codes(report) == [(2, "media_file_too_large")]
    assert sorted(objects.calls) == ["gs://b/big.png", "gs://b/small.png"]


def test_checks_run_concurrently_but_bounded() -> None:
    objects = FakeObjects({f"gs://b/{i}" for i in range(40)}, delay=0.01)
    results = check_all([f"gs://b/{i}" for i in range(40)] * 2, objects, max_workers=4)
    assert len(results) == 40 and all(v == StoredObject(size_bytes=1024) for v in results.values())
    assert len(objects.calls) == 40
    assert 1 < objects.most_active <= 4


def test_gcs_checker_reads_the_size_with_one_metadata_request() -> None:
    requests: list[str] = []

    class Blob:
        def __init__(self, size: int | None) -> None:
            self.size = size

    class Bucket:
        def __init__(self, name: str) -> None:
            self.name = name

        def get_blob(self, name: str) -> Blob | None:
            requests.append(f"{self.name}/{name}")
            return {"b/dir/x.png": Blob(1234), "b/no-size": Blob(None)}.get(f"{self.name}/{name}")

    class Client:
        def bucket(self, name: str) -> Bucket:
            return Bucket(name)

    checker = GcsUriChecker(Client())
    assert checker("gs://b/dir/x.png") == StoredObject(size_bytes=1234)
    assert checker("gs://b/dir/y.png") is None
    assert checker("gs://only-bucket") is None
    assert requests == ["b/dir/x.png", "b/dir/y.png"]
    with pytest.raises(ValueError, match="no size"):
        checker("gs://b/no-size")
    assert split_gs_uri("gs://b/dir/x.png") == ("b", "dir/x.png")


# ---- the report


def test_issues_are_capped_per_code_but_all_counted() -> None:
    report = run(*([b"nope"] * (MAX_ISSUES_PER_CODE + 25)), b"\n")
    assert report.counts["not_json"] == MAX_ISSUES_PER_CODE + 25
    assert report.error_count == MAX_ISSUES_PER_CODE + 26
    assert len([i for i in report.issues if i.code == "not_json"]) == MAX_ISSUES_PER_CODE
    assert [i.line for i in report.issues if i.code == "empty_line"] == [MAX_ISSUES_PER_CODE + 26]


def test_report_document_is_sorted_and_serializable() -> None:
    report = ValidationReport(file="f")
    report.add(Issue(9, "b", "later"))
    report.add(Issue(0, "object_missing", "whole file"))
    report.add(Issue(2, "a", "earlier", path="$.x"))
    doc = report.to_dict()
    assert [e["line"] for e in doc["errors"]] == [0, 2, 9]
    assert doc["errors"][1] == {"line": 2, "code": "a", "message": "earlier", "path": "$.x"}
    assert [e["line"] for e in report.first_errors(limit=2)] == [0, 2]
    json.dumps(doc)


def test_summary_keeps_the_upload_service_keys() -> None:
    summary = run(GOOD, b"{").summary()
    assert {"valid", "file", "example_count", "byte_count", "error_count", "error_counts"} <= set(summary)
    assert summary["valid"] is False and summary["error_counts"] == {"not_json": 1}
    json.dumps(run(GOOD).to_dict())
