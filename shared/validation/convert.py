"""`tunedrop convert`: rewrite a dataset from another tool's format into Gemini's ``contents`` format.

Reads OpenAI chat files (``messages`` with system, user, assistant and tool roles, tool calls), the legacy
gemini-1.0-pro-002 ``messages`` format, ``prompt``/``completion`` and ``input``/``output`` pairs, as JSON
Lines or as one pretty-printed JSON document (an array of examples, or objects over several lines). Streams:
one example in memory at a time. Lines already in the ``contents`` format are copied as they are. A line
that cannot be mapped is left out of the output and reported with its number; nothing is guessed.

The mapping (OpenAI formats from https://developers.openai.com/docs/guides/distillation and
https://learn.microsoft.com/en-us/azure/ai-services/openai/how-to/fine-tuning-functions; Gemini's from
https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/tuning/function-calling.md.txt, whose
chat-session example wraps a plain tool result as ``{"output": ...}``):

- ``system`` (and ``developer``) messages -> ``systemInstruction`` text parts;
- ``user`` -> a ``user`` turn; ``assistant`` (or ``model``) -> a ``model`` turn; consecutive turns of one
  role are merged, since Gemini's turns alternate;
- ``content`` string -> one text part; content array -> a text part per text item, a ``fileData`` part per
  ``gs://`` or ``https://`` image URL;
- ``tool_calls[i].function`` (and the older ``function_call``) -> a ``functionCall`` part, its
  ``arguments`` JSON string parsed into ``args``;
- a ``tool`` (or older ``function``) message -> a ``functionResponse`` part in a ``user`` turn, named after
  the call with its ``tool_call_id``; content that is a JSON object is the response, other content
  ``{"output": content}``;
- top-level ``tools`` (and ``functions``) -> ``tools: [{"functionDeclarations": [...]}]``, each
  function's ``parameters`` JSON Schema made a Gemini ``Schema`` (:func:`gemini_schema`): ``type`` names in
  upper case (an enum there: OBJECT, STRING, ...), ``["string", "null"]`` as ``STRING`` plus ``nullable``,
  and the keys Gemini's Schema does not have (``$schema``, ``$ref``, ``$defs``, ``oneOf``, ``const``, ...)
  left out, which the conversion reports as a warning for the line;
- ``prompt``/``completion`` and ``input``/``output`` -> a ``user`` and a ``model`` turn (an
  ``instruction`` goes before the input, separated by a blank line); which pair an example is, is decided as
  the validator's diagnosis decides it (``prompt`` and ``completion`` first).

Not converted (the line is reported, exit status 1): an assistant message with OpenAI's ``"weight": 0``
(left out of training there; Gemini tuning has no per-turn weight and would train on it), and anything
else with no Gemini equivalent.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import mimetypes
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any

from shared.validation.diagnosis import HEAD_LINES, Kind, example_kind, line_kind, spans_lines

MAX_LISTED_FAILURES = 1_000  # lines not converted listed in the result (all are counted)
READ_CHUNK_BYTES = 1 << 20
HEAD_BYTES = 64 * 1024  # what tells JSON Lines from one pretty-printed document
# A pretty-printed example larger than this is not read (its text is in memory while it is decoded).
MAX_DOCUMENT_EXAMPLE_BYTES = 64 * 2**20
_WHITESPACE = " \t\r\n"


class Source(StrEnum):
    """`--from`: which format to convert from (auto: each example's own)."""

    AUTO = "auto"
    OPENAI = "openai"
    MESSAGES = "messages"
    PROMPT_COMPLETION = "prompt-completion"


# The example formats each --from converts (lines already in the contents format are always copied).
ACCEPTED: dict[Source, frozenset[str]] = {
    Source.AUTO: frozenset({Kind.OPENAI, Kind.MESSAGES, Kind.PROMPT_COMPLETION, Kind.INPUT_OUTPUT}),
    Source.OPENAI: frozenset({Kind.OPENAI, Kind.MESSAGES}),  # the legacy format is OpenAI's without tools
    Source.MESSAGES: frozenset({Kind.MESSAGES, Kind.OPENAI}),
    Source.PROMPT_COMPLETION: frozenset({Kind.PROMPT_COMPLETION, Kind.INPUT_OUTPUT}),
}


class Unmappable(Exception):
    """An example (or part of one) with no Gemini equivalent; the message says what."""


@dataclass(frozen=True)
class Failure:
    line: int  # where the example starts in the input, 1-based
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@dataclass
class ConversionWarning:
    """A change made while converting that the user should know of, said once for all the lines it applies to."""

    line: int  # the first line it applies to
    message: str
    lines: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "lines": self.lines, "message": self.message}


