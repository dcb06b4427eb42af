"""File-level diagnoses: a dataset written for another tool, said once for the whole file.

A file in OpenAI's chat format, in the legacy gemini-1.0-pro-002 ``messages`` format (on a model that
reads ``contents``), with ``prompt``/``completion`` or ``input``/``output`` pairs, or pretty-printed over
several lines would otherwise get the same error on every line, and advice that fits one line but not the
file ("remove the field input" would delete the data). The first lines of the file tell its format
(:func:`detect`); while such a file is scanned, the per-line issues that format explains are counted
rather than reported, and one issue names the format, what converting it does and the command that does
it (:func:`diagnosing`, the engine's one call). Every issue the format does not explain is reported as
usual.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import json
import re
import shlex
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from shared.validation.registry import ModelSpec
from shared.validation.report import Issue, ValidationReport

HEAD_LINES = 20  # lines of a file read to tell its format
HEAD_BYTES = 256 * 1024  # at most this much of it (a longer first line tells nothing: no diagnosis)
# Roles and fields only OpenAI's chat format has; a "messages" line without any is the legacy Gemini format.
OPENAI_ROLES = frozenset({"assistant", "tool", "function", "developer"})
# Top-level fields of an OpenAI chat line that `tunedrop convert` reads (or knows to leave out).
OPENAI_TOP_LEVEL = frozenset({"messages", "tools", "functions", "parallel_tool_calls"})
PAIR_FIELDS = frozenset({"prompt", "completion", "input", "output", "instruction"})


# ---------------------------------------------------------------------------- one line's format


class _Message(msgspec.Struct):
    role: Any = None
    content: msgspec.Raw = msgspec.Raw(b"")  # Raw: present or not, never decoded here
    tool_calls: msgspec.Raw = msgspec.Raw(b"")
    tool_call_id: msgspec.Raw = msgspec.Raw(b"")
    function_call: msgspec.Raw = msgspec.Raw(b"")


class _Line(msgspec.Struct):
    """What tells a line's format, and nothing else: the rest of the line is skipped, never built."""

    contents: msgspec.Raw = msgspec.Raw(b"")
    messages: list[_Message] | None = None
    prompt: msgspec.Raw = msgspec.Raw(b"")
    completion: msgspec.Raw = msgspec.Raw(b"")
    input: msgspec.Raw = msgspec.Raw(b"")
    output: msgspec.Raw = msgspec.Raw(b"")


_LINE_DECODER = msgspec.json.Decoder(_Line)


class Kind:
    """A line's format, as :func:`line_kind` and :func:`example_kind` name it."""

    CONTENTS = "contents"  # Gemini's, read by every model but gemini-1.0-pro-002
    MESSAGES = "messages"  # legacy gemini-1.0-pro-002: roles system, user, model; content strings
    OPENAI = "openai"  # OpenAI's chat fine-tuning format
    PROMPT_COMPLETION = "prompt_completion"
    INPUT_OUTPUT = "input_output"
    OTHER = "other"  # a JSON object of none of these
    UNREADABLE = "unreadable"  # not one JSON object on its own


def _messages_kind(roles: Iterable[Any], openai_only_fields: bool) -> str:
    if openai_only_fields or any(role in OPENAI_ROLES for role in roles):
        return Kind.OPENAI
    return Kind.MESSAGES


def _pair_kind(has: Callable[[str], bool]) -> str:
    """PROMPT_COMPLETION, INPUT_OUTPUT or OTHER, by which fields an example ``has``."""
    if has("prompt") and has("completion"):
        return Kind.PROMPT_COMPLETION
    if has("input") and has("output"):
        return Kind.INPUT_OUTPUT
    return Kind.OTHER


def line_kind(raw: bytes) -> str:
    """The format of one line, decoding only the fields that tell it."""
    try:
        line = _LINE_DECODER.decode(raw)
    except RecursionError:  # nested too deeply to read (the engine says so for the line)
        return Kind.UNREADABLE
    except msgspec.ValidationError:  # JSON, but not an object, or an object whose fields have other types
        return Kind.OTHER if raw.lstrip().startswith(b"{") else Kind.UNREADABLE
    except (msgspec.DecodeError, UnicodeDecodeError):
        return Kind.UNREADABLE
    if line.contents:
        return Kind.CONTENTS
    if line.messages:
        return _line_messages_kind(line.messages)
    return _pair_kind(lambda name: bool(getattr(line, name)))


