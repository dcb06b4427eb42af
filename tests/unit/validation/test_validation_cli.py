"""`tunedrop validate` through the CLI's main(): exit status, JSON report, lines of every error kind."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from shared.cli import main
from shared.validation.cli import PROGRESS_MIN_BYTES, progress_bar
from shared.validation.codes import CODES
from shared.validation.registry import registry

DATASETS = Path(__file__).resolve().parents[2] / "fixtures" / "datasets"
EVERY_ERROR = DATASETS / "every-error.jsonl"
EVERY_ERROR_VALIDATION = DATASETS / "every-error-validation.jsonl"

# every-error.jsonl holds one error of every line-level kind, each on its own line (see the file).
EXPECTED_TRAIN = {
    2: "empty_line",
    3: "not_utf8",
    4: "not_json",
    5: "trailing_data",
    6: "not_object",
    7: "missing_contents",
    8: "bad_turn",
    9: "bad_role",
    10: "role_order",
    11: "last_turn_not_model",
    12: "missing_parts",
    13: "bad_part",
    14: "bad_text",
    15: "bad_system_instruction",
    16: "bad_file_data",
    17: "unsupported_mime_type",
    18: "bad_file_uri",
    19: "too_many_media",
    21: "duplicate_field",
}
# Line 20 is over gemini-1.5-flash-002's token bound; without a token counter its length is not
# measured, so the CLI warns instead of rejecting it.
UNMEASURED_TRAIN_LINE = 20


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", *args])
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def as_json(out: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(out)
    return doc


def every_error_run(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = validate(
        capsys,
        str(EVERY_ERROR),
        "--validation",
        str(EVERY_ERROR_VALIDATION),
        "--model",
        "gemini-1.5-flash-002",
        "--epochs",
        "0",
        "--adapter-size",
        "2",
        "--learning-rate-multiplier",
        "-1",
        "--region",
        "mars-west1",
        "--on",
        "2025-01-01",  # while the model could still be tuned: this test is about the data's errors
        "--json",
        *options,
    )
    return code, as_json(out)


def assert_severities_match_the_codes_table(doc: dict[str, Any], *, strict: bool) -> None:
    """Each code is reported as an error or a warning as shared/validation/codes.py declares it."""
    assert all(CODES[e["code"]].is_error(strict=strict) for e in doc["errors"])
    assert not any(CODES[w["code"]].is_error(strict=strict) for w in doc["warnings"])


def test_every_error_kind_at_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = every_error_run(capsys)
    assert code == 1
    assert doc["valid"] is False
    assert doc["example_count"] == 17  # lines that are JSON objects
    errors = doc["errors"]
    assert doc["error_count"] == len(errors) == 4 + len(EXPECTED_TRAIN) + 1
    train = {e["line"]: e["code"] for e in errors if e.get("file") == str(EVERY_ERROR)}
    assert train == EXPECTED_TRAIN
    validation = [(e["line"], e["code"]) for e in errors if e.get("file") == str(EVERY_ERROR_VALIDATION)]
    assert validation == [(2, "not_json")]
    dataset = {e["code"] for e in errors if e["line"] == 0}
    assert dataset == {"bad_epochs", "bad_adapter_size", "bad_learning_rate_multiplier", "unsupported_region"}
    assert all({"line", "code", "message"} <= set(e) for e in errors)
    # Hygiene findings are warnings unless --strict: Vertex AI accepts a duplicate or an overlap.
    assert [(w["line"], w["code"]) for w in doc["warnings"]] == [
        (UNMEASURED_TRAIN_LINE, "may_exceed_token_limit"),
        (22, "duplicate_example"),
        (1, "train_validation_overlap"),
    ]
    assert "strict" not in doc
    assert_severities_match_the_codes_table(doc, strict=False)


@pytest.mark.parametrize("how", ["option", "setting"])
def test_strict_makes_duplicates_and_overlaps_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "setting":
        monkeypatch.setenv("TUNEDROP_STRICT_VALIDATION", "true")
    code, doc = every_error_run(capsys, *(["--strict"] if how == "option" else []))
    assert code == 1 and doc["strict"] is True
    errors = [(e["line"], e["code"]) for e in doc["errors"]]
    assert (22, "duplicate_example") in errors and (1, "train_validation_overlap") in errors
    assert [(w["line"], w["code"]) for w in doc["warnings"]] == [(UNMEASURED_TRAIN_LINE, "may_exceed_token_limit")]
    assert_severities_match_the_codes_table(doc, strict=True)


def test_a_valid_file_exits_zero_with_a_readable_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = validate(capsys, str(DATASETS / "valid.jsonl"))
    assert code == 0
    assert out.startswith("# Dataset validation: ✅ valid")
    assert "Tokens per example" in out
    assert "validating" not in err  # no progress bar when stderr is not a terminal


def test_json_top_level_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = validate(
        capsys, str(DATASETS / "valid.jsonl"), "--json", "--model", "gemini-2.0-flash", "--on", "2026-01-01"
    )
    doc = as_json(out)
    assert code == 0
    assert (doc["valid"], doc["example_count"], doc["error_count"], doc["errors"]) == (True, 3, 0, [])
    assert doc["model"] == "gemini-2.0-flash-001"
    assert doc["stats"]["multimodal_examples"] == 1


@pytest.mark.parametrize("model", registry().tunable(datetime.now(UTC).date()))
def test_every_model_open_for_tuning_accepts_a_valid_file(capsys: pytest.CaptureFixture[str], model: str) -> None:
    code, out, _ = validate(capsys, str(DATASETS / "valid.jsonl"), "--json", "--model", model)
    doc = as_json(out)
    assert (code, doc["valid"], doc["model"]) == (0, True, model)
    assert "model_retiring" not in doc["warning_counts"]


@pytest.mark.parametrize(
    "model", ["gemini-1.0-pro-002", "gemini-1.5-flash-002", "gemini-2.0-flash-001", "gemini-2.5-pro"]
)
def test_a_retired_model_is_refused_naming_what_to_use_instead(capsys: pytest.CaptureFixture[str], model: str) -> None:
    code, out, _ = validate(capsys, str(DATASETS / "valid.jsonl"), "--json", "--model", model, "--on", "2026-11-29")
    doc = as_json(out)
    assert code == 1
    retired = [e for e in doc["errors"] if e["code"] == "model_retired"]
    assert len(retired) == 1 and retired[0]["line"] == 0
    successor = registry().successor(registry().models[model], date(2026, 11, 29))
    assert successor is not None and f"Use {successor.name} instead" in retired[0]["message"]
    assert doc["model"] == model  # the header names the model asked for


def test_lifecycle_as_of_a_day_tuning_closed_then_retiring_warning(capsys: pytest.CaptureFixture[str]) -> None:
    train = str(DATASETS / "valid.jsonl")
    code, out, _ = validate(capsys, train, "--json", "--model", "gemini-2.5-flash", "--on", "2026-09-20")
    assert code == 1 and [e["code"] for e in as_json(out)["errors"]] == ["model_tuning_closed"]
    code, out, _ = validate(capsys, train, "--json", "--model", "gemini-2.5-flash", "--on", "2026-08-20")
    doc = as_json(out)
    assert code == 0 and doc["warning_counts"] == {"model_retiring": 1}
    assert "gemini-3.5-flash-lite" in doc["warnings"][0]["message"]
    code, out, _ = validate(capsys, train, "--json", "--model", "gemini-2.5-flash", "--on", "2026-08-15")
    assert code == 0 and "model_retiring" not in as_json(out)["warning_counts"]  # 32 days before it closes


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--epochs", "many", "x.jsonl"],
        ["does-not-exist.jsonl"],
        ["gs://only-a-bucket"],
        ["--count-tokens", "x.jsonl"],
    ],
)
def test_usage_errors_exit_two(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    code, out, err = validate(capsys, *args)
    assert code == 2
    assert out == ""
    assert err


def test_progress_bar_draws_on_a_terminal_and_clears_itself() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    total = PROGRESS_MIN_BYTES
    with progress_bar(total, console) as advance:
        assert advance is not None
        advance(total // 2)
        advance(total)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "validating" in text and "100%" in text
    assert text.rstrip(" ").endswith("\x1b[2K"), "the transient bar erases its line when done"


def test_no_progress_bar_without_a_console_or_for_a_small_file() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with progress_bar(PROGRESS_MIN_BYTES - 1, console) as advance:
        assert advance is None
    with progress_bar(PROGRESS_MIN_BYTES, None) as advance:
        assert advance is None
    assert console.file.getvalue() == ""  # type: ignore[attr-defined]


def test_a_missing_bucket_object_is_a_usage_error_without_a_network_call(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = validate(capsys, "gs://bucket-only/")
    assert (code, out) == (2, "")
    assert "gs://bucket-only/ is not a gs://bucket/object URI" in err


def test_a_bucket_object_is_read_through_the_blob_store_adapter(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.cloud import storage

    from shared.adapters import gcs_blobs
    from tests.fakes import InMemoryBlobStore

    bucket = InMemoryBlobStore()
    bucket.put("ds", "incoming/valid.jsonl", (DATASETS / "valid.jsonl").read_bytes())
    clients: list[str] = []

    def new_client() -> str:
        clients.append("client")
        return "client"

    monkeypatch.setattr(storage, "Client", new_client)
    monkeypatch.setattr(gcs_blobs, "GcsBlobStore", lambda client: bucket if client == "client" else None)

    code, out, _ = validate(capsys, "gs://ds/incoming/valid.jsonl", "--json")
    doc = as_json(out)
    assert (code, doc["valid"], doc["file"], doc["example_count"]) == (0, True, "gs://ds/incoming/valid.jsonl", 3)
    assert doc["byte_count"] == len((DATASETS / "valid.jsonl").read_bytes())
    code, out, err = validate(capsys, "gs://ds/incoming/missing.jsonl")
    assert (code, out) == (2, "") and "gs://ds/incoming/missing.jsonl does not exist" in err
    assert clients == ["client", "client"]