@dataclass
class Conversion:
    """What a conversion did: examples read, written, copied as they were, and the ones left out."""

    examples: int = 0
    converted: int = 0
    copied: int = 0  # already in the contents format
    blank_lines: int = 0
    failures: list[Failure] = field(default_factory=list)
    failure_count: int = 0
    formats: Counter[str] = field(default_factory=Counter)
    pretty_printed: bool = False
    warnings: dict[str, ConversionWarning] = field(default_factory=dict)  # by message

    def fail(self, line: int, reason: str) -> None:
        self.failure_count += 1
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append(Failure(line, reason))

    def warn(self, line: int, message: str) -> None:
        known = self.warnings.get(message)
        if known is not None:
            known.lines += 1
        elif len(self.warnings) < MAX_LISTED_FAILURES:
            self.warnings[message] = ConversionWarning(line, message)

    @property
    def complete(self) -> bool:
        return self.failure_count == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "converted": self.converted,
            "copied": self.copied,
            "not_converted": self.failure_count,
            "blank_lines": self.blank_lines,
            "formats": dict(self.formats),
            "pretty_printed": self.pretty_printed,
            "failures": [f.to_dict() for f in self.failures],
            "warnings": [w.to_dict() for w in self.warnings.values()],
        }


# ---------------------------------------------------------------------------- one example


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise Unmappable(f"{what} is {'empty' if value == '' else 'not a string'}")
    return value


def _file_part(url: Any) -> dict[str, Any]:
    if not isinstance(url, str) or not url.startswith(("gs://", "https://")):
        raise Unmappable(
            "an image is given inline or by a URL Vertex AI cannot read: upload it to Cloud Storage and use "
            "its gs:// URI"
        )
    mime, _ = mimetypes.guess_type(url.split("?", 1)[0])
    if mime is None:
        raise Unmappable(f"the type of {url[:100]} is unknown: give the file an extension such as .png")
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _content_item(item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        return {"text": _text(item, "a content item")}
    if not isinstance(item, dict):
        raise Unmappable("a content item is not an object")
    kind = item.get("type")
    if kind == "text":
        return {"text": _text(item.get("text"), "a text item")}
    if kind == "image_url":
        image = item.get("image_url")
        return _file_part(image.get("url") if isinstance(image, dict) else image)
    raise Unmappable(f"content of type {json.dumps(kind)[:40]} has no Gemini equivalent here")


def _content_parts(content: Any, where: str) -> list[dict[str, Any]]:
    """The parts of an OpenAI content: a string, an array of items, or nothing."""
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, list):
        try:
            return [_content_item(item) for item in content]
        except Unmappable as exc:
            raise Unmappable(f"{where}: {exc}") from None
    raise Unmappable(f"{where} has content that is neither a string nor an array")


def _arguments(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            raise Unmappable(f"{where} has arguments that are not valid JSON") from None
    if not isinstance(value, dict):
        raise Unmappable(f"{where} has arguments that are not a JSON object")
    return value


def _function_call(call: Any, where: str) -> tuple[dict[str, Any], str]:
    """(functionCall part, the call's id or "") of an OpenAI tool call or legacy function_call."""
    if not isinstance(call, dict):
        raise Unmappable(f"{where} is not an object")
    function = call.get("function", call)
    if call.get("type", "function") != "function" or not isinstance(function, dict):
        raise Unmappable(f"{where} is not a function call")
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise Unmappable(f"{where} has no function name")
    part = {"functionCall": {"name": name, "args": _arguments(function.get("arguments"), where)}}
    call_id = call.get("id")
    return part, call_id if isinstance(call_id, str) else ""


def _result_text(item: Any, where: str) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        return str(item["text"])
    raise Unmappable(f"{where} has a content item that is not text")


def _response(content: Any, where: str) -> dict[str, Any]:
    """A tool result as a functionResponse response: a JSON object as it is, anything else wrapped."""
    if isinstance(content, list):  # an array of text items
        content = "".join(_result_text(item, where) for item in content)
    if isinstance(content, str):
        try:
            parsed = json.loads(content)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"output": content}


