"""File-level diagnoses: a dataset in another tool's format is said once, with the fix and the command."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from shared.validation import ValidationReport, get_model, validate_dataset
from shared.validation.codes import CODES
from shared.validation.diagnosis import (
    HEAD_LINES,
    INPUT_OUTPUT,
    LEGACY_MESSAGES,
    OPENAI_CHAT,
    PRETTY_PRINTED,
    PROMPT_COMPLETION,
    Kind,
    converted_name,
    detect,
    example_kind,
    line_kind,
    read_head,
    spans_lines,
)
from shared.validation.registry import DEFAULT_MODEL, ModelSpec
from tests.unit.validation.helpers import body, example, turn

FOREIGN = Path(__file__).resolve().parents[2] / "fixtures" / "datasets" / "foreign"


def spec(name: str) -> ModelSpec:
    found = get_model(name)
    assert found is not None
    return found


CURRENT = spec(DEFAULT_MODEL)
LEGACY = spec("gemini-1.0-pro-002")


def validate(path: Path, model: str = DEFAULT_MODEL) -> ValidationReport:
    with path.open("rb") as handle:
        return validate_dataset(handle, file=path.name, model=model)


def file_issue(report: ValidationReport) -> dict[str, Any]:
    (issue,) = [i.to_dict() for i in report.issues if i.line == 0 and i.code in FORMAT_CODES]
    return issue


FORMAT_CODES = {f.code for f in (OPENAI_CHAT, LEGACY_MESSAGES, PROMPT_COMPLETION, INPUT_OUTPUT, PRETTY_PRINTED)}


def lines_of(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def test_every_diagnosis_code_is_in_the_codes_table() -> None:
    assert FORMAT_CODES - CODES.keys() == set()


# ---- one line's format


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b'{"contents": [{"role": "user", "parts": [{"text": "a"}]}]}', Kind.CONTENTS),
        (b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}', Kind.OPENAI),
        (b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}]}', Kind.OPENAI),
        (b'{"messages": [{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "1"}]}', Kind.OPENAI),
        (b'{"messages": [{"role": "system", "content": "s"}, {"role": "model", "content": "b"}]}', Kind.MESSAGES),
        (b'{"prompt": "a", "completion": "b"}', Kind.PROMPT_COMPLETION),
        (b'{"instruction": "i", "input": "a", "output": "b"}', Kind.INPUT_OUTPUT),
        (b'{"messages": "not a list"}', Kind.OTHER),
        (b'{"text": "a"}', Kind.OTHER),
        (b"{", Kind.UNREADABLE),
        (b'  "role": "user",', Kind.UNREADABLE),
        (b'[{"contents": []}]', Kind.UNREADABLE),
    ],
)
def test_line_kind(line: bytes, kind: str) -> None:
    assert line_kind(line) == kind
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return
    assert example_kind(value) == kind  # the converter's view of a decoded example agrees


def test_detect_needs_the_format_on_most_lines_and_knows_the_model() -> None:
    openai = b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n'
    gemini = body(example(turn("user", "a"), turn("model", "b"))).splitlines(keepends=True)[0]
    legacy = b'{"messages": [{"role": "user", "content": "a"}, {"role": "model", "content": "b"}]}\n'
    assert detect([openai] * 3, CURRENT) is OPENAI_CHAT
    on_legacy = detect([openai] * 3, LEGACY)  # said for the legacy model too
    assert on_legacy is not None and on_legacy.code == OPENAI_CHAT.code
    assert detect([openai, gemini, gemini], CURRENT) is None  # mostly Gemini: each line speaks for itself
    assert detect([legacy] * 2, CURRENT) is LEGACY_MESSAGES
    assert detect([legacy] * 2, LEGACY) is None  # that model's own format
    assert detect([gemini] * 5, CURRENT) is None
    assert detect([b"\n", b"  \n"], CURRENT) is None


def test_spans_lines_tells_a_pretty_printed_document_from_bad_json_lines() -> None:
    assert spans_lines([b"[\n", b"  {\n", b'    "contents": []\n'])  # cut off by the head: still spanning
    assert spans_lines([b"{\n", b'"a": 1\n', b"}\n"])
    assert not spans_lines([b'{"a": 1}\n', b'{"a": 2}\n'])
    assert not spans_lines([b'{"a": 1,,}\n', b"{\n"])  # broken on its first line
    assert not spans_lines([b"hello\n", b"world\n"])
    assert not spans_lines([b"[\n", b"[\n"])  # stray brackets: no example starts there
    assert not spans_lines([b"{\n", b'"\n'])


def test_read_head_leaves_every_source_readable_from_the_start() -> None:
    data = b"".join(b'{"n": %d}\n' % n for n in range(HEAD_LINES + 5))
    buffered = io.BufferedReader(io.BytesIO(data))
    head, lines = read_head(buffered)
    assert len(head) == HEAD_LINES and lines is buffered and buffered.read() == data
    seekable = io.BytesIO(data)
    head, lines = read_head(seekable)
    assert len(head) == HEAD_LINES and lines is seekable and seekable.read() == data
    as_list = data.splitlines(keepends=True)
    head, lines = read_head(as_list)
    assert head == as_list[:HEAD_LINES] and lines is as_list
    head, lines = read_head(iter(as_list))
    assert head == as_list[:HEAD_LINES] and list(lines) == as_list


# ---- the report: one issue per file, the per-line counts kept


def test_openai_chat_file_gets_one_diagnosis_naming_the_format_mapping_and_command() -> None:
    path = FOREIGN / "openai_chat.jsonl"
    report = validate(path)
    issue = file_issue(report)
    assert report.counts == {"openai_chat_format": 1}  # nothing per line
    assert report.warning_counts == {}
    assert issue["lines_affected"] == lines_of(path) and issue["first_line"] == 1
    assert issue["replaced_issues"]["missing_contents"] == lines_of(path)
    assert issue["command"] == "tunedrop convert openai_chat.jsonl openai_chat.gemini.jsonl --from openai"
    for said in ("OpenAI's chat", '"assistant" becomes "model"', '"systemInstruction"', '"parts"', "functionCall"):
        assert said in issue["message"], said
    assert issue["command"] in issue["message"]
    assert report.example_count == lines_of(path)  # the lines are still read and measured


def test_openai_file_for_the_legacy_model_makes_no_false_statements() -> None:
    path = FOREIGN / "openai_chat.jsonl"
    report = validate(path, "gemini-1.0-pro-002")
    issue = file_issue(report)
    assert issue["code"] == "openai_chat_format" and issue["lines_affected"] == lines_of(path)
    said = " ".join(i.message for i in (*report.issues, *report.warnings))
    # Before: 'The last message has role "user"' of an assistant message, and 'Message 4 repeats role "user"'.
    assert "last message has role" not in said and "repeats role" not in said
    assert 'rename role "assistant" to "model"' in issue["message"]
    assert {"bad_role", "last_turn_not_model"} & set(issue["replaced_issues"])
    assert set(report.counts) <= {"openai_chat_format", "too_few_examples", "model_retired", "model_tuning_closed"}


@pytest.mark.parametrize(
    ("name", "code", "source"),
    [
        ("legacy_messages.jsonl", "legacy_messages_format", "messages"),
        ("prompt_completion.jsonl", "prompt_completion_format", "prompt-completion"),
        ("input_output.jsonl", "input_output_format", "prompt-completion"),
        ("pretty_printed.json", "pretty_printed_json", "auto"),
    ],
)
def test_each_foreign_format_is_said_once(name: str, code: str, source: str) -> None:
    path = FOREIGN / name
    report = validate(path)
    issue = file_issue(report)
    assert report.counts == {code: 1}
    assert issue["convert_from"] == source and f"--from {source}" in issue["command"]
    assert issue["lines_affected"] == lines_of(path)
    assert sum(issue["replaced_issues"].values()) >= lines_of(path)


def test_input_output_advice_never_deletes_the_data() -> None:
    report = validate(FOREIGN / "input_output.jsonl")
    said = " ".join(i.message for i in (*report.issues, *report.warnings))
    assert "remove it" not in said
    assert file_issue(report)["replaced_issues"]["unknown_field"] >= 2 * lines_of(FOREIGN / "input_output.jsonl")


def test_pretty_printed_file_is_one_diagnosis_not_an_error_per_line() -> None:
    path = FOREIGN / "pretty_printed.json"
    report = validate(path)
    issue = file_issue(report)
    assert len(report.issues) == 1 and "not JSON Lines" in issue["message"]
    assert set(issue["replaced_issues"]) <= {"not_json", "trailing_data", "not_object", "empty_line"}


def test_lines_in_gemini_format_keep_their_own_issues_in_a_foreign_file() -> None:
    openai = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    bad_gemini = example(turn("user", "a"), turn("user", "b"))
    report = validate_dataset(io.BytesIO(body(openai, openai, openai, bad_gemini)), file="t.jsonl")
    assert report.counts["openai_chat_format"] == 1
    assert ("role_order", 4) in {(i.code, i.line) for i in report.issues}
    assert file_issue(report)["lines_affected"] == 3


def test_a_gemini_file_gets_no_diagnosis() -> None:
    good = example(turn("user", "a"), turn("model", "b"))
    report = validate_dataset(io.BytesIO(body(good, good)), file="t.jsonl")
    assert report.valid and not [i for i in report.issues if i.code in FORMAT_CODES]


def test_the_validation_file_is_diagnosed_with_its_name() -> None:
    good = example(turn("user", "a"), turn("model", "b"))
    pairs = [{"prompt": f"q{n}", "completion": f"a{n}"} for n in range(3)]
    report = validate_dataset(
        io.BytesIO(body(good)), file="t.jsonl", validation=io.BytesIO(body(*pairs)), validation_file="v.jsonl"
    )
    issue = file_issue(report)
    assert issue["code"] == "prompt_completion_format" and issue["file"] == "v.jsonl"
    assert issue["command"] == "tunedrop convert v.jsonl v.gemini.jsonl --from prompt-completion"


def test_the_suggested_output_of_an_uploaded_file_is_local() -> None:
    assert converted_name("data/train.jsonl") == "data/train.gemini.jsonl"
    assert converted_name("train") == "train.gemini.jsonl"
    # Written next to the upload, the converted file would be picked up and tuned before anyone read it.
    assert converted_name("gs://bucket/incoming/train.json") == "train.gemini.jsonl"


def test_a_strict_run_diverts_alike() -> None:
    report = validate_dataset(io.BytesIO((FOREIGN / "openai_chat.jsonl").read_bytes()), file="o.jsonl", strict=True)
    assert report.counts == {"openai_chat_format": 1}
