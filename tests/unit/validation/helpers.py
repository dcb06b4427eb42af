"""Small builders and in-memory fakes for the validator's tests (no mocks)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from shared.validation import TokenCountUnavailable, ValidationReport, validate_dataset
from shared.validation.registry import ModelSpec

FILE = "gs://ds/incoming/train.jsonl"


def turn(role: str, *texts: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"text": t} for t in texts]}


def example(*turns: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"contents": list(turns or (turn("user", "What is 2 + 2?"), turn("model", "4."))), **extra}


def file_part(uri: str = "gs://b/cat.png", mime: str = "image/png") -> dict[str, Any]:
    return {"fileData": {"mimeType": mime, "fileUri": uri}}


GOOD = example()
LEGACY_GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "model", "content": "hello"}]}


def line(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value if value.endswith(b"\n") else value + b"\n"
    return json.dumps(value).encode() + b"\n"


def body(*values: Any) -> bytes:
    return b"".join(line(v) for v in values)


def run(*values: Any, model: str | ModelSpec = "gemini-2.5-flash", **kwargs: Any) -> ValidationReport:
    return validate_dataset(io.BytesIO(body(*values)), file=FILE, model=model, **kwargs)


def codes(report: ValidationReport) -> list[tuple[int, str]]:
    return [(i.line, i.code) for i in report.sorted_issues()]


def warnings(report: ValidationReport) -> list[tuple[int, str]]:
    return [(i.line, i.code) for i in report.warnings]


class FakeCounter:
    """A token counter with a fixed rule; records what it was asked."""

    def __init__(
        self,
        rule: Callable[[Mapping[str, Any]], int],
        *,
        name: str = "fake",
        counts_media: bool = True,
        fail: bool = False,
    ) -> None:
        self.rule = rule
        self.name = name
        self.counts_media = counts_media
        self.fail = fail
        self.calls: list[Mapping[str, Any]] = []
        self._lock = threading.Lock()

    def count(self, request: Mapping[str, Any], model: str) -> int:
        with self._lock:
            self.calls.append(request)
        if self.fail:
            raise TokenCountUnavailable("fake counter is down")
        return self.rule(request)


def text_chars(request: Mapping[str, Any]) -> int:
    turns = [*request.get("contents", []), *([request["systemInstruction"]] if "systemInstruction" in request else [])]
    return sum(len(p.get("text", "")) for t in turns for p in t["parts"])