def _trained_on(message: dict[str, Any], where: str) -> None:
    """Refuse an assistant message OpenAI's ``weight`` leaves out of training: Gemini tuning trains on every
    model turn and has no per-turn weight, so converting it would teach what the dataset marked as not to."""
    weight = message.get("weight", 1)
    if weight == 0:
        raise Unmappable(
            f"{where} has weight 0 (not trained on), and Gemini tuning has no per-turn weight: it would train on "
            "it; rewrite or remove that turn, or leave the example out"
        )
    if weight != 1:
        raise Unmappable(f"{where} has weight {json.dumps(weight)[:40]}; OpenAI's weight is 0 or 1")


class _Turns:
    """Builds one example's contents, merging consecutive turns of one role (Gemini's turns alternate)."""

    def __init__(self) -> None:
        self.contents: list[dict[str, Any]] = []
        self.system: list[dict[str, Any]] = []
        self.call_names: dict[str, str] = {}

    def add(self, role: str, parts: list[dict[str, Any]]) -> None:
        if self.contents and self.contents[-1]["role"] == role:
            self.contents[-1]["parts"].extend(parts)
        else:
            self.contents.append({"role": role, "parts": parts})

    def message(self, message: Any, number: int) -> None:
        where = f"message {number}"
        if not isinstance(message, dict):
            raise Unmappable(f"{where} is not an object")
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            self.system.extend(_content_parts(content, where))
        elif role == "user":
            self.add("user", self._required(_content_parts(content, where), where))
        elif role in ("assistant", "model"):
            _trained_on(message, where)
            self.add("model", self._required(self._model_parts(message, where), where))
        elif role in ("tool", "function"):
            self.add("user", [self._tool_result(message, where)])
        else:
            raise Unmappable(f"{where} has role {json.dumps(role)[:40]}, which has no Gemini equivalent")

    @staticmethod
    def _required(parts: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
        if not parts:
            raise Unmappable(f"{where} has no content")
        return parts

    def _model_parts(self, message: dict[str, Any], where: str) -> list[dict[str, Any]]:
        parts = _content_parts(message.get("content"), where)
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list):
            raise Unmappable(f"{where} has tool_calls that are not a list")
        if message.get("function_call") is not None:
            calls = [*calls, message["function_call"]]
        for index, call in enumerate(calls):
            part, call_id = _function_call(call, f"{where}, tool call {index + 1}")
            if call_id:
                self.call_names[call_id] = part["functionCall"]["name"]
            parts.append(part)
        return parts

    def _tool_result(self, message: dict[str, Any], where: str) -> dict[str, Any]:
        call_id = message.get("tool_call_id")
        name = self.call_names.get(call_id) if isinstance(call_id, str) else None
        name = name or message.get("name")
        if not isinstance(name, str) or not name:
            raise Unmappable(f"{where} answers no earlier tool call (no matching tool_call_id, no name)")
        return {"functionResponse": {"name": name, "response": _response(message.get("content"), where)}}


# The JSON names of the fields of Gemini's Schema (aiplatform v1 Schema; a unit test compares them with the
# installed client's): a key of a JSON Schema not among them is left out of a converted declaration.
SCHEMA_FIELDS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "default", "items", "minItems", "maxItems",
        "enum", "properties", "propertyOrdering", "required", "minProperties", "maxProperties", "minimum",
        "maximum", "minLength", "maxLength", "pattern", "example", "anyOf", "additionalProperties", "ref", "defs",
    }
)  # fmt: skip
# Schema.type is an enum: its JSON form is the name, in upper case.
SCHEMA_TYPES = ("STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT")


def _schema_type(value: Any, path: str) -> dict[str, Any]:
    """``type`` (a name, or JSON Schema's list of them) as Gemini's: one upper-case type, ``nullable`` for "null"."""
    names = value if isinstance(value, list) else [value]
    named = [name for name in names if name != "null"]
    if len(named) != 1 or not isinstance(named[0], str) or named[0].upper() not in SCHEMA_TYPES:
        raise Unmappable(
            f"{path} is {json.dumps(value)[:60]}: Gemini's Schema takes one of "
            f"{', '.join(t.lower() for t in SCHEMA_TYPES)} (with null: nullable)"
        )
    return {"type": named[0].upper(), **({"nullable": True} if len(named) < len(names) else {})}