def _line_messages_kind(messages: list[_Message]) -> str:
    extras = any(m.tool_calls or m.tool_call_id or m.function_call for m in messages)
    # Content arrays ([{"type": "text", ...}]) are OpenAI's; the legacy format has strings only.
    arrays = any(bytes(m.content).startswith(b"[") for m in messages)
    return _messages_kind((m.role for m in messages), extras or arrays)


def example_kind(value: Any) -> str:
    """The format of one decoded example (what `tunedrop convert` maps it from)."""
    if not isinstance(value, dict):
        return Kind.UNREADABLE
    if "contents" in value:
        return Kind.CONTENTS
    messages = value.get("messages")
    if isinstance(messages, list) and messages:
        return _example_messages_kind(value, messages)
    return _pair_kind(value.__contains__)


def _example_messages_kind(value: dict[str, Any], messages: list[Any]) -> str:
    dicts = [m for m in messages if isinstance(m, dict)]
    extras = any("tool_calls" in m or "tool_call_id" in m or "function_call" in m for m in dicts)
    arrays = any(isinstance(m.get("content"), list) for m in dicts)
    return _messages_kind((m.get("role") for m in dicts), extras or arrays or "tools" in value)


# ---------------------------------------------------------------------------- the file's format


@dataclass(frozen=True)
class ForeignFormat:
    """A format Tunedrop recognises but Vertex AI does not tune from (for the model asked)."""

    code: str  # the file-level issue code (shared.validation.codes)
    name: str  # how the diagnosis names it
    convert_from: str  # `tunedrop convert --from` value
    mapping: str  # what converting it does, said in the diagnosis
    explains: Callable[[Issue], bool]  # which per-line issues the format accounts for


def _top_level_field(issue: Issue, names: frozenset[str]) -> bool:
    return issue.code == "unknown_field" and issue.path.removeprefix("$.") in names


def _explains_openai_on_contents(issue: Issue) -> bool:
    return issue.code == "missing_contents" or _top_level_field(issue, OPENAI_TOP_LEVEL)


def _explains_openai_on_messages(issue: Issue) -> bool:
    # gemini-1.0-pro-002 reads "messages" but not OpenAI's roles and fields: every role, order, content and
    # field finding inside the messages follows from the format (and some would be false: an "assistant"
    # message is not seen as the model's, so "last message has role user" would be said of an assistant).
    return issue.path.startswith("$.messages") or _top_level_field(issue, OPENAI_TOP_LEVEL)


def _explains_legacy(issue: Issue) -> bool:
    return issue.code == "missing_contents"


def _explains_pairs(issue: Issue) -> bool:
    return issue.code == "missing_contents" or _top_level_field(issue, PAIR_FIELDS)


def _explains_everything(issue: Issue) -> bool:
    return True


_TURNS = 'each pair becomes a "user" turn and a "model" turn, their text kept as it is'
OPENAI_CHAT = ForeignFormat(
    "openai_chat_format",
    'OpenAI\'s chat fine-tuning format ({"messages": [{"role": "system" | "user" | "assistant" | "tool", '
    '"content": ...}]})',
    "openai",
    'role "assistant" becomes "model", "system" messages become "systemInstruction", "content" strings and '
    'arrays become "parts", "tool_calls" become "functionCall" parts with their arguments parsed into objects, '
    'and "tool" messages "functionResponse" parts named after the call they answer',
    _explains_openai_on_contents,
)
OPENAI_CHAT_ON_MESSAGES = dataclasses.replace(OPENAI_CHAT, explains=_explains_openai_on_messages)
LEGACY_MESSAGES = ForeignFormat(
    "legacy_messages_format",
    'the legacy gemini-1.0-pro-002 format ({"messages": [{"role": ..., "content": "..."}]})',
    "messages",
    '"system" messages become "systemInstruction" and each other message a turn whose "content" becomes "parts"',
    _explains_legacy,
)
PROMPT_COMPLETION = ForeignFormat(
    "prompt_completion_format",
    'OpenAI\'s legacy completion format ({"prompt": "...", "completion": "..."})',
    "prompt-completion",
    _TURNS,
    _explains_pairs,
)
INPUT_OUTPUT = ForeignFormat(
    "input_output_format",
    'input/output pairs ({"input": "...", "output": "..."}, with an optional "instruction")',
    "prompt-completion",
    _TURNS + ' (an "instruction" goes before the input in the user turn)',
    _explains_pairs,
)
PRETTY_PRINTED = ForeignFormat(
    "pretty_printed_json",
    "one JSON document spread over several lines (pretty-printed, or an array of examples), not JSON Lines",
    "auto",
    "each example is written on a line of its own, and converted to Gemini's format when it is in one the "
    "converter reads",
    _explains_everything,
)
_BY_KIND = {Kind.PROMPT_COMPLETION: PROMPT_COMPLETION, Kind.INPUT_OUTPUT: INPUT_OUTPUT}


