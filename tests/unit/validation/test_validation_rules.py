"""Every rule of the validator on small hand-written lines: code, 1-based line, JSON path, message."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from shared.validation import validate_dataset
from tests.unit.validation.helpers import (
    FILE,
    GOOD,
    LEGACY_GOOD,
    body,
    codes,
    example,
    file_part,
    run,
    turn,
    warnings,
)


def test_a_valid_file_counts_examples_and_bytes() -> None:
    data = body(GOOD) + body(GOOD).rstrip(b"\n") + b"\r\n" + body(example(turn("user", "x"), turn("model", "y")))[:-1]
    report = validate_dataset(io.BytesIO(data), file=FILE)  # CRLF and a last line without newline are fine
    assert report.valid and report.error_count == 0 and report.issues == []
    assert report.example_count == 3
    assert report.byte_count == len(data)
    assert warnings(report) == []


@pytest.mark.parametrize(
    ("bad", "code", "path"),
    [
        (b"\n", "empty_line", ""),
        (b"  \t\n", "empty_line", ""),
        (b'{"contents": ["\xff\xfe"]}', "not_utf8", ""),
        (b"{not json}", "not_json", ""),
        (b'{"contents": [1]', "not_json", ""),
        (b'{"contents": [{"role": NaN}]}', "not_json", ""),
        (b"\xef\xbb\xbf" + body(GOOD), "not_json", ""),
        (body(GOOD).rstrip() + b' {"a": 1}', "trailing_data", ""),
        (body(GOOD).rstrip() + b"]", "trailing_data", ""),
        (b"[1, 2]", "not_object", ""),
        (b'"text"', "not_object", ""),
        (b"42", "not_object", ""),
        (b"null", "not_object", ""),
        ({"contents": []}, "missing_contents", "$.contents"),
        ({"contents": {"role": "user"}}, "missing_contents", "$.contents"),
        ({}, "missing_contents", "$.contents"),
        (LEGACY_GOOD, "missing_contents", "$.contents"),
        ({"contents": [5, turn("model", "x")]}, "bad_turn", "$.contents[0]"),
        (example(turn("user", "a"), turn("assistant", "b")), "bad_role", "$.contents[1].role"),
        (example(turn("system", "a"), turn("model", "b")), "bad_role", "$.contents[0].role"),
        (  # an unset role is "user" (schema.UNSET_ROLE): two user turns in a row
            example({"role": None, "parts": [{"text": "a"}]}, turn("user", "b"), turn("model", "c")),
            "role_order",
            "$.contents[1].role",
        ),
        (example(turn("user", "a"), turn("user", "b"), turn("model", "c")), "role_order", "$.contents[1].role"),
        (example(turn("user", "a"), turn("model", "b"), turn("model", "c")), "role_order", "$.contents[2].role"),
        (example(turn("user", "a")), "last_turn_not_model", "$.contents[0].role"),
        (
            example(turn("user", "a"), turn("model", "b"), turn("user", "c")),
            "last_turn_not_model",
            "$.contents[2].role",
        ),
        (example({"role": "user", "parts": []}, turn("model", "b")), "missing_parts", "$.contents[0].parts"),
        (example({"role": "user"}, turn("model", "b")), "missing_parts", "$.contents[0].parts"),
        (example({"role": "user", "parts": "hi"}, turn("model", "b")), "missing_parts", "$.contents[0].parts"),
        (example({"role": "user", "parts": [{}]}, turn("model", "b")), "bad_part", "$.contents[0].parts[0]"),
        (example({"role": "user", "parts": ["hi"]}, turn("model", "b")), "bad_part", "$.contents[0].parts[0]"),
        (
            example({"role": "user", "parts": [{"text": "a", **file_part()}]}, turn("model", "b")),
            "bad_part",
            "$.contents[0].parts[0]",
        ),
        (
            example({"role": "user", "parts": [{"inlineData": {"data": "AA=="}}]}, turn("model", "b")),
            "bad_part",
            "$.contents[0].parts[0].inlineData",
        ),
        (
            example({"role": "user", "parts": [{"thought": "x"}]}, turn("model", "b")),
            "bad_part",
            "$.contents[0].parts[0].thought",
        ),
        (
            example(turn("user", "a"), {"role": "model", "parts": [{"functionCall": {"args": {}}}]}),
            "bad_part",
            "$.contents[1].parts[0].functionCall",
        ),
        (example(turn("user", ""), turn("model", "b")), "bad_text", "$.contents[0].parts[0].text"),
        (
            example({"role": "user", "parts": [{"text": 7}]}, turn("model", "b")),
            "bad_text",
            "$.contents[0].parts[0].text",
        ),
        (example(systemInstruction="be nice"), "bad_system_instruction", "$.systemInstruction"),
        (example(systemInstruction={"parts": []}), "bad_system_instruction", "$.systemInstruction.parts"),
        (
            example(systemInstruction={"parts": [file_part()]}),
            "bad_system_instruction",
            "$.systemInstruction.parts[0]",
        ),
        (example(systemInstruction={"parts": [{"text": ""}]}), "bad_text", "$.systemInstruction.parts[0].text"),
        (
            example({"role": "user", "parts": [{"fileData": "gs://b/x.png"}]}, turn("model", "b")),
            "bad_file_data",
            "$.contents[0].parts[0].fileData",
        ),
        (
            example({"role": "user", "parts": [{"fileData": {"fileUri": "gs://b/x.png"}}]}, turn("model", "b")),
            "bad_file_data",
            "$.contents[0].parts[0].fileData.mimeType",
        ),
        (
            example({"role": "user", "parts": [file_part(mime="image/gif")]}, turn("model", "b")),
            "unsupported_mime_type",
            "$.contents[0].parts[0].fileData.mimeType",
        ),
        (
            example({"role": "user", "parts": [file_part(uri="file:///tmp/x.png")]}, turn("model", "b")),
            "bad_file_uri",
            "$.contents[0].parts[0].fileData.fileUri",
        ),
        (
            example({"role": "user", "parts": [file_part(uri="s3://b/x.png")]}, turn("model", "b")),
            "bad_file_uri",
            "$.contents[0].parts[0].fileData.fileUri",
        ),
        (
            example({"role": "user", "parts": [{"fileData": {"mimeType": "image/png"}}]}, turn("model", "b")),
            "bad_file_uri",
            "$.contents[0].parts[0].fileData.fileUri",
        ),
        (
            example(
                {
                    "role": "user",
                    "parts": [{"fileData": {"mimeType": "image/png", "mime_type": "image/png", "fileUri": "gs://b/o"}}],
                },
                turn("model", "b"),
            ),
            "duplicate_field",
            "$.contents[0].parts[0].fileData",
        ),
        (
            example({"role": "user", "parts": [file_part(f"gs://b/{i}.png") for i in range(31)]}, turn("model", "b")),
            "too_many_media",
            "$.contents[0].parts[30]",
        ),
        (
            example(
                {
                    "role": "user",
                    "parts": [file_part("gs://b/1.mp3", "audio/mpeg"), file_part("gs://b/2.mp3", "audio/mpeg")],
                },
                turn("model", "b"),
            ),
            "too_many_media",
            "$.contents[0].parts[1]",
        ),
    ],
)
def test_each_rule_reports_its_code_line_and_path(bad: Any, code: str, path: str) -> None:
    report = run(GOOD, bad, GOOD)
    assert codes(report) == [(2, code)], report.to_dict()["errors"]
    issue = report.issues[0]
    assert issue.path == path
    assert issue.message.endswith(".") and len(issue.message) > 20  # a sentence a person can act on
    assert not report.valid and report.error_count == 1 and report.counts == {code: 1}


def test_messages_point_at_the_fix() -> None:
    report = run(
        example(turn("user", "a"), turn("assistant", "b")),
        b'{"contents": [}',
        b'{"a": "\xc3"}',
        LEGACY_GOOD,
        example({"role": "user", "parts": [file_part(mime="image/gif")]}, turn("model", "b")),
    )
    messages = {i.code: i.message for i in report.issues}
    assert 'Gemini calls the assistant "model"' in messages["bad_role"]
    assert "column 15" in messages["not_json"]
    assert "byte 8" in messages["not_utf8"]
    assert "legacy gemini-1.0-pro-002 format" in messages["missing_contents"]
    assert "image/png" in messages["unsupported_mime_type"] and "image/jpeg" in messages["unsupported_mime_type"]


def test_one_line_can_break_several_rules_and_all_are_reported() -> None:
    bad = {"contents": [turn("assistant", ""), {"role": "model", "parts": []}, 3], "systemInstruction": 1}
    report = run(bad)
    assert sorted(codes(report)) == sorted(
        [(1, "bad_role"), (1, "bad_text"), (1, "missing_parts"), (1, "bad_turn"), (1, "bad_system_instruction")]
    )


def test_accepted_shapes_snake_case_function_calls_and_media() -> None:
    report = run(
        {
            "system_instruction": {"role": "system", "parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"file_data": {"mime_type": "image/jpeg", "file_uri": "gs://b/x.jpg"}}]},
                {"role": "model", "parts": [{"functionCall": {"name": "lookup", "args": {"q": 1}}}]},
                {"role": "user", "parts": [{"function_response": {"name": "lookup", "response": {"ok": True}}}]},
                {"role": "model", "parts": [{"text": "Done."}]},
            ],
        },
        example(
            {"role": "user", "parts": [file_part("https://example.com/a.pdf", "application/pdf"), {"text": "sum?"}]},
            turn("model", "A summary."),
        ),
        example(
            {
                "role": "user",
                "parts": [{**file_part("gs://b/v.mp4", "video/mp4"), "videoMetadata": {"startOffset": "1s"}}],
            },
            turn("model", "A video."),
        ),
        example({"role": "user", "parts": [file_part(f"gs://b/{i}.png") for i in range(30)]}, turn("model", "30")),
        example(turn("user", "a"), turn("model", "b"), tools=[{"functionDeclarations": [{"name": "lookup"}]}]),
        model="gemini-3.5-flash",  # a model that tunes function calls
    )
    assert report.valid, report.to_dict()["errors"]
    assert report.stats["multimodal_examples"] == 4
    assert report.stats["media_parts"] == 1 + 1 + 1 + 30


def test_unknown_fields_are_warnings_not_errors() -> None:
    report = run(
        {**GOOD, "id": "ex-1"},
        example({"role": "user", "parts": [{"text": "a"}], "name": "x"}, turn("model", "b")),
        {**GOOD, "messages": []},
    )
    assert report.valid
    assert warnings(report) == [(1, "unknown_field"), (2, "unknown_field"), (3, "unknown_field")]
    assert [w.path for w in report.warnings] == ["$.id", "$.contents[0].name", "$.messages"]


@pytest.mark.parametrize(
    ("bad", "code", "path"),
    [
        ({"contents": [turn("user", "a"), turn("model", "b")]}, "missing_contents", "$.messages"),
        ({"messages": []}, "missing_contents", "$.messages"),
        ({"messages": ["hi"]}, "bad_turn", "$.messages[0]"),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "system", "content": "s"},
                    {"role": "model", "content": "b"},
                ]
            },
            "bad_role",
            "$.messages[1].role",
        ),
        (
            {"messages": [{"role": "assistant", "content": "a"}, {"role": "model", "content": "b"}]},
            "bad_role",
            "$.messages[0].role",
        ),
        (
            {"messages": [{"role": "user", "content": ""}, {"role": "model", "content": "b"}]},
            "bad_text",
            "$.messages[0].content",
        ),
        (
            {"messages": [{"role": "user", "content": ["a"]}, {"role": "model", "content": "b"}]},
            "bad_text",
            "$.messages[0].content",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "user", "content": "b"},
                    {"role": "model", "content": "c"},
                ]
            },
            "role_order",
            "$.messages[1].role",
        ),
        (
            {"messages": [{"role": "model", "content": "a"}, {"role": "user", "content": "b"}]},
            "last_turn_not_model",
            "$.messages[1].role",
        ),
    ],
)
def test_legacy_messages_rules(bad: Any, code: str, path: str) -> None:
    good = [LEGACY_GOOD] * 16  # gemini-1.0-pro-002 needs at least 16 examples
    report = run(*good, bad, model="gemini-1.0-pro-002")
    assert codes(report) == [(17, code)]
    assert report.issues[0].path == path


def test_legacy_format_accepts_a_leading_system_message() -> None:
    system = {"messages": [{"role": "system", "content": "Be brief."}, *LEGACY_GOOD["messages"]]}
    report = run(*[system] * 16, model="gemini-1.0-pro")
    assert report.valid and report.model == "gemini-1.0-pro-002"
    assert warnings(report)[0] == (2, "duplicate_example")


def test_every_bad_line_is_reported_with_its_own_number_and_validation_goes_on() -> None:
    report = run(b"x", GOOD, b"\n", b"[]", {"contents": []}, example(turn("user", "a")))
    assert codes(report) == [
        (1, "not_json"),
        (3, "empty_line"),
        (4, "not_object"),
        (5, "missing_contents"),
        (6, "last_turn_not_model"),
    ]
    assert report.example_count == 3  # objects are examples, even bad ones
    assert report.summary()["error_counts"] == {
        "not_json": 1,
        "empty_line": 1,
        "not_object": 1,
        "missing_contents": 1,
        "last_turn_not_model": 1,
    }


@pytest.mark.parametrize("data", [b"", b"\n\n"])
def test_empty_files(data: bytes) -> None:
    report = validate_dataset(io.BytesIO(data), file=FILE)
    assert not report.valid
    assert codes(report) == ([(1, "empty_line"), (2, "empty_line")] if data else [(0, "empty_dataset")])


# ---- issue 12: rules that agree with Vertex AI (sources in shared/models.json and schema.py)

FC_MODEL = "gemini-3.5-flash"  # tunes function calls


def _call(name: str = "lookup") -> dict[str, Any]:
    return {"functionCall": {"name": name, "args": {"q": "x" * 50}}}


def _video(uri: str = "gs://b/v.mp4", **extra: Any) -> dict[str, Any]:
    return {**file_part(uri, "video/mp4"), **extra}


def _segment(end: str, start: str = "0s") -> dict[str, Any]:
    return {"videoMetadata": {"startOffset": start, "endOffset": end}}


def _low(value: dict[str, Any], level: str = "MEDIA_RESOLUTION_LOW") -> dict[str, Any]:
    return {**value, "generationConfig": {"mediaResolution": level}}


def test_a_turn_without_role_is_a_user_turn() -> None:
    response = {"parts": [{"functionResponse": {"name": "lookup", "response": {"output": "ok"}}}]}
    report = run(
        example(turn("user", "a"), {"role": "model", "parts": [_call()]}, response, turn("model", "b")),
        example({"parts": [{"text": "single turn"}]}, turn("model", "b")),
        example({"role": "", "parts": [{"text": "blank role"}]}, turn("model", "b")),
        model=FC_MODEL,
    )
    assert report.valid and report.warnings == [], report.to_dict()
    assert codes(run(example(turn("model", "a"), {"parts": [{"text": "b"}]}), model=FC_MODEL)) == [
        (1, "last_turn_not_model")
    ]


def test_function_calls_are_refused_per_model_naming_the_models_that_accept_them() -> None:
    line = example(turn("user", "a"), {"role": "model", "parts": [_call(), _call("other")]})
    report = run(line, model="gemini-2.5-flash")
    assert codes(report) == [(1, "function_calling_not_supported")]  # once per example
    assert "gemini-2.0-flash-001" in report.issues[0].message and FC_MODEL in report.issues[0].message
    assert run(line, model="gemini-2.0-flash-001").valid and run(line, model=FC_MODEL).valid


def test_media_resolution_is_a_setting_not_an_unknown_field() -> None:
    image = example({"role": "user", "parts": [file_part(), {"text": "q"}]}, turn("model", "a"))
    part_level = example(
        {"role": "user", "parts": [{**file_part(), "mediaResolution": {"level": "MEDIA_RESOLUTION_HIGH"}}]},
        turn("model", "a"),
    )
    report = run(_low(image), _low(part_level), model=FC_MODEL)
    assert report.valid and report.warnings == [], report.to_dict()
    assert codes(run(part_level, model="gemini-2.5-flash")) == [(1, "media_resolution_not_supported")]
    assert codes(run(_low(image, "LOW"), model=FC_MODEL)) == [(1, "bad_media_resolution")]
    other = run({**image, "generationConfig": {"temperature": 0.2}}, model=FC_MODEL)
    assert report.valid and warnings(other) == [(1, "unknown_field")]
    assert "remove it" not in other.warnings[0].message


def test_five_pdfs_are_too_many_and_gemini_3_takes_two_videos() -> None:
    pdfs = example(
        {"role": "user", "parts": [file_part(f"gs://b/{i}.pdf", "application/pdf") for i in range(5)]},
        turn("model", "a"),
    )
    assert codes(run(pdfs, model="gemini-2.0-flash-001")) == [(1, "too_many_media")]
    two_videos = example(
        {"role": "user", "parts": [_video("gs://b/1.mp4"), _video("gs://b/2.mp4")]}, turn("model", "a")
    )
    assert codes(run(two_videos, model="gemini-2.5-flash")) == [(1, "too_many_media")]
    assert run(two_videos, model=FC_MODEL).valid


def test_a_video_segment_over_the_length_for_its_resolution_is_dropped() -> None:
    def line(end: str, start: str = "0s", **extra: Any) -> dict[str, Any]:
        return example({"role": "user", "parts": [_video(**_segment(end, start), **extra)]}, turn("model", "a"))

    assert run(line("300s"), line("299.5s"), model="gemini-2.5-flash").valid
    report = run(*[line("301s")] + [line("10s")] * 9, model="gemini-2.5-flash")
    assert codes(report) == [(1, "video_too_long")]  # 1 of 10 dropped: not more than 10%
    assert "300 seconds" in report.issues[0].message
    assert run(_low(line("1200s")), model="gemini-2.5-flash").valid
    assert codes(run(_low(line("1201s")), model="gemini-2.5-flash")) == [
        (0, "too_many_dropped_examples"),
        (1, "video_too_long"),
    ]
    # A Gemini 3 part's own resolution sets its length limit.
    own = line("1000s", mediaResolution={"level": "MEDIA_RESOLUTION_LOW"})
    assert run(_low(own, "MEDIA_RESOLUTION_HIGH"), model=FC_MODEL).valid
    assert codes(run(_low(line("1000s"), "MEDIA_RESOLUTION_HIGH"), model=FC_MODEL))[-1] == (1, "video_too_long")
    assert codes(run(line(end="5s", start="9s"), model="gemini-2.5-flash")) == [(1, "bad_video_metadata")]
    assert codes(run(line("five"), model="gemini-2.5-flash")) == [(1, "bad_video_metadata")]
    unknown_end = example({"role": "user", "parts": [_video(videoMetadata={"startOffset": "1s"})]}, turn("model", "a"))
    assert run(unknown_end, model="gemini-2.5-flash").valid


def test_every_video_example_has_the_same_media_resolution() -> None:
    video = example({"role": "user", "parts": [_video(), {"text": "q"}]}, turn("model", "a"))
    image = example({"role": "user", "parts": [file_part()]}, turn("model", "a"))
    report = run(_low(video), _low(video), image, video, model="gemini-2.5-flash")
    assert codes(report) == [(4, "mixed_media_resolution")]
    assert "MEDIA_RESOLUTION_LOW" in report.issues[0].message


def test_http_file_uris_are_refused_on_both_paths() -> None:
    clean = example({"role": "user", "parts": [file_part("http://example.com/a.png")]}, turn("model", "a"))
    with_warning = {**clean, "id": 1}  # leaves the fast path
    assert codes(run(clean, with_warning, model=FC_MODEL)) == [(1, "insecure_file_uri"), (2, "insecure_file_uri")]


def test_duplicate_keys_are_reported_where_the_precise_path_reads_the_line() -> None:
    line = b'{"id": 1, "contents": [{"role": "user", "parts": [{"text": "a", "text": "b"}]}, ' + (
        b'{"role": "model", "parts": [{"text": "c"}]}]}'
    )
    report = run(line, model=FC_MODEL)
    assert report.valid and warnings(report) == [(1, "unknown_field"), (1, "duplicate_key")]
    assert '"text"' in report.warnings[1].message


def test_a_long_integer_is_valid_json() -> None:
    line = (
        b'{"id": '
        + b"7" * 5000
        + b', "contents": [{"role": "user", "parts": [{"text": "a"}]}, '
        + (b'{"role": "model", "parts": [{"text": "c"}]}]}')
    )
    report = run(line, model=FC_MODEL)
    assert report.valid and warnings(report) == [(1, "unknown_field")]


def test_videos_of_unknown_length_may_be_dropped_a_warning_once_per_dataset() -> None:
    unknown = example({"role": "user", "parts": [_video(), {"text": "q"}]}, turn("model", "a"))
    measured = example({"role": "user", "parts": [_video(**_segment("30s"))]}, turn("model", "a"))
    texts = [example(turn("user", f"q{i}"), turn("model", "a")) for i in range(8)]
    report = run(unknown, measured, *texts, model="gemini-2.5-flash")
    assert report.valid and warnings(report) == []  # 1 of 10 unknown: at most 10% could be dropped
    report = run(unknown, {**unknown, "id": 2}, measured, GOOD, model="gemini-2.5-flash")
    assert report.valid and warnings(report) == [(2, "unknown_field"), (0, "may_drop_too_many_examples")]
    message = report.warnings[1].message
    assert "2 of the 4 examples" in message and "1,200 at MEDIA_RESOLUTION_LOW" in message


def test_image_lines_with_a_generation_config_take_the_fast_path() -> None:
    from shared.validation.registry import get_model
    from shared.validation.schema import FAST_DECODER, fast_check

    spec = get_model(FC_MODEL)
    assert spec is not None
    line = _low(example({"role": "user", "parts": [file_part(), {"text": "q"}]}, turn("model", "a")))
    assert fast_check(FAST_DECODER.decode(json.dumps(line).encode()), spec) is not None
    video = _low(example({"role": "user", "parts": [_video(), {"text": "q"}]}, turn("model", "a")))
    assert fast_check(FAST_DECODER.decode(json.dumps(video).encode()), spec) is None  # the checker keeps video rules


def test_media_a_model_does_not_tune_names_the_models_that_do() -> None:
    video = example({"role": "user", "parts": [file_part(mime="video/mp4")]}, turn("model", "b"))
    report = run(video, model="gemini-2.0-flash-001")
    (issue,) = [i for i in report.issues if i.code == "unsupported_mime_type"]
    assert "not tuned on video" in issue.message
    named = issue.message.split("Models that tune video: ", 1)[1].rstrip(".").split(", ")
    assert "gemini-3.5-flash" in named
    assert "gemini-2.5-flash" not in named  # retired before the registry was checked
    assert "video/webm" not in issue.message  # the kind and the models, not every MIME type


@pytest.mark.parametrize("fast", [True, False])
def test_a_null_sibling_of_a_part_is_unset_on_both_paths(fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # Proto JSON reads null as unset; the verdict must not depend on which path a line takes.
    from shared.validation import engine

    monkeypatch.setattr(engine, "FAST_TIERS", fast)
    part = {"text": "a", "fileData": None}
    assert codes(run(example({"role": "user", "parts": [part]}, turn("model", "ok")))) == []
