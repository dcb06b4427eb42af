"""Checking one example: a fast typed path for clean lines and a precise path for everything else.

The fast path decodes a line straight into msgspec Structs and only answers "clean, and here are
its numbers" or "not sure". Any doubt sends the line to the precise path, which decodes it again
with the standard library and reports every problem with its JSON path. The precise path is the
authority; the fast path must never call a line clean that the precise path would not.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from shared.validation.registry import ModelSpec, registry

# Part kinds a tuning example may use; each part holds exactly one. Proto JSON accepts both spellings.
TEXT_KEYS = ("text",)
FILE_KEYS = ("fileData", "file_data")
CALL_KEYS = ("functionCall", "function_call")
RESPONSE_KEYS = ("functionResponse", "function_response")
PART_KINDS = frozenset(TEXT_KEYS + FILE_KEYS + CALL_KEYS + RESPONSE_KEYS)
VIDEO_METADATA_KEYS = ("videoMetadata", "video_metadata")
MEDIA_RESOLUTION_KEYS = ("mediaResolution", "media_resolution")
# Qualify a fileData part, not kinds of their own.
PART_MODIFIERS = frozenset(VIDEO_METADATA_KEYS + MEDIA_RESOLUTION_KEYS)
SYSTEM_KEYS = ("systemInstruction", "system_instruction")
# A top-level generationConfig carrying mediaResolution is a documented setting of the image, document
# and video tuning examples (https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/tuning/video).
GENERATION_CONFIG_KEYS = ("generationConfig", "generation_config")
TOP_LEVEL_KEYS = frozenset({"contents", "messages", "tools", *SYSTEM_KEYS, *GENERATION_CONFIG_KEYS})
FILE_DATA_KEYS = ("mimeType", "mime_type", "fileUri", "file_uri", "displayName", "display_name")
CONTENT_ROLES = ("user", "model")
# A turn without a role is a user turn. Vertex AI's Content reference says the role is optional ("can be
# left blank or unset", https://docs.cloud.google.com/python/docs/reference/aiplatform/latest/google.cloud.aiplatform_v1beta1.types.Content.html)
# without naming a default; Google's SDKs default it to "user"
# (https://firebase.google.com/docs/reference/kotlin/com/google/firebase/ai/type/Content), and Google's
# function-calling tuning example leaves it unset on a functionResponse turn, the user's side of a call
# (https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/tuning/function-calling). So for
# alternation an unset role counts as "user".
UNSET_ROLE = "user"
# http:// is refused: Tunedrop fetches nothing over plain HTTP, and a dataset should not depend on it.
URI_SCHEMES = ("gs://", "https://")
# generationConfig.mediaResolution values (the GenerationConfig reference); a part's own level may also be
# ULTRA_HIGH, which the 2026-05-20 release note allows for images at part level (unconfirmed on a Google page).
MEDIA_RESOLUTIONS = frozenset(
    {"MEDIA_RESOLUTION_UNSPECIFIED", "MEDIA_RESOLUTION_LOW", "MEDIA_RESOLUTION_MEDIUM", "MEDIA_RESOLUTION_HIGH"}
)
PART_MEDIA_RESOLUTIONS = MEDIA_RESOLUTIONS | {"MEDIA_RESOLUTION_ULTRA_HIGH"}
# Vertex AI drops an example whose video is over the length limit and fails the job when it drops more
# than this share of the dataset (the video tuning page, "Dropped examples").
MAX_DROPPED_SHARE = 0.10
# Tokens a turn may add beyond its text (role and turn markers); every turn's JSON is longer than this.
TURN_OVERHEAD_TOKENS = 8


# --------------------------------------------------------------------------------------------
# How much of one line Tunedrop reads. Both bounds are reading policy, not token counts: they refuse
# a line without building it, so that one hostile line cannot take the memory of the whole run.

# Bytes per token that no real example reaches. No published figure bounds the bytes one Gemini
# token can stand for (Gemini counts with the Gemma 3 SentencePiece vocabulary of 262,144 pieces,
# which is not documented piece by piece), and JSON may spell one character in 6 bytes (\u0041) or
# 12 (a surrogate pair). Escape-heavy text stays well below 64: CJK written with ASCII escapes takes
# 6 bytes per character and a token covers a few characters, code full of \n and \" 2 bytes per
# escaped character. 64 is a choice with a wide margin, not a measured maximum; a line over it is
# refused as line_too_long, which claims nothing about its tokens.
BYTES_PER_TOKEN_BOUND = 64
# Room for what the per-token figure does not cover: media parts (at most a few dozen per example,
# each a fileData of about a kilobyte, six times that if escaped), keys and indentation.
LINE_SLACK_BYTES = 1 << 20
# JSON values (objects, arrays and the items in them) per token of the model's limit that no real
# example reaches: a value that carries content costs a token or more (a number is its digits and a
# comma, a text part its text), and a chat turn is five values around tens to thousands of tokens;
# only a line made mostly of brackets and commas gets near it. Decoding, checking and counting cost
# up to a few hundred bytes per value, so this caps the memory a line of countless tiny parts or
# empty arrays can take (under 50 MiB at 131,072 values, CountTokens request included).
VALUES_PER_TOKEN_BOUND = 1


def max_line_bytes(spec: ModelSpec) -> int:
    """The longest line (newline included) read for ``spec``; a longer one is refused unread."""
    return spec.max_tokens_per_example * BYTES_PER_TOKEN_BOUND + LINE_SLACK_BYTES


def max_json_values(spec: ModelSpec) -> int:
    """The most JSON values one line may hold for ``spec``."""
    return spec.max_tokens_per_example * VALUES_PER_TOKEN_BOUND


# A JSON string with its escapes, unrolled so that the engine never backtracks.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def json_values(raw: bytes, most: int) -> int:
    """About how many JSON values ``raw`` holds, counted in C without decoding: its commas plus its
    "{" and "[". For JSON that is at least the number of values less one, and at most twice it.

    Punctuation inside strings counts too unless that sum is above ``most``: only then are the strings
    cut out (a copy no longer than the line) for the true figure. A line shorter than ``most`` bytes
    cannot exceed it. For a line that is not JSON the figure is only a measure of its size.
    """
    count = raw.count(b",") + raw.count(b"{") + raw.count(b"[")
    if count <= most:
        return count
    bare = _JSON_STRING.sub(b"", raw)
    return bare.count(b",") + bare.count(b"{") + bare.count(b"[")


# --------------------------------------------------------------------------------------------
# Fast path: typed Structs. Unknown fields are forbidden so that anything unexpected falls back.
# msgspec keeps the last value of a key repeated in one object without a word: duplicate_key is found
# only on lines the precise path reads (finding it here would cost every clean line a scan).


class FileData(msgspec.Struct, forbid_unknown_fields=True):
    mimeType: str | None = None
    mime_type: str | None = None
    fileUri: str | None = None
    file_uri: str | None = None
    displayName: str | None = None
    display_name: str | None = None


class Part(msgspec.Struct, forbid_unknown_fields=True):
    text: str | None = None
    fileData: FileData | None = None
    file_data: FileData | None = None
    # Raw (empty, so false, when absent): msgspec cannot decode an object into "Raw | None".
    functionCall: msgspec.Raw = msgspec.Raw()
    function_call: msgspec.Raw = msgspec.Raw()
    functionResponse: msgspec.Raw = msgspec.Raw()
    function_response: msgspec.Raw = msgspec.Raw()
    videoMetadata: msgspec.Raw = msgspec.Raw()
    video_metadata: msgspec.Raw = msgspec.Raw()


class Content(msgspec.Struct, forbid_unknown_fields=True):
    role: str | None = None
    parts: list[Part] | None = None


class Message(msgspec.Struct, forbid_unknown_fields=True):
    role: str | None = None
    content: str | None = None


class GenerationConfig(msgspec.Struct, forbid_unknown_fields=True):
    # The one generationConfig field a tuning example documents; any other sends the line to the precise path.
    mediaResolution: (
        Literal[
            "MEDIA_RESOLUTION_UNSPECIFIED", "MEDIA_RESOLUTION_LOW", "MEDIA_RESOLUTION_MEDIUM", "MEDIA_RESOLUTION_HIGH"
        ]
        | None
    ) = None


class Example(msgspec.Struct, forbid_unknown_fields=True):
    contents: list[Content] | None = None
    messages: list[Message] | None = None
    systemInstruction: Content | None = None
    system_instruction: Content | None = None
    tools: msgspec.Raw = msgspec.Raw()
    # Only video examples depend on it, and they take the precise path.
    generationConfig: GenerationConfig | None = None


FAST_DECODER = msgspec.json.Decoder(Example)

# The fastest path, for the common text-only example: the decoder itself enforces roles, non-empty
# lists and non-empty text, so only the turn order is left to check in Python. gc=False because
# these objects never form cycles, and tracking millions of them would cost time.
NonEmptyText = Annotated[str, msgspec.Meta(min_length=1)]


class TextPart(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    text: NonEmptyText


class TextTurn(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    role: Literal["user", "model"]
    parts: Annotated[list[TextPart], msgspec.Meta(min_length=1)]


class TextSystem(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    parts: Annotated[list[TextPart], msgspec.Meta(min_length=1)]
    role: str | None = None


class TextExample(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    # Named "turns" in Python (like MessagesExample's) so the hot loop reads either format's turns alike.
    turns: Annotated[list[TextTurn], msgspec.Meta(min_length=1)] = msgspec.field(name="contents")
    systemInstruction: TextSystem | None = None


class TextMessage(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    role: Literal["system", "user", "model"]
    content: NonEmptyText


class MessagesExample(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    turns: Annotated[list[TextMessage], msgspec.Meta(min_length=1)] = msgspec.field(name="messages")


TEXT_DECODER = msgspec.json.Decoder(TextExample)
MESSAGES_DECODER = msgspec.json.Decoder(MessagesExample)


def text_chars(ex: TextExample) -> int:
    """Characters of a decoded text-only example's text; -1 when its turns do not alternate or end with model.

    Returns a bare int rather than a Shape because it runs once per line on the hot path.
    """
    chars = 0
    previous = ""
    for turn in ex.turns:
        role = turn.role
        if role == previous:
            return -1
        previous = role
        for part in turn.parts:
            chars += len(part.text)
    if previous != "model":
        return -1
    system = ex.systemInstruction
    if system is not None:
        for part in system.parts:
            chars += len(part.text)
    return chars


def messages_chars(ex: MessagesExample) -> int:
    """Characters of a decoded legacy example; -1 unless system comes first only and turns alternate to model."""
    chars = 0
    previous = ""
    for i, message in enumerate(ex.turns):
        role = message.role
        chars += len(message.content)
        if role == "system" and i == 0:
            continue
        if role == previous or role == "system":
            return -1
        previous = role
    if previous != "model":
        return -1
    return chars


class Shape:
    """What the statistics need from one example (a plain slotted class: one is made per line)."""

    __slots__ = ("chars", "media", "media_tokens", "turns", "uris")

    def __init__(
        self,
        turns: int = 0,
        chars: int = 0,
        media_tokens: int = 0,
        media: int = 0,
        uris: list[tuple[str, str, str | None]] | None = None,
    ) -> None:
        self.turns = turns
        self.chars = chars
        self.media_tokens = media_tokens  # estimated tokens of its media parts
        self.media = media
        # (gs:// URI, JSON path, media kind such as "video"; None when the MIME type names no kind)
        self.uris = uris if uris is not None else []


def fast_check(ex: Example, spec: ModelSpec) -> Shape | None:
    """The example's shape when it is clean for ``spec``; None when the precise path must decide.

    A second description of the rules ExampleChecker states (and TextExample, narrower still, a third):
    kept because it is measured to pay. ``python -m tests.bench validator`` (tests/bench/validator.py,
    "fast tiers against the precise tier alone") validates the same files with and without the fast
    tiers; the multimodal file is the one whose lines take this function. One flat function (radon F)
    for the same reason: a call per part or turn would show in those figures. A rule changed in
    ExampleChecker must be changed here (or refused here, so that the line falls back); the
    hypothesis tests in tests/unit/validation/test_validation_fuzz.py check that this path never
    passes a line the precise path refuses.
    """
    if spec.format == "messages":
        return _fast_messages(ex)
    contents = ex.contents
    if not contents or ex.messages is not None:
        return None
    chars = 0
    media = 0
    media_tokens = 0
    uris: list[tuple[str, str, str | None]] = []
    per_kind: dict[str, int] | None = None
    previous = ""
    for t, turn in enumerate(contents):
        role = turn.role
        if role is None:
            role = UNSET_ROLE
        if role == previous or (role != "user" and role != "model"):
            return None
        previous = role
        parts = turn.parts
        if not parts:
            return None
        for p, part in enumerate(parts):
            text = part.text
            data = part.fileData
            if data is None:
                data = part.file_data
            elif part.file_data is not None:
                return None
            if text is not None:
                if not text or data is not None or _has_call(part) or _has_modifier(part):
                    return None
                chars += len(text)
                continue
            if data is not None:
                if _has_call(part):
                    return None
                mime = data.mimeType if data.mimeType is not None else data.mime_type
                uri = data.fileUri if data.fileUri is not None else data.file_uri
                if not mime or not uri or (data.mimeType is not None and data.mime_type is not None):
                    return None
                if data.fileUri is not None and data.file_uri is not None:
                    return None
                rule = spec.media_kind(mime)
                # Video goes to the precise path, whose checker keeps the dataset-wide video rules.
                if (
                    rule is None
                    or rule.kind == "video"
                    or not uri.startswith(URI_SCHEMES)
                    or not uri.partition("://")[2]
                ):
                    return None
                if per_kind is None:
                    per_kind = {}
                seen = per_kind[rule.kind] = per_kind.get(rule.kind, 0) + 1
                if rule.max_per_example is not None and seen > rule.max_per_example:
                    return None
                media += 1
                media_tokens += rule.token_estimate
                if uri.startswith("gs://"):
                    uris.append((uri, f"$.contents[{t}].parts[{p}]", rule.kind))
                continue
            if _has_modifier(part):
                return None
            # A function call or response: exactly one of them, shaped like {"name": ...}; its JSON counts
            # toward the example's size as text does.
            raws = [
                r for r in (part.functionCall, part.function_call, part.functionResponse, part.function_response) if r
            ]
            if not spec.function_calling or len(raws) != 1 or not _named_object(raws[0]):
                return None
            chars += len(raws[0])
    if previous != "model":
        return None
    system = ex.systemInstruction
    if system is not None and ex.system_instruction is not None:
        return None
    system = system or ex.system_instruction
    if system is not None:
        if not system.parts:
            return None
        for part in system.parts:
            if not part.text or part.fileData or part.file_data or _has_call(part) or _has_modifier(part):
                return None
            chars += len(part.text)
    chars += len(ex.tools)  # the declarations' JSON, counted like text (empty when absent)
    return Shape(turns=len(contents), chars=chars, media_tokens=media_tokens, media=media, uris=uris)


def _fast_messages(ex: Example) -> Shape | None:
    messages = ex.messages
    if not messages or ex.contents is not None or ex.systemInstruction or ex.system_instruction or ex.tools:
        return None
    if ex.generationConfig is not None:
        return None
    chars = 0
    previous = ""
    for i, message in enumerate(messages):
        role = message.role
        text = message.content
        if not text:
            return None
        chars += len(text)
        if role == "system" and i == 0:
            continue
        if role == previous or (role != "user" and role != "model"):
            return None
        previous = role
    if previous != "model":
        return None
    return Shape(turns=len(messages), chars=chars)


def _has_call(part: Part) -> bool:
    return bool(part.functionCall or part.function_call or part.functionResponse or part.function_response)


def _has_modifier(part: Part) -> bool:
    return bool(part.videoMetadata or part.video_metadata)


_NAMED = msgspec.json.Decoder(dict[str, Any])


def _named_object(raw: msgspec.Raw) -> bool:
    try:
        value = _NAMED.decode(raw)
    except msgspec.DecodeError:
        return False
    name = value.get("name")
    return isinstance(name, str) and bool(name)


# --------------------------------------------------------------------------------------------
# Precise path: plain Python objects, every problem with its path.

# Per-example tallies kept next to the media kinds' counts in ExampleChecker's per_kind (no media kind
# has these names).
_CALLS = "function calls"
_DROPPED = "dropped"
_MEASURED = "videos of known length"
# A protobuf Duration in JSON: seconds with up to nine decimals and an "s" (videoMetadata offsets).
_DURATION = re.compile(r"(\d+)(\.\d{1,9})?s")


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    path: str = ""
    warning: bool = False


class LineError(Exception):
    """The line is not a JSON object; carries the one problem that says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Python refuses to turn more than this many digits into an int (sys.get_int_max_str_digits), and json
