"""Names and messages from uploads cannot drive the operator's terminal or add markup to reports."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared import bootstrap, cli
from shared.jobs import Job, JobState, new_job
from shared.text import printable
from shared.validation import Issue, ValidationReport, render_markdown, validate_dataset
from tests.fakes import make_harness

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

# Colour, carriage return, bell, a right-to-left override, a link, HTML, a pipe, a newline, backticks.
HOSTILE = "\x1b[31mred\r\x07evil\u202elmth.jsonl [x](javascript:alert(1)) <script>alert(1)</script> a|b\nc `tick`"

CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
UNSAFE = {chr(code) for code in (*CONTROLS, *BIDI)}
# HOSTILE as Markdown text: controls shown as escapes, then markup and HTML escaped.
HOSTILE_MARKDOWN = (
    r"\\x1b\[31mred\\r\\x07evil\\u202elmth.jsonl \[x\](javascript:alert(1)) "
    r"&lt;script&gt;alert(1)&lt;/script&gt; a\|b\\nc \`tick\`"
)


def unsafe_characters(text: str) -> set[str]:
    """Controls and bidi characters in `text`, ignoring the newlines that end its lines."""
    return {char for char in text if char in UNSAFE and char != "\n"}


def uploaded_job(job_id: str, name: str, base_model: str) -> Job:
    """A job just made from the upload `name` (under incoming/ in bucket "ds")."""
    return new_job(
        job_id=job_id, bucket="ds", object_name=f"incoming/{name}", generation="1", base_model=base_model, now=NOW
    )


def hostile_job(**changes: Any) -> Job:
    job = uploaded_job("red-evil-0123456789ab", HOSTILE, HOSTILE)
    return job.moved_to(JobState.REJECTED, NOW, f"invalid dataset: {HOSTILE}", error={"message": HOSTILE}, **changes)


# -- printable ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [*CONTROLS, *BIDI], ids=lambda code: f"U+{code:04X}")
def test_printable_shows_each_control_and_bidi_character_as_a_visible_escape(code: int) -> None:
    shown = printable(f"a{chr(code)}b")
    assert not unsafe_characters(shown) and "\n" not in shown
    assert shown.startswith("a\\") and shown.endswith("b") and len(shown) > 3


def test_printable_uses_familiar_escapes() -> None:
    assert printable("\x1b[31m\r\n\t\x07\u202e\x9b") == "\\x1b[31m\\r\\n\\t\\x07\\u202e\\x9b"


def test_printable_leaves_ordinary_text_alone() -> None:
    text = "gs://ds/incoming/données été — 日本語 \\x1b (q&a) [ok].jsonl"
    assert printable(text) == text


def test_printable_truncates_without_splitting_an_escape_and_says_how_much_was_cut() -> None:
    assert printable("abcdefghij", 9) == "abcdefghi… (1 more character)"
    assert printable("abcdef\x1bxyz", 8) == "abcdef… (4 more characters)"
    assert printable("abcdef\x1bxyz", 10) == "abcdef\\x1b… (3 more characters)"
    assert printable("short", 5) == "short"


def test_printable_escapes_lone_surrogates_so_the_text_encodes_as_utf8() -> None:
    assert printable("a\ud800b").encode() == b"a\\ud800b"


# -- tunedrop jobs / tunedrop job --------------------------------------------------------------


def test_jobs_table_shows_hostile_names_escaped_one_row_per_job() -> None:
    plain = uploaded_job("plain-0123456789ab", "plain.jsonl", "gemini-2.5-flash")
    lines = cli.jobs_table([hostile_job(), plain])
    assert len(lines) == 3, "a newline in a name must not start a new row"
    assert not unsafe_characters("\n".join(lines))
    assert "\\x1b[31mred\\r\\x07evil\\u202elmth.jsonl" in lines[1]
    # The CREATED column starts at the same place in every row: escapes are counted at their printed width.
    created = [line.index("CREATED") if i == 0 else line.index("2026-03-02") for i, line in enumerate(lines)]
    assert len(set(created)) == 1
    assert lines[2].endswith("gs://ds/incoming/plain.jsonl")


def test_jobs_table_cuts_a_very_long_name_so_the_columns_stay_usable() -> None:
    long_model = "m" * 5_000
    (_, row) = cli.jobs_table([hostile_job(base_model=long_model)])
    assert len(row) < 400
    assert "… (4,900 more characters)" in row


def test_job_details_escape_every_field_and_history_reason() -> None:
    lines = cli.job_details(hostile_job(report_uri=f"gs://ds/reports/{HOSTILE}.md"))
    text = "\n".join(lines)
    assert not unsafe_characters(text)
    assert len(lines) == 1 + 4 + 1 + 2, "header, dataset/base model/report/error, 'history:', two entries"
    assert lines[2].startswith("  base model   \\x1b[31mred\\r\\x07evil\\u202e")
    assert lines[-1].endswith(f"invalid dataset: {printable(HOSTILE)}")


@pytest.fixture
def app_with_hostile_job(monkeypatch: pytest.MonkeyPatch) -> Iterator[Job]:
    # A project is set, so the CLI does not read the local stack's settings.
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    harness = make_harness()
    job = hostile_job()
    harness.store.put(job)
    bootstrap.set_app(harness.app)
    try:
        yield job
    finally:
        bootstrap.set_app(None)


def _run_cli(*argv: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(argv))
    assert exit_info.value.code == 0


def test_tunedrop_job_prints_escaped_text(app_with_hostile_job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    _run_cli("job", app_with_hostile_job.job_id)
    out = capsys.readouterr().out
    assert not unsafe_characters(out)
    assert f"  dataset      gs://ds/incoming/{printable(HOSTILE)}\n" in out


def test_tunedrop_job_json_still_round_trips_the_original_text(
    app_with_hostile_job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    _run_cli("job", app_with_hostile_job.job_id, "--json")
    out = capsys.readouterr().out
    assert out.isascii(), "json.dumps escapes every control and non-ASCII character, as before"
    assert json.loads(out)["object_name"] == f"incoming/{HOSTILE}"


# -- Markdown reports --------------------------------------------------------------------------


def _cells(row: str) -> list[str]:
    """A GFM table row's cells, split the way cmark-gfm does: a backslash escapes the next punctuation."""
    cells: list[str] = []
    current = ""
    chars = iter(row.strip().removeprefix("|").removesuffix("|"))
    for char in chars:
        if char == "\\":
            current += char + next(chars, "")
        elif char == "|":
            cells.append(current.strip())
            current = ""
        else:
            current += char
    return [*cells, current.strip()]