def detect(head: Sequence[bytes], spec: ModelSpec) -> ForeignFormat | None:
    """The foreign format of a file whose first lines are ``head``, for ``spec``'s model; None when the
    lines are in the model's own format, mixed, or not in a format Tunedrop recognises.

    A format is named when it is the most common among the non-blank lines and covers at least half of
    them; a file whose lines mostly are not JSON objects on their own is pretty-printed when its first
    lines read as the start of one JSON value that spans them.
    """
    lines = [raw for raw in head if raw.strip()]
    if not lines:
        return None
    kinds = Counter(line_kind(raw) for raw in lines)
    kind, count = kinds.most_common(1)[0]
    if 2 * count < len(lines):
        return None
    if kind == Kind.UNREADABLE:
        return PRETTY_PRINTED if spans_lines(lines) else None
    if kind == Kind.OPENAI:
        return OPENAI_CHAT_ON_MESSAGES if spec.format == "messages" else OPENAI_CHAT
    if kind == Kind.MESSAGES:
        return LEGACY_MESSAGES if spec.format != "messages" else None
    return _BY_KIND.get(kind)


# An object's first key, alone or as an array's first item: what a pretty-printed dataset starts with (and
# what a few stray brackets, or random bytes, do not).
_STARTS_AN_EXAMPLE = re.compile(r'\[?\s*\{\s*"[^"\n]*"\s*:')


def spans_lines(lines: Sequence[bytes]) -> bool:
    """Whether ``lines`` start one JSON value, an object with a key or an array of them, that goes on past
    the first line (cut off or complete)."""
    text = b"".join(lines).decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if not _STARTS_AN_EXAMPLE.match(text):
        return False
    try:
        # Integers kept as their digits: Python refuses to make an int of more than 4,300 (ValueError).
        _, end = json.JSONDecoder(parse_int=str).raw_decode(text)
    except RecursionError:
        return False
    except json.JSONDecodeError as exc:
        # Decoding got past the first line before failing: the value continues there (or the head cut it).
        return exc.lineno > 1
    return "\n" in text[:end].rstrip()


# ---------------------------------------------------------------------------- reading the head


def read_head(lines: Iterable[bytes]) -> tuple[list[bytes], Iterable[bytes]]:
    """The first lines of ``lines`` (at most HEAD_LINES, HEAD_BYTES) and what to read the whole file from.

    A buffered reader is peeked and a seekable one read and rewound, so the reader itself (and the engine's
    bounded readline on it) still reads the file; a list is sliced; another iterable is read ahead and
    chained back. A reader that can do neither gets no diagnosis (an empty head).
    """
    if isinstance(lines, io.BufferedReader):
        return _complete_lines(lines.peek(HEAD_BYTES)[:HEAD_BYTES]), lines
    if isinstance(lines, io.IOBase):
        if not lines.seekable():
            return [], lines
        start = lines.tell()
        data = lines.read(HEAD_BYTES)
        lines.seek(start)
        return _complete_lines(data), lines
    if isinstance(lines, Sequence):
        return list(lines[:HEAD_LINES]), lines
    iterator = iter(lines)
    head = list(itertools.islice(iterator, HEAD_LINES))
    return head, itertools.chain(head, iterator)


def _complete_lines(data: bytes) -> list[bytes]:
    """The whole lines at the start of ``data``, at most HEAD_LINES (a last line cut off is left out,
    unless it is the only one and short enough to be the whole file)."""
    pieces = data.split(b"\n", HEAD_LINES)
    lines = [piece + b"\n" for piece in pieces[:-1]][:HEAD_LINES]
    if len(pieces) <= HEAD_LINES and pieces[-1] and len(data) < HEAD_BYTES:
        lines.append(pieces[-1])  # the file's last line, without a newline (peek may also stop short: harmless)
    return lines


# ---------------------------------------------------------------------------- the diagnosis


@dataclass(frozen=True)
class FormatIssue(Issue):
    """The file-level issue of a foreign format; its JSON form carries what it replaces."""

    format_name: str = ""
    convert_from: str = ""
    command: str = ""
    lines_affected: int = 0
    first_line: int = 0
    replaced: tuple[tuple[str, int], ...] = ()  # (code, count) of the per-line issues not reported

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(
            format=self.format_name,
            convert_from=self.convert_from,
            command=self.command,
            lines_affected=self.lines_affected,
            first_line=self.first_line,
            replaced_issues=dict(self.replaced),
        )
        return out