# reports it as a ValueError; JSON itself sets no limit.
_INT_DIGITS_PYTHON_CONVERTS = 4300


def _parse_int(digits: str) -> int | float:
    """A JSON integer; a longer one than Python converts becomes a float (infinite past about 308 digits),
    which is what proto JSON readers make of a number anyway (a Struct holds doubles)."""
    if len(digits) <= _INT_DIGITS_PYTHON_CONVERTS:
        return int(digits)
    return float(digits)


class DuplicateKeys(dict[str, Any]):
    """A line whose JSON spells a key twice in one object, anywhere in it: the last value is kept, as
    json does, and ``repeated`` names the keys for the checker to report."""

    repeated: tuple[str, ...] = ()


# The keys the line being decoded repeats, per thread (decode_line may run in several at once).
_REPEATED = threading.local()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        _REPEATED.keys.extend(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return obj


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int, object_pairs_hook=_object)
_BOM = "\ufeff"


def decode_line(raw: bytes) -> Any:
    """Decode one line precisely, raising LineError for blank, non-UTF-8, non-JSON or trailing data."""
    stripped = raw.strip()
    if not stripped:
        raise LineError(Problem("empty_line", "Blank line: remove it; every line must be one example."))
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = len(raw) - len(raw.lstrip()) + exc.start
        raise LineError(
            Problem(
                "not_utf8",
                f"Line is not UTF-8 (invalid byte 0x{stripped[exc.start]:02x} at byte {offset + 1}): "
                "save the file as UTF-8.",
            )
        ) from None
    if text.startswith(_BOM):
        raise LineError(
            Problem("not_json", "Line starts with a byte order mark (U+FEFF): save the file as UTF-8 without BOM.")
        )
    repeated: list[str] = []
    _REPEATED.keys = repeated
    try:
        value, end = _DECODER.raw_decode(text)
    except json.JSONDecodeError as exc:
        raise LineError(Problem("not_json", f"Line is not valid JSON: {exc.msg} at column {exc.colno}.")) from None
    except ValueError as exc:  # NaN or Infinity, refused by parse_constant
        raise LineError(Problem("not_json", f"Line is not valid JSON: {exc}; use a number or a string.")) from None
    except RecursionError:
        raise LineError(Problem("not_json", "Line nests JSON too deeply to read: flatten the structure.")) from None
    if end != len(text):
        column = end + 1
        raise LineError(
            Problem(
                "trailing_data",
                f"Line has more data after the JSON object at column {column}: "
                "put one example per line and nothing after it.",
            )
        )
    if not isinstance(value, dict):
        raise LineError(
            Problem("not_object", f'Line must be a JSON object like {{"contents": [...]}}, not {_kind(value)}.')
        )
    if repeated:
        value = DuplicateKeys(value)
        value.repeated = tuple(dict.fromkeys(repeated))
    return value


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _pick(obj: dict[str, Any], keys: tuple[str, ...], path: str, problems: list[Problem]) -> tuple[str, Any]:
    """(key, value) of the first present spelling; reports both spellings given at once."""
    present = [k for k in keys if k in obj]
    if len(present) > 1:
        problems.append(
            Problem("duplicate_field", f"Both {' and '.join(present)} are set: keep only {present[0]}.", path)
        )
    if not present:
        return keys[0], None
    return present[0], obj[present[0]]


