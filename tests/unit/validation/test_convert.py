"""`tunedrop convert`'s mapping, one example at a time and a file at a time (the command: tests/unit/test_cli.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from shared.validation import validate_dataset
from shared.validation.convert import (
    ConvertUsageError,
    Source,
    Unmappable,
    convert_example,
    convert_file,
    convert_stream,
    document_values,
    is_pretty_printed,
)
from shared.validation.diagnosis import Kind

FOREIGN = Path(__file__).resolve().parents[2] / "fixtures" / "datasets" / "foreign"


def converted(example: dict[str, Any], source: Source = Source.AUTO) -> dict[str, Any]:
    _, out = convert_example(example, source)
    assert out is not None
    return out


def convert_bytes(data: bytes, source: Source = Source.AUTO) -> tuple[list[dict[str, Any]], Any]:
    target = io.BytesIO()
    result = convert_stream(io.BufferedReader(io.BytesIO(data)), target, source)
    return [json.loads(line) for line in target.getvalue().splitlines()], result


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def model(text: str) -> dict[str, Any]:
    return {"role": "model", "parts": [{"text": text}]}


# ---- one example


def test_chat_roles_map_to_turns_and_system_instruction() -> None:
    example = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]},
        ]
    }
    assert converted(example) == {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [user("Hi"), {"role": "model", "parts": [{"text": "Hel"}, {"text": "lo"}]}],
    }


def test_tool_calls_and_results_map_to_function_call_and_response() -> None:
    tools = [
        {"type": "function", "function": {"name": "weather", "description": "d", "parameters": {"type": "object"}}}
    ]
    example = {
        "messages": [
            {"role": "user", "content": "Paris and Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}},
                    {"id": "b", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}},
                ],
            },
            {"role": "tool", "tool_call_id": "a", "content": '{"temp": 22}'},
            {"role": "tool", "tool_call_id": "b", "content": "4 and raining"},
            {"role": "assistant", "content": "Warm and wet."},
        ],
        "tools": tools,
        "parallel_tool_calls": True,
    }
    assert converted(example) == {
        "contents": [
            user("Paris and Oslo?"),
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}},
                ],
            },
            {  # the two results of the parallel calls in one user turn, each named after its call
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "weather", "response": {"temp": 22}}},
                    {"functionResponse": {"name": "weather", "response": {"output": "4 and raining"}}},
                ],
            },
            model("Warm and wet."),
        ],
        "tools": [
            {"functionDeclarations": [{"name": "weather", "description": "d", "parameters": {"type": "OBJECT"}}]}
        ],
    }


def test_legacy_function_call_and_functions() -> None:
    example = {
        "messages": [
            {"role": "user", "content": "Time?"},
            {"role": "assistant", "function_call": {"name": "now", "arguments": "{}"}},
            {"role": "function", "name": "now", "content": "noon"},
            {"role": "assistant", "content": "Noon."},
        ],
        "functions": [{"name": "now"}],
    }
    out = converted(example, Source.OPENAI)
    assert out["contents"][1] == {"role": "model", "parts": [{"functionCall": {"name": "now", "args": {}}}]}
    assert out["contents"][2]["parts"] == [{"functionResponse": {"name": "now", "response": {"output": "noon"}}}]
    assert out["tools"] == [{"functionDeclarations": [{"name": "now"}]}]


def test_legacy_messages_and_pairs() -> None:
    legacy = {"messages": [{"role": "user", "content": "a"}, {"role": "model", "content": "b"}]}
    assert convert_example(legacy, Source.MESSAGES) == (Kind.MESSAGES, {"contents": [user("a"), model("b")]})
    pair = {"prompt": "q ->", "completion": " a END"}
    assert converted(pair, Source.PROMPT_COMPLETION) == {"contents": [user("q ->"), model(" a END")]}  # kept as is
    assert converted({"input": "q", "output": "a"}) == {"contents": [user("q"), model("a")]}
    alpaca = {"instruction": "Translate.", "input": "hi", "output": "salut"}
    assert converted(alpaca) == {"contents": [user("Translate.\n\nhi"), model("salut")]}


def test_consecutive_turns_of_one_role_are_merged() -> None:
    example = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
        ]
    }
    assert converted(example)["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}, model("c")]


def test_image_urls_in_cloud_storage_become_file_data() -> None:
    example = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "gs://b/cat.png"}}]},
            {"role": "assistant", "content": "A cat."},
        ]
    }
    assert converted(example)["contents"][0]["parts"] == [
        {"fileData": {"mimeType": "image/png", "fileUri": "gs://b/cat.png"}}
    ]


def test_gemini_examples_are_copied_as_they_are() -> None:
    assert convert_example({"contents": [user("a"), model("b")]}, Source.OPENAI) == (Kind.CONTENTS, None)


@pytest.mark.parametrize(
    ("example", "reason"),
    [
        ({"messages": [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]}, 'role "robot"'),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "x", "content": "1"}]},
            "no earlier tool call",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "[1]"}}]}
                ]
            },
            "not a JSON object",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{oops"}}]}
                ]
            },
            "not valid JSON",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}],
                    }
                ]
            },
            "Cloud Storage",
        ),
        ({"messages": [{"role": "user", "content": ""}]}, "no content"),
        ({"messages": [{"role": "system", "content": "s"}]}, "no user or assistant"),
        ({"prompt": "", "completion": "a"}, "prompt is empty"),
        ({"text": "a"}, "not in a format"),
    ],
)
def test_what_cannot_be_mapped_is_said(example: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unmappable, match=reason):
        convert_example(example)


def test_from_restricts_the_formats_converted() -> None:
    with pytest.raises(Unmappable, match="--from auto"):
        convert_example({"prompt": "a", "completion": "b"}, Source.OPENAI)
    with pytest.raises(Unmappable, match="--from auto"):
        convert_example({"messages": [{"role": "user", "content": "a"}]}, Source.PROMPT_COMPLETION)


# ---- a file


def test_openai_fixture_converts_and_validates_clean() -> None:
    rows, result = convert_bytes((FOREIGN / "openai_chat.jsonl").read_bytes(), Source.OPENAI)
    assert result.complete and result.converted == len(rows) == 5 and result.formats == {Kind.OPENAI: 5}
    report = validate_dataset(io.BytesIO(b"".join(json.dumps(r).encode() + b"\n" for r in rows)), file="out.jsonl")
    assert report.valid, report.first_errors()
    assert report.warning_count == 0, report.warnings


def test_lines_not_converted_are_left_out_and_numbered() -> None:
    data = (
        b'{"prompt": "a", "completion": "b"}\n'
        b"\n"
        b"{oops\n"
        b'{"messages": [{"role": "robot", "content": "x"}]}\n'
        b'{"contents": [{"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": [{"text": "r"}]}]}'
    )
    rows, result = convert_bytes(data)
    assert [(f.line, f.reason.split(" ")[0]) for f in result.failures] == [(3, "not"), (4, "message")]
    assert (result.examples, result.converted, result.copied, result.blank_lines) == (4, 1, 1, 1)
    assert rows[1] == {"contents": [user("q"), model("r")]}  # copied, a newline added at the end
    assert not result.complete and result.to_dict()["not_converted"] == 2


def test_pretty_printed_documents_are_read_as_examples() -> None:
    rows, result = convert_bytes((FOREIGN / "pretty_printed.json").read_bytes())
    assert result.pretty_printed and result.complete and len(rows) == 4
    assert result.formats == {Kind.OPENAI: 3, Kind.CONTENTS: 1}
    objects = b'{\n  "prompt": "a",\n  "completion": "b"\n}\n\n{\n  "prompt": "c",\n  "completion": "d"\n}\n'
    rows, result = convert_bytes(objects)
    assert rows == [{"contents": [user("a"), model("b")]}, {"contents": [user("c"), model("d")]}]


def test_document_values_give_the_line_each_example_starts_on_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.validation.convert.READ_CHUNK_BYTES", 7)  # values cut across many reads
    data = b'[\n  {"a": 1},\n  {\n    "b": "x\\ny"\n  },\n  {"c": 3}\n]\n'
    assert list(document_values(io.BytesIO(data))) == [(2, {"a": 1}), (3, {"b": "x\ny"}), (6, {"c": 3})]
    with pytest.raises(Unmappable, match="cannot be read"):
        list(document_values(io.BytesIO(b'[{"a": 1}, {"b": ]')))


def test_is_pretty_printed() -> None:
    assert is_pretty_printed(b'[{"a": 1}]')
    assert is_pretty_printed(b'\n{\n  "a": 1\n}')
    assert not is_pretty_printed(b'{"a": 1}\n{"a": 2}\n')
    assert not is_pretty_printed(b'{"a": "cut off by the head')


def test_convert_file_never_overwrites(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"prompt": "a", "completion": "b"}\n')
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"precious")
    with pytest.raises(ConvertUsageError, match="exists"):
        convert_file(str(source), str(target))
    assert target.read_bytes() == b"precious"
    with pytest.raises(ConvertUsageError, match="not the input"):
        convert_file(str(source), str(source))
    with pytest.raises(ConvertUsageError, match="cannot read"):
        convert_file(str(tmp_path / "missing.jsonl"), str(tmp_path / "new.jsonl"))
    assert not (tmp_path / "new.jsonl").exists()


def test_a_failed_conversion_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"prompt": "a", "completion": "b"}\n')

    def broken(*args: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr("shared.validation.convert.convert_stream", broken)
    with pytest.raises(OSError, match="disk full"):
        convert_file(str(source), str(tmp_path / "out.jsonl"))
    assert not (tmp_path / "out.jsonl").exists()


class _Generated(io.RawIOBase):
    """A reader of ``count`` copies of ``piece``, made as they are read (the file never exists whole)."""

    def __init__(self, head: bytes, piece: bytes, count: int, tail: bytes = b"") -> None:
        self._pieces = iter([head, *([piece] * count), tail])
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._pieces)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


class _Counting(io.RawIOBase):
    """A writer that only counts what it is given."""

    written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.written += len(data)
        return len(data)


@pytest.mark.parametrize("pretty", [False, True])
def test_conversion_streams_in_constant_memory(pretty: bool) -> None:
    import tracemalloc

    chat = {"messages": [{"role": "user", "content": "q" * 200}, {"role": "assistant", "content": "a" * 200}]}
    text = json.dumps(chat, indent=2 if pretty else None)
    piece = (text + (",\n" if pretty else "\n")).encode()
    count = 16_000_000 // len(piece)  # about 16 MB
    head, tail = (b"[\n", json.dumps(chat, indent=2).encode() + b"\n]\n") if pretty else (b"", b"")
    reader = io.BufferedReader(_Generated(head, piece, count, tail), buffer_size=1 << 16)
    target = _Counting()
    tracemalloc.start()
    try:
        result = convert_stream(reader, target)  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.complete and result.converted == count + pretty and result.pretty_printed is pretty
    assert target.written > 10_000_000
    assert peak < 6 * 2**20, peak  # about two chunks of the input (1 MiB each) and one example, not 16 MB


# ---- findings of the review of issue 12's converter


def test_a_pair_is_read_as_the_diagnosis_classes_it() -> None:
    # prompt beside input/output, no completion: the diagnosis says input/output, and so does the mapping.
    example = {"prompt": "p", "input": "a", "output": "b"}
    warnings: list[str] = []
    assert convert_example(example, Source.AUTO, warnings) == (Kind.INPUT_OUTPUT, {"contents": [user("a"), model("b")]})
    assert warnings == ["prompt left out: the example is read as input/output, which it also has"]
    rows, result = convert_bytes(b'{"prompt": "p", "input": "a", "output": "b"}\n{"prompt": "c", "completion": "d"}\n')
    assert rows == [{"contents": [user("a"), model("b")]}, {"contents": [user("c"), model("d")]}]
    assert result.complete and result.formats == {Kind.INPUT_OUTPUT: 1, Kind.PROMPT_COMPLETION: 1}
    assert result.to_dict()["warnings"] == [{"line": 1, "lines": 1, "message": warnings[0]}]


def test_a_line_the_mapping_did_not_foresee_is_reported_and_the_rest_converted() -> None:
    huge = "1" * 5000  # valid JSON that Python refuses to turn into an int (ValueError)
    call = {"id": "a", "type": "function", "function": {"name": "f", "arguments": f'{{"n": {huge}}}'}}
    null_text = {"role": "tool", "tool_call_id": "a", "content": [{"type": "text", "text": None}]}
    lines = [
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [call]}]},
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": [{**call, "function": {"name": "f", "arguments": "{}"}}]},
                null_text,
            ]
        },
        {"prompt": "a", "completion": "b"},
    ]
    data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    data += b'{"prompt": "a", "completion": "b", "n": %s}\n' % huge.encode()
    rows, result = convert_bytes(data)
    assert rows == [{"contents": [user("a"), model("b")]}]
    assert [f.line for f in result.failures] == [1, 2, 4]
    assert result.failures[0].reason.startswith("cannot be converted (ValueError: Exceeds the limit")
    assert result.failures[1].reason == "message 3 has a content item that is not text"
    assert result.failures[2].reason.startswith("cannot be read (Exceeds the limit")
    _, result = convert_bytes(b'[\n{"prompt": "a", "completion": "b", "n": %s}\n]\n' % huge.encode())
    assert result.pretty_printed and result.failures[0].reason.startswith("the JSON document cannot be read")


def test_a_broken_first_line_does_not_make_json_lines_a_document() -> None:
    data = b'{"prompt": "a", oops\n{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}\n'
    rows, result = convert_bytes(data)
    assert not result.pretty_printed and rows == [
        {"contents": [user("a"), model("b")]},
        {"contents": [user("c"), model("d")]},
    ]
    assert [(f.line, f.reason) for f in result.failures] == [(1, "not valid JSON")]
    assert not is_pretty_printed(b'[oops\n{"a": 1}\n{"a": 2}\n')
    assert is_pretty_printed(b'[{"prompt": "a", "completion": "b"}, {"prom')  # one long line, cut by the head
    assert is_pretty_printed(b'[\n  {"prompt": "a", "completion": "b"},\n  {"prompt": "c", "completion": "d"}\n]\n')


def _with_tool(parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "tools": [{"type": "function", "function": {"name": "search", "parameters": parameters}}],
    }


def test_tool_parameters_become_gemini_schemas_and_what_they_lack_is_said() -> None:
    parameters = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["book", "film"]},  # a property named "type": a name, kept
            "tags": {"type": "array", "items": {"type": "string", "const": "x"}},
            "limit": {"type": ["integer", "null"], "minimum": 1},
            "filter": {"anyOf": [{"type": "object", "additionalProperties": {"type": "number"}}, {"oneOf": []}]},
        },
        "required": ["type"],
        "additionalProperties": False,
    }
    warnings: list[str] = []
    _, out = convert_example(_with_tool(parameters), Source.AUTO, warnings)
    assert out is not None
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "search",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {
                            "type": {"type": "STRING", "enum": ["book", "film"]},
                            "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
                            "limit": {"type": "INTEGER", "nullable": True, "minimum": 1},
                            "filter": {"anyOf": [{"type": "OBJECT", "additionalProperties": {"type": "NUMBER"}}, {}]},
                        },
                        "required": ["type"],
                        "additionalProperties": False,
                    },
                }
            ]
        }
    ]
    assert warnings == [
        'tool "search": left out what Gemini\'s Schema does not have: parameters.$schema, '
        "parameters.properties.tags.items.const, parameters.properties.filter.anyOf[1].oneOf"
    ]
    # Said once for every line it applies to, as a warning: the lines are converted.
    line = json.dumps(_with_tool({"type": "object", "$defs": {}})).encode() + b"\n"
    rows, result = convert_bytes(line * 3)
    assert result.complete and len(rows) == 3
    assert result.to_dict()["warnings"] == [
        {
            "line": 1,
            "lines": 3,
            "message": 'tool "search": left out what Gemini\'s Schema does not have: parameters.$defs',
        }
    ]


@pytest.mark.parametrize(
    ("schema_type", "reason"),
    [
        ("null", r'^tool "search": parameters\.properties\.x\.type is "null": '),
        (["string", "integer"], r'is \["string", "integer"\]: Gemini\'s Schema takes one of string, number'),
    ],
)
def test_a_schema_type_gemini_cannot_name_is_not_converted(schema_type: Any, reason: str) -> None:
    with pytest.raises(Unmappable, match=reason):
        convert_example(_with_tool({"type": "object", "properties": {"x": {"type": schema_type}}}))


def test_the_schema_fields_kept_are_those_of_the_installed_client() -> None:
    from google.cloud.aiplatform_v1.types import Schema, Type

    from shared.validation.convert import SCHEMA_FIELDS, SCHEMA_TYPES

    assert {f.json_name for f in Schema.pb().DESCRIPTOR.fields} == SCHEMA_FIELDS
    assert {t.name for t in Type if t != Type.TYPE_UNSPECIFIED} == set(SCHEMA_TYPES)


def test_an_assistant_turn_weighted_out_of_training_is_not_converted() -> None:
    turns = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 1}]
    assert converted({"messages": turns})["contents"] == [user("q"), model("a")]
    with pytest.raises(Unmappable, match=r"message 2 has weight 0 .*no per-turn weight"):
        convert_example({"messages": [*turns[:1], {**turns[1], "weight": 0}]})
    with pytest.raises(Unmappable, match=r"weight 0\.5; OpenAI's weight is 0 or 1"):
        convert_example({"messages": [*turns[:1], {**turns[1], "weight": 0.5}]})
