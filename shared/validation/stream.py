"""A first streaming validator: one JSON object per line, each with a non-empty `contents` list.

It reads the file once, line by line, and never holds more than one line in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from shared.validation.report import Issue, ValidationReport


def validate_stream(lines: Iterable[bytes], *, file: str) -> ValidationReport:
    report = ValidationReport(file=file)
    for number, raw in enumerate(lines, start=1):
        report.byte_count += len(raw)
        stripped = raw.strip()
        if not stripped:
            report.add(Issue(number, "empty_line", "Blank line: remove it; every line must be one example."))
            continue
        try:
            text = stripped.decode("utf-8")
        except UnicodeDecodeError as exc:
            report.add(Issue(number, "not_utf8", f"Line is not UTF-8 (byte {exc.start}): save the file as UTF-8."))
            continue
        try:
            example = json.loads(text)
        except json.JSONDecodeError as exc:
            report.add(Issue(number, "not_json", f"Line is not valid JSON: {exc.msg} at column {exc.colno}."))
            continue
        if not isinstance(example, dict):
            report.add(Issue(number, "not_object", 'Line must be a JSON object like {"contents": [...]}.'))
            continue
        report.example_count += 1
        contents = example.get("contents")
        if not isinstance(contents, list) or not contents:
            report.add(
                Issue(
                    number,
                    "missing_contents",
                    'Example needs a non-empty "contents" list of turns.',
                    path="$.contents",
                )
            )
    if report.example_count == 0 and report.error_count == 0:
        report.add(Issue(0, "empty_dataset", "The file holds no examples: upload at least one."))
    return report