def _unknown_fields(
    obj: dict[str, Any], known: Collection[str], path: str, not_part_of: str, problems: list[Problem]
) -> None:
    """A warning for each key of ``obj`` outside ``known``: 'Field "key" is not part of <not_part_of>.'"""
    for key in obj:
        if key not in known:
            problems.append(
                Problem("unknown_field", f'Field "{key}" is not part of {not_part_of}.', f"{path}.{key}", True)
            )


def _unknown_part_key(key: str, path: str) -> Problem:
    """A part key that is neither a part kind nor a fileData modifier."""
    if key in ("inlineData", "inline_data"):
        message = (
            "inlineData is not accepted in tuning datasets: upload the file to Cloud Storage and "
            'reference it with {"fileData": {"mimeType": ..., "fileUri": "gs://..."}}.'
        )
    else:
        message = (
            f'Unknown part kind "{key}": a part holds exactly one of text, fileData, functionCall or functionResponse.'
        )
    return Problem("bad_part", message, f"{path}.{key}")


def _unsupported_media(spec: ModelSpec, mime: str) -> str:
    """Why a MIME type cannot be tuned on: the kind and the models that tune it, or the types this model takes."""
    elsewhere = registry().media_models(mime)
    if elsewhere is not None:
        kind, models = elsewhere
        kinds = ", ".join(sorted(spec.media)) or "text only"
        return (
            f'{spec.name} is not tuned on {kind} (MIME type "{mime}"; it takes: {kinds}). '
            f"Models that tune {kind}: {', '.join(models)}."
        )
    allowed = ", ".join(sorted(spec.mime_types)) or "none (text only)"
    return f'MIME type "{mime}" is not supported by {spec.name} for tuning; use one of: {allowed}.'


