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
- top-level ``tools`` (and ``functions``) -> ``tools: [{"functionDeclarations": [...]}]``;
- ``prompt``/``completion`` and ``input``/``output`` -> a ``user`` and a ``model`` turn (an
  ``instruction`` goes before the input, separated by a blank line).
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

from shared.validation.diagnosis import Kind, example_kind

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

    def fail(self, line: int, reason: str) -> None:
        self.failure_count += 1
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append(Failure(line, reason))

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


def _response(content: Any) -> dict[str, Any]:
    """A tool result as a functionResponse response: a JSON object as it is, anything else wrapped."""
    if isinstance(content, list):  # an array of text items
        content = "".join(item.get("text", "") if isinstance(item, dict) else str(item) for item in content)
    if isinstance(content, str):
        try:
            parsed = json.loads(content)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"output": content}


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
        return {"functionResponse": {"name": name, "response": _response(message.get("content"))}}


def _declarations(tools: Any) -> list[dict[str, Any]]:
    """OpenAI's tools (or legacy functions) as Gemini function declarations."""
    if not isinstance(tools, list):
        raise Unmappable("tools is not a list")
    declarations = []
    for index, tool in enumerate(tools):
        function = tool.get("function", tool) if isinstance(tool, dict) and "function" in tool else tool
        if not isinstance(function, dict) or (isinstance(tool, dict) and tool.get("type", "function") != "function"):
            raise Unmappable(f"tool {index + 1} is not a function")
        if not isinstance(function.get("name"), str):
            raise Unmappable(f"tool {index + 1} has no name")
        declarations.append({k: function[k] for k in ("name", "description", "parameters") if k in function})
    return declarations


def from_messages(example: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat (or legacy ``messages``) example in the contents format."""
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
        *(_declarations(example["tools"]) if "tools" in example else []),
        *(_declarations(example["functions"]) if "functions" in example else []),
    ]
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
    return out


def from_pair(example: dict[str, Any]) -> dict[str, Any]:
    """A prompt/completion or (instruction/)input/output example in the contents format."""
    if "prompt" in example:
        asked, answer = _text(example["prompt"], "prompt"), _text(example["completion"], "completion")
    else:
        instruction, given = example.get("instruction"), example.get("input")
        pieces = [p for p in (instruction, given) if isinstance(p, str) and p]
        if not pieces or any(p is not None and not isinstance(p, str) for p in (instruction, given)):
            raise Unmappable("input is empty or not a string")
        asked, answer = "\n\n".join(pieces), _text(example["output"], "output")
    return {"contents": [{"role": "user", "parts": [{"text": asked}]}, {"role": "model", "parts": [{"text": answer}]}]}


_MAPPERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    Kind.OPENAI: from_messages,
    Kind.MESSAGES: from_messages,
    Kind.PROMPT_COMPLETION: from_pair,
    Kind.INPUT_OUTPUT: from_pair,
}


def convert_example(example: Any, source: Source = Source.AUTO) -> tuple[str, dict[str, Any] | None]:
    """(the example's format, its contents form; None when it already is in it). Raises Unmappable."""
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
    return kind, _MAPPERS[kind](example)


# ---------------------------------------------------------------------------- a file


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def is_pretty_printed(head: bytes) -> bool:
    """Whether a file starting with ``head`` is one JSON document rather than JSON Lines: its first line is
    not a JSON value on its own (an array of examples on one line counts as a document too)."""
    text = head.decode("utf-8", "replace").lstrip("\ufeff" + _WHITESPACE)
    if text.startswith("["):
        return True
    first = text.split("\n", 1)[0]
    if not first.startswith("{"):
        return False
    try:
        json.loads(first)
    except json.JSONDecodeError:
        return "\n" in text  # an object that continues on the next line
    return False


class _Writer:
    def __init__(self, target: IO[bytes], source: Source, result: Conversion) -> None:
        self.target = target
        self.source = source
        self.result = result

    def example(self, value: Any, line: int, raw: bytes | None) -> None:
        result = self.result
        result.examples += 1
        try:
            kind, converted = convert_example(value, self.source)
        except Unmappable as exc:
            result.fail(line, str(exc))
            return
        except RecursionError:
            result.fail(line, "the example nests too deeply")
            return
        result.formats[kind] += 1
        if converted is None:
            result.copied += 1
            self.target.write(raw if raw is not None else _dump(value))
        else:
            result.converted += 1
            self.target.write(_dump(converted))


def _json_lines(reader: IO[bytes], writer: _Writer) -> None:
    for number, raw in enumerate(reader, start=1):
        if not raw.strip():
            writer.result.blank_lines += 1
            continue
        try:
            value = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            writer.result.examples += 1
            writer.result.fail(number, "not valid JSON")
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
    written through a temporary file once the conversion is done, with BlobStore.write (which takes the
    whole object: memory for the output's size at that moment), after checking that it does not exist."""
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
    from shared.ports import ObjectMissing

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
        store.write(bucket, name, spool.read(), "application/jsonl")


def convert_file(source_location: str, target_location: str, source: Source = Source.AUTO) -> Conversion:
    """Convert one dataset into a new one (local paths or gs:// URIs); ConvertUsageError for bad arguments."""
    if source_location == target_location:
        raise ConvertUsageError("the output must be a new file, not the input")
    with open_input(source_location) as reader, open_output(target_location) as target:
        return convert_stream(reader, target, source)