def converted_name(location: str) -> str:
    """Where the diagnosis suggests writing the converted file: next to a local one, ``.gemini.jsonl``; for a
    gs:// object, a local file of that name (written into the upload bucket, it would start a tuning job
    before anyone looked at it)."""
    if location.startswith("gs://"):
        location = location.rstrip("/").rsplit("/", 1)[-1] or "dataset.jsonl"
    for suffix in (".jsonl", ".json", ".txt"):
        if location.endswith(suffix):
            return location[: -len(suffix)] + ".gemini.jsonl"
    return location + ".gemini.jsonl"


def conversion_command(location: str, found: ForeignFormat) -> str:
    target = converted_name(location or "TRAIN.jsonl")
    return (
        f"tunedrop convert {shlex.quote(location or 'TRAIN.jsonl')} {shlex.quote(target)} --from {found.convert_from}"
    )


def _diagnosis_message(found: ForeignFormat, spec: ModelSpec, command: str, lines: int, first: int) -> str:
    counted = f"{lines:,} line{'' if lines == 1 else 's'} (from line {first:,})"
    if found is PRETTY_PRINTED:
        lead = f"The file is {found.name}: {counted} could not be read as examples."
    else:
        lead = (
            f"The file is in {found.name}, which {spec.name} does not tune from: {counted} cannot be tuned as they are."
        )
    convert = f"`{command}` ({found.mapping})"
    if found.code == OPENAI_CHAT.code and spec.format == "messages":
        fix = (
            f'{spec.name} reads "messages" with the roles "system", "user" and "model" and text content only: '
            'rename role "assistant" to "model" (tool calls and tool results have no equivalent there), or '
            f"convert the file for a current model with {convert}."
        )
    else:
        fix = f"Convert the file with {convert}."
    return (
        f"{lead} {fix} The per-line findings this explains are counted in this issue (lines_affected and "
        "replaced_issues in the JSON report), not listed one by one."
    )


def diagnosis_issue(
    found: ForeignFormat, spec: ModelSpec, file: str, label: str, lines: int, first: int, codes: Counter[str]
) -> FormatIssue:
    command = conversion_command(file, found)
    message = _diagnosis_message(found, spec, command, lines, first)
    return FormatIssue(
        0,
        found.code,
        message,
        file=label,
        format_name=found.name,
        convert_from=found.convert_from,
        command=command,
        lines_affected=lines,
        first_line=first,
        replaced=tuple(sorted(codes.items())),
    )


class _Diverting(ValidationReport):
    """The report while a file in a foreign format is scanned: the same lists and counters (a copy of the
    report's fields, so everything else lands in the report), but the per-line issues the format explains
    are counted here instead of reported."""

    found: ForeignFormat
    lines = 0
    first_line = 0
    last_line = 0
    codes: Counter[str]

    def _divert(self, issue: Issue) -> bool:
        if issue.line <= 0 or not self.found.explains(issue):
            return False
        self.codes[issue.code] += 1
        if issue.line != self.last_line:  # one line's issues arrive together
            self.lines += 1
            self.last_line = issue.line
            self.first_line = self.first_line or issue.line
        return True

    def add(self, issue: Issue) -> None:
        if not self._divert(issue):
            super().add(issue)

    def warn(self, issue: Issue) -> None:
        if not self._divert(issue):
            super().warn(issue)


class _Scan(Protocol):
    """What diagnosing needs of the engine's run."""

    spec: ModelSpec
    report: ValidationReport
    label_files: bool


def _diverting(report: ValidationReport, found: ForeignFormat) -> _Diverting:
    fields = {f.name: getattr(report, f.name) for f in dataclasses.fields(report) if f.init}
    diverting = _Diverting(**fields)
    diverting.found = found
    diverting.codes = Counter()
    return diverting


@contextlib.contextmanager
def diagnosing(run: _Scan, lines: Iterable[bytes], file: str) -> Iterator[Iterable[bytes]]:
    """Around the scan of one file: yields what to scan; when its first lines are in a foreign format, the
    per-line issues the format explains are counted while it is scanned and one file-level issue is added."""
    head, lines = read_head(lines)
    found = detect(head, run.spec)
    if found is None:
        yield lines
        return
    report = run.report
    diverting = _diverting(report, found)
    run.report = diverting
    try:
        yield lines
    finally:
        run.report = report
    if diverting.lines:
        label = file if run.label_files else ""
        report.add(
            diagnosis_issue(found, run.spec, file, label, diverting.lines, diverting.first_line, diverting.codes)
        )