class ExampleChecker:
    """The precise checks for one model; one instance serves a whole dataset (training and validation
    files), and keeps what the dataset-wide video rules need: the mediaResolution of the first example
    with a video, and how many examples Vertex AI will drop."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.resolution = ""  # the example's generationConfig.mediaResolution while it is checked
        self.video_resolution: str | None = None  # of the first example with a video ("" when unset)
        self.dropped_examples = 0  # examples whose video is certainly over the length limit
        self.unmeasured_examples = 0  # other examples with a video whose length the example does not state

    def check(self, obj: dict[str, Any]) -> tuple[list[Problem], Shape]:
        problems: list[Problem] = []
        shape = Shape()
        _unknown_fields(obj, TOP_LEVEL_KEYS, "$", "a tuning example and is ignored: remove it", problems)
        if isinstance(obj, DuplicateKeys):
            problems.append(_duplicate_keys(obj.repeated))
        if self.spec.format == "messages":
            self._messages(obj, problems, shape)
        else:
            self.resolution = self._generation_config(obj, problems)
            self._contents(obj, problems, shape)
        return problems, shape

    def dataset_problems(self, examples: int) -> list[Problem]:
        """The dataset-wide problems once every file is read (``examples``: training and validation)."""
        dropped = self.dropped_examples
        if dropped + self.unmeasured_examples <= MAX_DROPPED_SHARE * examples:
            return []
        if dropped <= MAX_DROPPED_SHARE * examples:
            return [self._may_drop(examples)]
        return [
            Problem(
                "too_many_dropped_examples",
                f"{dropped:,} of the {examples:,} examples have a video over the length {self.spec.name} accepts: "
                f"Vertex AI drops such examples and fails the job when it drops more than "
                f"{MAX_DROPPED_SHARE:.0%} of the dataset. Cut the videos (videoMetadata start and end offsets) "
                "or use MEDIA_RESOLUTION_LOW, which allows longer videos.",
            )
        ]

    def _may_drop(self, examples: int) -> Problem:
        """More than the share Vertex AI tolerates may be dropped, for all the data shows: a warning."""
        video = self.spec.media.get("video")
        high = video.max_seconds if video else None
        low = video.max_seconds_low_resolution if video else None
        limits = f"{high:,} seconds" if high else "the model's limit"
        if low:
            limits += f" ({low:,} at MEDIA_RESOLUTION_LOW)"
        return Problem(
            "may_drop_too_many_examples",
            f"{self.unmeasured_examples:,} of the {examples:,} examples hold a video whose length Tunedrop cannot "
            f"see (no videoMetadata endOffset): Vertex AI drops an example whose video is longer than {limits} and "
            f"fails the job when it drops more than {MAX_DROPPED_SHARE:.0%} of the dataset. Check the videos' "
            "lengths, or state each segment with videoMetadata startOffset and endOffset.",
            "",
            True,
        )

    def _generation_config(self, obj: dict[str, Any], problems: list[Problem]) -> str:
        """The example's mediaResolution ("" when unset); checks the generationConfig it sits in."""
        key, config = _pick(obj, GENERATION_CONFIG_KEYS, "$", problems)
        if config is None:
            return ""
        path = f"$.{key}"
        if not isinstance(config, dict):
            problems.append(
                Problem(
                    "bad_media_resolution",
                    f'{key} must be an object like {{"mediaResolution": "MEDIA_RESOLUTION_LOW"}}, not {_kind(config)}.',
                    path,
                )
            )
            return ""
        _unknown_fields(
            config, MEDIA_RESOLUTION_KEYS, path, "generationConfig that the tuning pages document", problems
        )
        level_key, level = _pick(config, MEDIA_RESOLUTION_KEYS, path, problems)
        if level is None:
            return ""
        if level not in MEDIA_RESOLUTIONS:
            problems.append(_bad_resolution(level, MEDIA_RESOLUTIONS, f"{path}.{level_key}"))
            return ""
        return str(level)

    # ---- Gemini format

    def _contents(self, obj: dict[str, Any], problems: list[Problem], shape: Shape) -> None:
        contents = obj.get("contents")
        if "messages" in obj:
            if contents is None:
                problems.append(
                    Problem(
                        "missing_contents",
                        f'{self.spec.name} expects {{"contents": [{{"role": "user", "parts": [...]}}, ...]}}; '
                        '"messages" is the legacy gemini-1.0-pro-002 format: convert each message to a turn.',
                        "$.contents",
                    )
                )
                return
            problems.append(
                Problem("unknown_field", '"messages" is ignored next to "contents": remove it.', "$.messages", True)
            )
        if not isinstance(contents, list) or not contents:
            problems.append(
                Problem("missing_contents", 'Example needs a non-empty "contents" list of turns.', "$.contents")
            )
        else:
            self._turns(contents, problems, shape)
        key, system = _pick(obj, SYSTEM_KEYS, "$", problems)
        if system is not None:
            self._system(system, f"$.{key}", problems, shape)
        tools = obj.get("tools")
        if tools is not None:
            # The declarations count toward the example's size like text (and are sent to CountTokens).
            shape.chars += _json_chars(tools)

    def _turns(self, contents: list[Any], problems: list[Problem], shape: Shape) -> None:
        shape.turns = len(contents)
        previous = ""
        last_role = ""
        per_kind: dict[str, int] = {}
        for t, turn in enumerate(contents):
            path = f"$.contents[{t}]"
            if not isinstance(turn, dict):
                problems.append(
                    Problem(
                        "bad_turn", f'Turn must be an object {{"role": ..., "parts": [...]}}, not {_kind(turn)}.', path
                    )
                )
                previous = last_role = ""
                continue
            _unknown_fields(turn, ("role", "parts"), path, "a turn and is ignored", problems)
            role = turn.get("role")
            if role is None or role == "":  # unset or blank: see UNSET_ROLE
                role = UNSET_ROLE
            if role not in CONTENT_ROLES:
                problems.append(Problem("bad_role", _role_message(role), f"{path}.role"))
            elif role == previous:
                problems.append(
                    Problem(
                        "role_order",
                        f'Turn {t + 1} repeats role "{role}": turns must alternate user and model; '
                        "merge the two turns' parts into one turn.",
                        f"{path}.role",
                    )
                )
            previous = role if isinstance(role, str) else ""
            last_role = previous
            parts = turn.get("parts")
            if not isinstance(parts, list) or not parts:
                problems.append(
                    Problem(
                        "missing_parts", 'Turn needs a non-empty "parts" list, e.g. [{"text": "..."}].', f"{path}.parts"
                    )
                )
                continue
            for p, part in enumerate(parts):
                self._part(part, f"{path}.parts[{p}]", problems, shape, per_kind)
        if last_role != "model" and last_role in CONTENT_ROLES:
            problems.append(
                Problem(
                    "last_turn_not_model",
                    f'The last turn has role "{last_role}": end each example with the "model" turn you want the '
                    "model to learn.",
                    f"$.contents[{len(contents) - 1}].role",
                )
            )
        if per_kind.get("video"):
            self._video_example(per_kind, problems)

    def _video_example(self, per_kind: dict[str, int], problems: list[Problem]) -> None:
        """The dataset-wide video rules for one example with a video: one mediaResolution for every such
        example ("Mixing different media resolutions isn't supported", the video tuning page), and the
        count of examples Vertex AI drops."""
        if per_kind.get(_DROPPED):
            self.dropped_examples += 1
        elif per_kind.get(_MEASURED, 0) < per_kind["video"]:
            self.unmeasured_examples += 1
        if self.video_resolution is None:
            self.video_resolution = self.resolution
        elif self.resolution != self.video_resolution:
            first = self.video_resolution or "unset"
            problems.append(
                Problem(
                    "mixed_media_resolution",
                    f"This example's generationConfig.mediaResolution is {self.resolution or 'unset'}, an earlier "
                    f"example with a video has {first}: Vertex AI requires the same mediaResolution on every line "
                    "of a video dataset (training and validation); set the same value on all of them.",
                    "$.generationConfig.mediaResolution",
                )
            )

    def _part(self, part: Any, path: str, problems: list[Problem], shape: Shape, per_kind: dict[str, int]) -> None:
        if not isinstance(part, dict):
            problems.append(
                Problem("bad_part", f'Part must be an object like {{"text": "..."}}, not {_kind(part)}.', path)
            )
            return
        # Proto JSON reads a null field as unset (as the fast path's decoder does), so a null sibling
        # of the part's real kind is no second kind; a part of nulls only is judged as written.
        present = {k: v for k, v in part.items() if v is not None} or part
        kinds = [k for k in present if k in PART_KINDS]
        others = [k for k in present if k not in PART_KINDS and k not in PART_MODIFIERS]
        problems.extend(_unknown_part_key(key, path) for key in others)
        if not kinds:
            if not others:
                problems.append(Problem("bad_part", 'Part is empty: give it one of "text" or "fileData".', path))
            return
        if len(kinds) > 1:
            problems.append(
                Problem(
                    "bad_part",
                    f"Part has {' and '.join(kinds)}: a part holds exactly one kind; split it into separate parts.",
                    path,
                )
            )
        kind = kinds[0]
        value = part[kind]
        if kind in TEXT_KEYS:
            if not _nonempty_str(value):
                problems.append(Problem("bad_text", _text_message(value), f"{path}.text"))
            else:
                shape.chars += len(value)
        elif kind in FILE_KEYS:
            self._file(value, f"{path}.{kind}", problems, shape, per_kind, path)
            self._modifiers(part, path, problems, per_kind)
        else:
            self._function_part(kind, value, f"{path}.{kind}", problems, shape, per_kind)
        if kind not in FILE_KEYS:
            for key in part:
                if key in PART_MODIFIERS:
                    problems.append(Problem("bad_part", f"{key} only applies to a fileData part.", f"{path}.{key}"))

    def _function_part(
        self, kind: str, value: Any, path: str, problems: list[Problem], shape: Shape, per_kind: dict[str, int]
    ) -> None:
        """A functionCall or functionResponse part: refused on a model that does not tune function calls
        (once per example), its JSON counted toward the example's size like text."""
        if not isinstance(value, dict) or not _nonempty_str(value.get("name")):
            problems.append(
                Problem(
                    "bad_part", f'{kind} must be an object with a "name", e.g. {{"name": "get_weather", ...}}.', path
                )
            )
            return
        shape.chars += _json_chars(value)
        if self.spec.function_calling:
            return
        per_kind[_CALLS] = per_kind.get(_CALLS, 0) + 1
        if per_kind[_CALLS] == 1:
            accepting = ", ".join(registry().function_calling_models()) or "none"
            problems.append(
                Problem(
                    "function_calling_not_supported",
                    f"{self.spec.name} does not tune on function calls: Vertex AI refuses examples with "
                    f"functionCall or functionResponse parts for it. Models that accept them: {accepting}.",
                    path,
                )
            )

    def _modifiers(self, part: dict[str, Any], path: str, problems: list[Problem], per_kind: dict[str, int]) -> None:
        """A fileData part's mediaResolution (Gemini 3 only) and videoMetadata (a video's segment, whose
        length Vertex AI checks)."""
        key, level = _pick(part, MEDIA_RESOLUTION_KEYS, path, problems)
        resolution = self.resolution
        if level is not None:
            if not self.spec.part_media_resolution:
                problems.append(
                    Problem(
                        "media_resolution_not_supported",
                        f"A per-part {key} is for Gemini 3 and later models only, not {self.spec.name}: set "
                        "generationConfig.mediaResolution for the whole example instead.",
                        f"{path}.{key}",
                    )
                )
            elif not isinstance(level, dict) or level.get("level") not in PART_MEDIA_RESOLUTIONS:
                shown = level.get("level") if isinstance(level, dict) else level
                problems.append(_bad_resolution(shown, PART_MEDIA_RESOLUTIONS, f"{path}.{key}", nested=True))
            else:
                resolution = level["level"]
        if _pick(part, VIDEO_METADATA_KEYS, path, problems)[1] is not None:
            self._video_length(part, path, resolution, problems, per_kind)

    def _video_length(
        self, part: dict[str, Any], path: str, resolution: str, problems: list[Problem], per_kind: dict[str, int]
    ) -> None:
        """A video segment longer than the model takes at ``resolution``: Vertex AI drops the example."""
        data = part.get("fileData", part.get("file_data"))
        mime = data.get("mimeType", data.get("mime_type")) if isinstance(data, dict) else None
        rule = self.spec.media_kind(mime) if isinstance(mime, str) else None
        key = "videoMetadata" if "videoMetadata" in part else "video_metadata"
        metadata = part[key]
        if rule is None or rule.kind != "video":
            problems.append(Problem("bad_part", f"{key} only applies to a video part.", f"{path}.{key}"))
            return
        try:
            seconds = _segment_seconds(metadata)
        except ValueError:
            problems.append(
                Problem(
                    "bad_video_metadata",
                    f'{key} must be {{"startOffset": "5s", "endOffset": "25s"}} with durations in seconds '
                    "and the end after the start.",
                    f"{path}.{key}",
                )
            )
            return
        if seconds is None:
            return
        per_kind[_MEASURED] = per_kind.get(_MEASURED, 0) + 1
        allowed = rule.seconds_allowed(resolution)
        if allowed is None or seconds <= allowed:
            return
        per_kind[_DROPPED] = 1
        problems.append(
            Problem(
                "video_too_long",
                f"The video segment is {seconds:g} seconds long; {self.spec.name} takes at most {allowed:,} seconds "
                f"at {resolution or 'the default mediaResolution'}: Vertex AI drops this example (not trained on, "
                "not billed). Shorten the segment, or use MEDIA_RESOLUTION_LOW, which allows longer videos.",
                f"{path}.{key}",
            )
        )

    def _file(
        self, data: Any, path: str, problems: list[Problem], shape: Shape, per_kind: dict[str, int], part_path: str
    ) -> None:
        spec = self.spec
        if not spec.multimodal:
            problems.append(
                Problem(
                    "media_not_supported",
                    f"{spec.name} tunes on text only: remove the fileData part or pick a multimodal model.",
                    path,
                )
            )
            return
        if not isinstance(data, dict):
            problems.append(
                Problem("bad_file_data", 'fileData must be an object {"mimeType": ..., "fileUri": ...}.', path)
            )
            return
        _unknown_fields(data, FILE_DATA_KEYS, path, "fileData and is ignored", problems)
        mime_key, mime = _pick(data, ("mimeType", "mime_type"), path, problems)
        uri_key, uri = _pick(data, ("fileUri", "file_uri"), path, problems)
        rule = None
        if not _nonempty_str(mime):
            problems.append(
                Problem(
                    "bad_file_data", 'fileData needs a "mimeType" string such as "image/jpeg".', f"{path}.{mime_key}"
                )
            )
        else:
            rule = spec.media_kind(mime)
            if rule is None:
                problems.append(Problem("unsupported_mime_type", _unsupported_media(spec, mime), f"{path}.{mime_key}"))
        if not _nonempty_str(uri):
            problems.append(
                Problem(
                    "bad_file_uri", 'fileData needs a "fileUri" such as "gs://bucket/image.jpg".', f"{path}.{uri_key}"
                )
            )
        elif uri.startswith("http://"):
            problems.append(
                Problem(
                    "insecure_file_uri",
                    f'fileUri "{_clip(uri)}" uses plain http://: give the file as gs://bucket/object or an '
                    "https:// URL.",
                    f"{path}.{uri_key}",
                )
            )
        elif not uri.startswith(URI_SCHEMES) or len(uri.split("://", 1)[1]) == 0:
            problems.append(
                Problem(
                    "bad_file_uri",
                    f'fileUri "{_clip(uri)}" is not a gs:// or https:// URI: upload the file to Cloud Storage '
                    "and use its gs://bucket/object URI.",
                    f"{path}.{uri_key}",
                )
            )
        elif uri.startswith("gs://"):
            shape.uris.append((uri, part_path, None if rule is None else rule.kind))
        if rule is None:
            return
        seen = per_kind[rule.kind] = per_kind.get(rule.kind, 0) + 1
        if rule.max_per_example is not None and seen == rule.max_per_example + 1:
            problems.append(
                Problem(
                    "too_many_media",
                    f"Example has more than {rule.max_per_example} {rule.kind} file(s), the most {spec.name} "
                    f"accepts per example: split it into several examples.",
                    part_path,
                )
            )
        shape.media += 1
        shape.media_tokens += rule.token_estimate

    def _system(self, system: Any, path: str, problems: list[Problem], shape: Shape) -> None:
        bad = 'systemInstruction must be {"parts": [{"text": "..."}]} (its role is ignored).'
        if not isinstance(system, dict):
            problems.append(Problem("bad_system_instruction", bad, path))
            return
        parts = system.get("parts")
        if not isinstance(parts, list) or not parts:
            problems.append(Problem("bad_system_instruction", bad, f"{path}.parts"))
            return
        _unknown_fields(system, ("role", "parts"), path, "systemInstruction", problems)
        for p, part in enumerate(parts):
            ppath = f"{path}.parts[{p}]"
            if not isinstance(part, dict) or set(part) != {"text"}:
                problems.append(Problem("bad_system_instruction", "A systemInstruction part holds only text.", ppath))
            elif not _nonempty_str(part["text"]):
                problems.append(Problem("bad_text", _text_message(part["text"]), f"{ppath}.text"))
            else:
                shape.chars += len(part["text"])

    # ---- legacy gemini-1.0-pro-002 format

    def _messages(self, obj: dict[str, Any], problems: list[Problem], shape: Shape) -> None:
        messages = obj.get("messages")
        if not isinstance(messages, list) or not messages:
            if "contents" in obj:
                message = (
                    f'{self.spec.name} uses the legacy format {{"messages": [{{"role": ..., "content": ...}}]}}, '
                    'not "contents": convert the turns, or tune a Gemini 1.5 or later model.'
                )
            else:
                message = 'Example needs a non-empty "messages" list of {"role": ..., "content": ...} objects.'
            problems.append(Problem("missing_contents", message, "$.messages"))
            return
        for key in ("contents", *SYSTEM_KEYS, "tools", *GENERATION_CONFIG_KEYS):
            if key in obj:
                problems.append(
                    Problem(
                        "unknown_field", f'"{key}" is not used by {self.spec.name} and is ignored.', f"$.{key}", True
                    )
                )
        shape.turns = len(messages)
        previous = ""
        for i, message in enumerate(messages):
            path = f"$.messages[{i}]"
            if not isinstance(message, dict):
                problems.append(
                    Problem(
                        "bad_turn", f'Message must be {{"role": ..., "content": "..."}}, not {_kind(message)}.', path
                    )
                )
                previous = ""
                continue
            _unknown_fields(message, ("role", "content"), path, "a message", problems)
            role = message.get("role")
            if role == "system" and i == 0:
                pass
            elif role == "system":
                problems.append(
                    Problem(
                        "bad_role",
                        'Only the first message may have role "system": move it to the front.',
                        f"{path}.role",
                    )
                )
            elif role not in CONTENT_ROLES:
                problems.append(Problem("bad_role", _role_message(role, legacy=True), f"{path}.role"))
            elif role == previous:
                problems.append(
                    Problem(
                        "role_order",
                        f'Message {i + 1} repeats role "{role}": messages must alternate user and model.',
                        f"{path}.role",
                    )
                )
            if role in CONTENT_ROLES:
                previous = role
            content = message.get("content")
            if isinstance(content, str) and content:
                shape.chars += len(content)
            else:
                problems.append(Problem("bad_text", _text_message(content, "content"), f"{path}.content"))
        if previous and previous != "model":
            problems.append(
                Problem(
                    "last_turn_not_model",
                    f'The last message has role "{previous}": end each example with the "model" message to learn.',
                    f"$.messages[{len(messages) - 1}].role",
                )
            )