def _schema_field(key: str, value: Any, path: str, left_out: list[str]) -> Any:
    """One kept field of a schema, the schemas inside it converted too."""
    if key == "items" or (key == "additionalProperties" and isinstance(value, dict)):
        return gemini_schema(value, path, left_out)
    if key in ("properties", "defs") and isinstance(value, dict):
        return {name: gemini_schema(inner, f"{path}.{name}", left_out) for name, inner in value.items()}
    if key == "anyOf" and isinstance(value, list):
        return [gemini_schema(inner, f"{path}[{index}]", left_out) for index, inner in enumerate(value)]
    return value


def gemini_schema(schema: Any, path: str, left_out: list[str]) -> dict[str, Any]:
    """A JSON Schema (an OpenAI function's ``parameters``) as Gemini's Schema, recursively: ``type`` names in
    upper case (Schema.type is an enum: OBJECT, STRING, ...; Google's function-calling examples write them so),
    ``["x", "null"]`` as type X and ``nullable``. Keys Gemini's Schema lacks ($schema, $ref, $defs, oneOf,
    allOf, const, ...) are dropped rather than kept, since a field the API does not know can make it refuse
    the dataset, and their paths appended to ``left_out`` for the conversion to report. Raises Unmappable for
    a type Gemini has no name for."""
    if not isinstance(schema, dict):
        raise Unmappable(f"{path} is not a JSON Schema object")
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in SCHEMA_FIELDS:
            left_out.append(f"{path}.{key}")
        elif key == "type":
            out.update(_schema_type(value, f"{path}.type"))
        else:
            out[key] = _schema_field(key, value, f"{path}.{key}", left_out)
    return out


def _declaration(tool: Any, number: int, warnings: list[str]) -> dict[str, Any]:
    """One OpenAI tool (or legacy function) as a Gemini function declaration."""
    function = tool["function"] if isinstance(tool, dict) and "function" in tool else tool
    if not isinstance(function, dict) or (isinstance(tool, dict) and tool.get("type", "function") != "function"):
        raise Unmappable(f"tool {number} is not a function")
    name = function.get("name")
    if not isinstance(name, str):
        raise Unmappable(f"tool {number} has no name")
    declaration = {k: function[k] for k in ("name", "description") if k in function}
    if "parameters" in function:
        declaration["parameters"] = _parameters(function["parameters"], f"tool {json.dumps(name)[:60]}", warnings)
    return declaration


def _parameters(schema: Any, tool: str, warnings: list[str]) -> dict[str, Any]:
    left_out: list[str] = []
    try:
        converted = gemini_schema(schema, "parameters", left_out)
    except Unmappable as exc:
        raise Unmappable(f"{tool}: {exc}") from None
    if left_out:
        warnings.append(f"{tool}: left out what Gemini's Schema does not have: {', '.join(left_out)}")
    return converted


def _declarations(tools: Any, warnings: list[str]) -> list[dict[str, Any]]:
    """OpenAI's tools (or legacy functions) as Gemini function declarations."""
    if not isinstance(tools, list):
        raise Unmappable("tools is not a list")
    return [_declaration(tool, index + 1, warnings) for index, tool in enumerate(tools)]


def from_messages(example: dict[str, Any], warnings: list[str] | None = None) -> dict[str, Any]:
    """An OpenAI chat (or legacy ``messages``) example in the contents format; what was changed on the way is
    appended to ``warnings``."""
    notes = warnings if warnings is not None else []
    turns = _Turns()
    for number, message in enumerate(example["messages"], start=1):
        turns.message(message, number)
    if not turns.contents:
        raise Unmappable("the example has no user or assistant message")
    out: dict[str, Any] = {}
    if turns.system:
        out["systemInstruction"] = {"parts": turns.system}
    out["contents"] = turns.contents
    declarations = [
        *(_declarations(example["tools"], notes) if "tools" in example else []),
        *(_declarations(example["functions"], notes) if "functions" in example else []),
    ]
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
    return out