def _code_span(text: str) -> str:
    """The content of the code span `text` starts with (CommonMark: closed by a run of equal length)."""
    fence = re.match(r"`+", text)
    assert fence, f"no code span at {text!r}"
    closing = re.compile(rf"(?<!`){fence.group()}(?!`)")
    end = closing.search(text, fence.end())
    assert end, f"code span never closes in {text!r}"
    content = text[fence.end() : end.start()]
    return content[1:-1] if content.startswith(" ") and content.endswith(" ") and content.strip() else content


def _unescaped(text: str, chars: str) -> list[str]:
    """Characters of `chars` in Markdown text that no backslash escapes."""
    return re.findall(rf"(?<!\\)(?:\\\\)*([{re.escape(chars)}])", text)


def hostile_report() -> ValidationReport:
    report = ValidationReport(
        file=f"gs://ds/incoming/{HOSTILE}",
        validation_file=f"gs://ds/incoming/{HOSTILE}.val",
        model=HOSTILE,
        hyper_parameters={HOSTILE: HOSTILE},
        notes=[f"- {HOSTILE}", f"1. {HOSTILE}"],
        cost={"training_tokens": 10, "epochs": 1, "billable_tokens": 10, "price_note": f"+{HOSTILE}"},
    )
    report.add(Issue(3, "bad_role", f'Role "{HOSTILE}" is not allowed.', f"$.contents[0].{HOSTILE}", HOSTILE))
    report.warn(Issue(4, "unknown_field", f"Field {HOSTILE} is ignored.", "$.``odd`` key", "gs://ds/a|b.jsonl"))
    return report


def test_markdown_report_has_no_control_characters() -> None:
    text = render_markdown(hostile_report())
    assert not unsafe_characters(text)
    assert "\\x1b[31mred" in text and "\\u202e" in text