def _json_chars(value: Any) -> int:
    """The length of ``value`` as compact JSON: what a function payload or tools block adds to an example's
    size (0 for one nested too deep to serialise: text_bound still sends such an example to an exact count)."""
    try:
        return len(json_text(value))
    except RecursionError:
        return 0


def _segment_seconds(metadata: Any) -> float | None:
    """The length of a videoMetadata segment in seconds; None when it runs to the video's unknown end.
    Raises ValueError when the offsets are not Durations or the end is not after the start."""
    if not isinstance(metadata, dict):
        raise ValueError("videoMetadata is not an object")
    offsets = []
    for keys in (("startOffset", "start_offset"), ("endOffset", "end_offset")):
        raw = next((metadata[k] for k in keys if k in metadata), None)
        match = _DURATION.fullmatch(raw) if isinstance(raw, str) else None
        if raw is not None and match is None:
            raise ValueError(f"{raw!r} is not a Duration")
        offsets.append(float(match.group()[:-1]) if match else None)
    start, end = offsets
    if end is None:
        return None
    if end <= (start or 0.0):
        raise ValueError("the segment ends before it starts")
    return end - (start or 0.0)


def _bad_resolution(value: Any, allowed: Collection[str], path: str, nested: bool = False) -> Problem:
    shown = json.dumps(value, default=str)[:60]
    example = '{"level": "MEDIA_RESOLUTION_LOW"}' if nested else '"MEDIA_RESOLUTION_LOW"'
    return Problem(
        "bad_media_resolution",
        f"mediaResolution {shown} is not one of {', '.join(sorted(allowed))}: write it like {example}.",
        path,
    )