def _pair(asked: str, answer: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": asked}]}, {"role": "model", "parts": [{"text": answer}]}]}


def from_prompt_completion(example: dict[str, Any], warnings: list[str] | None = None) -> dict[str, Any]:
    """A prompt/completion example in the contents format."""
    return _pair(_text(example["prompt"], "prompt"), _text(example["completion"], "completion"))


def _instructed_input(example: dict[str, Any]) -> str:
    """The user's turn of an input/output example: its instruction, if any, a blank line, and its input."""
    instruction, given = example.get("instruction"), example.get("input")
    pieces = [p for p in (instruction, given) if isinstance(p, str) and p]
    if not pieces or any(p is not None and not isinstance(p, str) for p in (instruction, given)):
        raise Unmappable("input is empty or not a string")
    return "\n\n".join(pieces)


def from_input_output(example: dict[str, Any], warnings: list[str] | None = None) -> dict[str, Any]:
    """An (instruction/)input/output example in the contents format; a ``prompt`` or ``completion`` beside
    them (not both: that is a prompt/completion example) is left out, and said in ``warnings``."""
    converted = _pair(_instructed_input(example), _text(example["output"], "output"))
    if warnings is not None:
        warnings.extend(
            f"{name} left out: the example is read as input/output, which it also has"
            for name in ("prompt", "completion")
            if name in example
        )
    return converted


_MAPPERS: dict[str, Callable[[dict[str, Any], list[str]], dict[str, Any]]] = {
    Kind.OPENAI: from_messages,
    Kind.MESSAGES: from_messages,
    Kind.PROMPT_COMPLETION: from_prompt_completion,
    Kind.INPUT_OUTPUT: from_input_output,
}


def convert_example(
    example: Any, source: Source = Source.AUTO, warnings: list[str] | None = None
) -> tuple[str, dict[str, Any] | None]:
    """(the example's format, its contents form; None when it already is in it). Raises Unmappable; what was
    changed on the way (a schema key left out, ...) is appended to ``warnings``."""
    kind = example_kind(example)
    if kind == Kind.CONTENTS:
        return kind, None
    if kind not in ACCEPTED[source]:
        if kind in (Kind.OTHER, Kind.UNREADABLE):
            raise Unmappable(
                "not in a format tunedrop convert reads (OpenAI chat, messages, prompt/completion, input/output)"
            )
        raise Unmappable(
            f"in the {kind} format, not {source.value} (use --from auto to convert each line from its own)"
        )
    return kind, _MAPPERS[kind](example, warnings if warnings is not None else [])


# ---------------------------------------------------------------------------- a file


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _head_lines(head: bytes) -> list[bytes]:
    """The non-blank whole lines at the start of ``head``, at most HEAD_LINES. Its last piece is kept when the
    head is shorter than HEAD_BYTES (the end of the file, or of what a peek gave: a line cut there reads as
    broken, which the rule tolerates) or is the only one."""
    pieces = head.split(b"\n", HEAD_LINES)
    lines = [piece + b"\n" for piece in pieces[:-1]][:HEAD_LINES]
    if len(pieces) <= HEAD_LINES and (len(head) < HEAD_BYTES or not lines):
        lines.append(pieces[-1])
    return [line for line in lines if line.strip()]


def is_pretty_printed(head: bytes) -> bool:
    """Whether a file starting with ``head`` is one JSON document rather than JSON Lines.

    It is when its first line is an array of examples on its own (or an array the head cuts off), and
    otherwise by the rule of the validator's diagnosis (diagnosis.detect): most of the first lines are not a
    JSON object on their own, and together they start one JSON value that goes on past the first line
    (diagnosis.spans_lines). So JSON Lines whose first line is broken stay JSON Lines: the lines after it are
    converted."""
    lines = _head_lines(head)
    first = lines[0].decode("utf-8", "replace").strip("\ufeff" + _WHITESPACE) if lines else ""
    if first.startswith("[") and (len(lines) == 1 or _is_array(first)):
        return True  # an array of examples on one line (the head may cut it off)
    return _reads_as_one_value(lines)


def _is_array(text: str) -> bool:
    try:
        return isinstance(json.loads(text), list)
    except (ValueError, RecursionError):
        return False


def _reads_as_one_value(lines: list[bytes]) -> bool:
    """diagnosis.detect's test for a pretty-printed file, on the head's non-blank lines."""
    if not lines:
        return False
    kind, count = Counter(line_kind(raw) for raw in lines).most_common(1)[0]
    return kind == Kind.UNREADABLE and 2 * count >= len(lines) and spans_lines(lines)


class _Writer:
    def __init__(self, target: IO[bytes], source: Source, result: Conversion) -> None:
        self.target = target
        self.source = source
        self.result = result

    def example(self, value: Any, line: int, raw: bytes | None) -> None:
        result = self.result
        result.examples += 1
        warnings: list[str] = []
        try:
            kind, converted = convert_example(value, self.source, warnings)
        except Unmappable as exc:
            result.fail(line, str(exc))
            return
        except RecursionError:
            result.fail(line, "the example nests too deeply")
            return
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # A shape the mapping did not foresee: one line not converted, never the whole file lost.
            result.fail(line, f"cannot be converted ({type(exc).__name__}: {str(exc)[:200]})")
            return
        for message in warnings:
            result.warn(line, message)
        result.formats[kind] += 1
        if converted is None:
            result.copied += 1
            self.target.write(raw if raw is not None else _dump(value))
        else:
            result.converted += 1
            self.target.write(_dump(converted))


def _invalid_json(exc: Exception) -> bool:
    return isinstance(exc, json.JSONDecodeError | UnicodeDecodeError | RecursionError)


def _json_lines(reader: IO[bytes], writer: _Writer) -> None:
    for number, raw in enumerate(reader, start=1):
        if not raw.strip():
            writer.result.blank_lines += 1
            continue
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # ValueError: also a number too long to convert
            writer.result.examples += 1
            writer.result.fail(number, "not valid JSON" if _invalid_json(exc) else f"cannot be read ({exc})"[:200])
            continue
        writer.example(value, number, raw if raw.endswith(b"\n") else raw + b"\n")


def document_values(reader: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """(line where it starts, value) of each example of a pretty-printed JSON document: the items of a
    top-level array, or a sequence of objects. Reads in chunks; holds one example's text at a time.

    Raises Unmappable (with the line) when the document cannot be read further."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="strict")
    text, position, line, in_array, at_end = "", 0, 1, None, False

    def more() -> bool:
        nonlocal text, position, at_end
        if at_end:
            return False
        chunk = reader.read(READ_CHUNK_BYTES)
        at_end = not chunk
        text = text[position:] + utf8.decode(chunk, final=at_end)
        position = 0
        return True

    while True:
        # Skip whitespace, the array's brackets and the commas between its items.
        while True:
            stripped = len(text) - len(text[position:].lstrip(_WHITESPACE + ","))
            line += text.count("\n", position, stripped)
            position = stripped
            if position < len(text) or not more():
                break
        if position >= len(text):
            return
        if in_array is None:
            in_array = text[position] == "["
            if in_array:
                position += 1
                continue
        if in_array and text[position] == "]":
            position += 1
            in_array = False
            continue
        try:
            value, end = decoder.raw_decode(text, position)
        except RecursionError:
            raise Unmappable("the JSON document nests too deeply to read") from None
        except json.JSONDecodeError as exc:
            if len(text) - position > MAX_DOCUMENT_EXAMPLE_BYTES or not more():
                raise Unmappable(f"the JSON document cannot be read from here on ({exc.msg})") from None
            continue
        except ValueError as exc:  # valid JSON Python will not hold, e.g. a number of over 4,300 digits
            raise Unmappable(f"the JSON document cannot be read from here on ({str(exc)[:120]})") from None
        yield line, value
        line += text.count("\n", position, end)
        position = end


def _document(reader: IO[bytes], writer: _Writer) -> None:
    writer.result.pretty_printed = True
    values = document_values(reader)
    line = 1
    while True:
        try:
            line, value = next(values)
        except StopIteration:
            return
        except Unmappable as exc:
            writer.result.examples += 1
            writer.result.fail(line, str(exc))
            return
        except UnicodeDecodeError:
            writer.result.examples += 1
            writer.result.fail(line, "the file is not UTF-8 from here on")
            return
        writer.example(value, line, None)


def _head(reader: IO[bytes]) -> bytes:
    """The first bytes of ``reader``, leaving it where it was (b"" when it can neither peek nor seek)."""
    if isinstance(reader, io.BufferedReader):
        return reader.peek(HEAD_BYTES)[:HEAD_BYTES]
    if reader.seekable():
        start = reader.tell()
        head = reader.read(HEAD_BYTES)
        reader.seek(start)
        return head
    return b""


def convert_stream(reader: IO[bytes], target: IO[bytes], source: Source = Source.AUTO) -> Conversion:
    """Convert ``reader`` (a buffered binary reader) into ``target``, one example per line."""
    result = Conversion()
    writer = _Writer(target, source, result)
    if is_pretty_printed(_head(reader)):
        _document(reader, writer)
    else:
        _json_lines(reader, writer)
    return result


# ---------------------------------------------------------------------------- local paths and gs:// URIs


class ConvertUsageError(Exception):
    """Bad arguments, an unreadable input or an output that exists: exit status 2."""


def _blob_store() -> Any:
    from google.cloud import storage

    from shared.adapters.gcs_blobs import GcsBlobStore

    return GcsBlobStore(storage.Client())


def _gs_location(location: str) -> tuple[str, str]:
    from shared.validation.uris import split_gs_uri

    try:
        return split_gs_uri(location)
    except ValueError:
        raise ConvertUsageError(f"{location} is not a gs://bucket/object URI") from None


@contextlib.contextmanager
def open_input(location: str) -> Iterator[IO[bytes]]:
    """A buffered binary reader of a local file or a gs:// object (read as `tunedrop validate` reads it)."""
    if location.startswith("gs://"):
        from shared.ports import ObjectMissing

        bucket, name = _gs_location(location)
        try:
            reader = _blob_store().open(bucket, name)
        except ObjectMissing:
            raise ConvertUsageError(f"{location} does not exist") from None
    else:
        try:
            reader = open(location, "rb", buffering=READ_CHUNK_BYTES)  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ConvertUsageError(f"cannot read {location}: {exc.strerror or exc}") from None
    with reader:
        yield reader


@contextlib.contextmanager
def open_output(location: str) -> Iterator[IO[bytes]]:
    """A binary writer for a new local file or gs:// object; an existing one is never overwritten.

    A local file is created exclusively and removed again if the conversion fails. A gs:// object is
    written through a temporary file once the conversion is done, with a create-only BlobStore.write (which
    takes the whole object: memory for the output's size at that moment): checked before converting, so an
    existing one stops the command at once, and refused at the write if one was created meanwhile."""
    if location.startswith("gs://"):
        with _gs_output(location, _blob_store()) as target:
            yield target
        return
    try:
        target = open(location, "xb", buffering=READ_CHUNK_BYTES)  # noqa: SIM115 - closed below
    except FileExistsError:
        raise ConvertUsageError(f"{location} exists: tunedrop convert never overwrites a file") from None
    except OSError as exc:
        raise ConvertUsageError(f"cannot write {location}: {exc.strerror or exc}") from None
    try:
        with target:
            yield target
    except BaseException:
        os.unlink(location)
        raise


@contextlib.contextmanager
def _gs_output(location: str, store: Any) -> Iterator[IO[bytes]]:
    from shared.ports import ObjectExists, ObjectMissing

    bucket, name = _gs_location(location)
    try:
        store.describe(bucket, name)
    except ObjectMissing:
        pass
    else:
        raise ConvertUsageError(f"{location} exists: tunedrop convert never overwrites an object")
    with tempfile.TemporaryFile() as spool:
        yield spool
        spool.seek(0)
        try:
            store.write(bucket, name, spool.read(), "application/jsonl", if_absent=True)
        except ObjectExists:
            raise ConvertUsageError(
                f"{location} was created while converting: tunedrop convert never overwrites an object (nothing "
                "was written; convert again to another name)"
            ) from None


def convert_file(source_location: str, target_location: str, source: Source = Source.AUTO) -> Conversion:
    """Convert one dataset into a new one (local paths or gs:// URIs); ConvertUsageError for bad arguments."""
    if source_location == target_location:
        raise ConvertUsageError("the output must be a new file, not the input")
    with open_input(source_location) as reader, open_output(target_location) as target:
        return convert_stream(reader, target, source)