def test_markdown_report_tables_keep_their_columns() -> None:
    lines = render_markdown(hostile_report()).splitlines()
    tables: list[list[str]] = []
    for previous, line in zip(["", *lines], lines, strict=False):
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
    assert [len(table) for table in tables] == [3, 3, 3], "counts, then one error row and one warning row"
    for table in tables:
        assert {len(_cells(row)) for row in table} == {len(_cells(table[0]))}
    error_row, warning_row = tables[1][2], tables[2][2]
    assert _cells(error_row) == [
        HOSTILE_MARKDOWN,
        "3",
        "`bad_role`",
        rf"$.contents\[0\].{HOSTILE_MARKDOWN}",
        rf'Role "{HOSTILE_MARKDOWN}" is not allowed.',
    ]
    assert _cells(warning_row)[0] == r"gs://ds/a\|b.jsonl"
    assert _code_span(_cells(warning_row)[3]) == "$.``odd`` key"


def test_markdown_report_escapes_links_html_and_emphasis() -> None:
    text = render_markdown(hostile_report())
    outside_code = re.sub(r"(?<![\\`])(`+)(?!`).*?(?<!`)\1(?!`)", "", text)
    # Inside a code span `<script>` is literal text (renderers escape it); outside, it must be an entity.
    assert "<script" not in outside_code and "&lt;script&gt;" in outside_code
    assert "[x](javascript" not in outside_code and HOSTILE_MARKDOWN in outside_code
    user_text = "\n".join(line for line in outside_code.splitlines() if "alert" in line)
    assert not _unescaped(user_text, "[]`*_#~<>")


def test_markdown_code_spans_hold_backticks_without_breaking() -> None:
    lines = render_markdown(hostile_report()).splitlines()
    training = next(line for line in lines if line.startswith("- Training file: "))
    assert _code_span(training.removeprefix("- Training file: ")) == f"gs://ds/incoming/{printable(HOSTILE)}"
    model = next(line for line in lines if line.startswith("- Base model: "))
    assert _code_span(model.removeprefix("- Base model: ")) == printable(HOSTILE)
    assert _code_span("`` a`b ``") == "a`b" and _code_span("``` `` ```") == "``"


def test_markdown_notes_cannot_open_nested_lists() -> None:
    lines = render_markdown(hostile_report()).splitlines()
    notes = lines.index("## Notes")
    assert lines[notes + 2 : notes + 4] == [f"- \\- {HOSTILE_MARKDOWN}", f"- 1\\. {HOSTILE_MARKDOWN}"]
    assert f"- \\+{HOSTILE_MARKDOWN}" in lines


def test_markdown_report_of_a_lone_surrogate_encodes_as_utf8() -> None:
    dataset = b'{"contents": [{"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [{"text": "a"}]}]'
    report = validate_dataset(
        io.BytesIO(dataset + b', "\\ud800": 1}\n'), file="gs://ds/a.jsonl", model="gemini-2.5-flash"
    )
    assert report.warnings, "the unknown field is reported"
    assert "\\ud800" in render_markdown(report).encode().decode()


def test_uploaded_hostile_name_reaches_the_stored_report_escaped() -> None:
    harness = make_harness()
    job_id = harness.upload(f"{harness.settings.incoming_prefix}{HOSTILE}.jsonl")
    report_json = harness.job(job_id).report_uri.removeprefix(f"gs://{harness.settings.bucket}/")
    stored = harness.blobs.read(harness.settings.bucket, report_json.removesuffix(".json") + ".md").decode()
    assert not unsafe_characters(stored)
    training = next(line for line in stored.splitlines() if line.startswith("- Training file: "))
    assert _code_span(training.removeprefix("- Training file: ")) == f"gs://ds/incoming/{printable(HOSTILE)}.jsonl"


def test_validate_json_output_carries_no_raw_controls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shared.cli import main as cli_main

    hostile = tmp_path / "hostile.jsonl"
    hostile.write_text('{"contents": [{"role": "\u202euser\x85", "parts": [{"text": "x"}]}]}\n', encoding="utf-8")
    with pytest.raises(SystemExit):
        cli_main(["validate", str(hostile), "--json", "--no-progress"])
    out = capsys.readouterr().out
    assert "\u202e" not in out and "\x85" not in out
    assert "\\u202e" in out