def _duplicate_keys(repeated: tuple[str, ...]) -> Problem:
    keys = ", ".join(json.dumps(k) for k in repeated[:5])
    return Problem(
        "duplicate_key",
        f"The line repeats the key(s) {keys} within one object; only the last value is read here, and protobuf "
        "JSON readers refuse such input: keep one of each.",
        "$",
        True,
    )


def _role_message(role: Any, legacy: bool = False) -> str:
    allowed = '"system" (first message only), "user" or "model"' if legacy else '"user" or "model"'
    if role is None:
        return f"Turn has no role: set it to {allowed}."
    hint = ""
    if role == "assistant":
        hint = ' Gemini calls the assistant "model".'
    elif role == "system" and not legacy:
        hint = ' Put system text in the example\'s "systemInstruction" instead.'
    shown = json.dumps(role)[:40]
    return f"Role {shown} is not allowed: use {allowed}.{hint}"


def _text_message(value: Any, field_name: str = "text") -> str:
    if isinstance(value, str):
        return f"{field_name} is empty: write the text, or remove the part."
    return f"{field_name} must be a string, not {_kind(value)}."


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_bound(request: dict[str, Any]) -> int:
    """An upper bound of the tokens of a request's text (see tokens.py): UTF-8 bytes plus overhead.

    Function calls, responses and the tools block count as their JSON's UTF-8 bytes plus a turn's overhead:
    proven for the text they hold, assumed for the markup Gemini wraps them in (not documented), which the
    JSON's own braces, quotes and commas are taken to cover."""
    total = 0
    turns = request.get("contents") or []
    system = request.get("systemInstruction")
    for turn in [*turns, *([system] if system else [])]:
        total += TURN_OVERHEAD_TOKENS
        for part in turn.get("parts") or []:
            text = part.get("text")
            if isinstance(text, str):
                # +1: SentencePiece may prepend one whitespace marker to each text segment.
                total += len(text.encode("utf-8")) + 1
            else:
                payload = part.get("functionCall", part.get("functionResponse"))
                if payload is not None:
                    total += TURN_OVERHEAD_TOKENS + _json_bytes(payload)
    tools = request.get("tools")
    if tools:
        total += TURN_OVERHEAD_TOKENS + _json_bytes(tools)
    return total


def _json_bytes(value: Any) -> int:
    try:
        return len(json_text(value).encode("utf-8"))
    except RecursionError:
        return UNMEASURABLE


def json_text(value: Any) -> str:
    """``value`` as compact JSON: how function payloads and tools are measured and counted as text.

    Raises RecursionError for a value nested almost as deep as the decoder could read (json.dumps is called
    from a deeper stack than the decoder was)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# What a value too deeply nested to serialise is taken to measure: far over every model's limit, so that
# the bound sends the example to an exact count rather than passing it unmeasured.
UNMEASURABLE = 1 << 40


def to_request(obj: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """The example as a CountTokens-shaped request: camelCase contents (+ systemInstruction)."""
    if spec.format == "messages":
        contents: list[dict[str, Any]] = []
        system: dict[str, Any] | None = None
        for message in obj.get("messages") or []:
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                continue
            if message.get("role") == "system":
                system = {"parts": [{"text": message["content"]}]}
            else:
                contents.append({"role": message.get("role"), "parts": [{"text": message["content"]}]})
        request: dict[str, Any] = {"contents": contents}
        if system:
            request["systemInstruction"] = system
        return request
    request = {"contents": [_camel_turn(t) for t in obj.get("contents") or [] if isinstance(t, dict)]}
    system_value = obj.get("systemInstruction", obj.get("system_instruction"))
    if isinstance(system_value, dict):
        request["systemInstruction"] = _camel_turn(system_value)
    # CountTokensRequest has tools and generationConfig fields too (aiplatform v1 prediction_service.proto):
    # the declarations are counted, and mediaResolution sets what the media cost.
    tools = obj.get("tools")
    if isinstance(tools, list) and tools:
        request["tools"] = tools
    config = obj.get("generationConfig", obj.get("generation_config"))
    if isinstance(config, dict):
        level = config.get("mediaResolution", config.get("media_resolution"))
        if level in MEDIA_RESOLUTIONS:
            request["generationConfig"] = {"mediaResolution": level}
    return request


_CAMEL = {
    "file_data": "fileData",
    "mime_type": "mimeType",
    "file_uri": "fileUri",
    "function_call": "functionCall",
    "function_response": "functionResponse",
    "video_metadata": "videoMetadata",
    "display_name": "displayName",
}


def _camel_turn(turn: dict[str, Any]) -> dict[str, Any]:
    parts = []
    for part in turn.get("parts") or []:
        if isinstance(part, dict):
            parts.append(_camel_part(part))
    out: dict[str, Any] = {"parts": parts}
    if isinstance(turn.get("role"), str):
        out["role"] = turn["role"]
    return out


def _camel_part(part: dict[str, Any]) -> dict[str, Any]:
    """The part in camelCase; the part itself when it already is, since a request may hold a hundred
    thousand parts and copying each would double what the example costs in memory."""
    if _CAMEL.keys().isdisjoint(part) and all(
        not isinstance(v, dict) or _CAMEL.keys().isdisjoint(v) for v in part.values()
    ):
        return part
    return {_CAMEL.get(k, k): _camel_value(v) for k, v in part.items()}


def _camel_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {_CAMEL.get(k, k): v for k, v in value.items()}
    return value
