"""The report as Markdown for people: verdict, what to fix first, numbers, cost."""

from __future__ import annotations

import re
from typing import Any

from shared.text import printable
from shared.validation.codes import CODES
from shared.validation.report import Issue, ValidationReport, plural

_BAR_WIDTH = 40

# File names, URIs, JSON paths, model names and issue messages come from uploads. Backslash-escape
# what could start markup (emphasis, links, headings, tables, strikethrough, code) and write HTML's
# characters as entities, which every renderer honours, unlike backslash-escaped `<` or `&`.
_MARKDOWN_ESCAPES = {ord(c): "\\" + c for c in "\\`*_[]#|~"} | {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"}
# At the start of a list item these would open a nested list or ordered list.
_BLOCK_OPENER = re.compile(r"^(?:[-+]|\d{1,9}[.)])")


def _text(value: Any, *, starts_block: bool = False) -> str:
    """`value` as literal Markdown text: controls (newlines too) shown as escapes, markup escaped."""
    text = printable(str(value)).translate(_MARKDOWN_ESCAPES)
    if starts_block and (opener := _BLOCK_OPENER.match(text)):
        # The marker's last character (`-`, `+`, or the `.` or `)` after a number) is what opens the list.
        return text[: opener.end() - 1] + "\\" + text[opener.end() - 1 :]
    return text


def _code(value: Any, *, in_table: bool = False) -> str:
    """`value` as a code span whose fence is longer than any run of backticks inside it."""
    text = printable(str(value))
    if not text:
        return ""
    if in_table and "|" in text:
        # GFM splits a row at pipes before it finds code spans, and escaping them there goes wrong
        # after a backslash (`\\|` splits); escaped text keeps the pipe in its cell unambiguously.
        return _text(value)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    # The renderer strips one space from each side, so padding keeps a backtick at either end off the fence.
    if text[0] == "`" or text[-1] == "`" or (text[0] == " " and text[-1] == " " and text.strip()):
        text = f" {text} "
    return f"{fence}{text}{fence}"


def _issue_rows(issues: list[Issue], show_file: bool) -> list[str]:
    head = "| File | Line | Code | Where | What to do |" if show_file else "| Line | Code | Where | What to do |"
    rows = [head, "|" + "---|" * (5 if show_file else 4)]
    for issue in issues:
        line = str(issue.line) if issue.line else "—"
        cells = [line, _code(issue.code, in_table=True), _code(issue.path, in_table=True), _text(issue.message)]
        if show_file:
            cells.insert(0, _text(issue.file))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _bin_label(low: int, high: int) -> str:
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def _histogram(bins: list[dict[str, Any]]) -> list[str]:
    peak = max((b["count"] for b in bins), default=0)
    if not peak:
        return []
    width = max(len(_bin_label(b["from"], b["to"])) for b in bins)
    lines = ["```text"]
    for b in bins:
        label = _bin_label(b["from"], b["to"]).rjust(width)
        bar = "█" * round(_BAR_WIDTH * b["count"] / peak)
        if b["count"] and not bar:
            bar = "▏"
        lines.append(f"{label} | {bar} {b['count']:,}")
    lines.append("```")
    return lines


def render_markdown(report: ValidationReport) -> str:
    """A readable report: verdict, errors by code, warnings, statistics with a histogram, cost."""
    out = _summary(report)
    show_file = bool(report.validation_file)
    for section in (
        _errors(report, show_file),
        _warnings(report, show_file),
        _statistics(report.stats),
        _cost(report.cost),
        _notes(report.notes),
    ):
        out.extend(section)
    return "\n".join(out).rstrip() + "\n"


def _summary(report: ValidationReport) -> list[str]:
    verdict = "✅ valid" if report.valid else f"❌ invalid: {plural(report.error_count, 'problem')}"
    out = [
        f"# Dataset validation: {verdict}",
        "",
        f"- Training file: {_code(report.file)} ({plural(report.example_count, 'example')}, "
        f"{plural(report.byte_count, 'byte')})",
    ]
    if report.validation_file:
        out.append(
            f"- Validation file: {_code(report.validation_file)} "
            f"({plural(report.validation_example_count, 'example')}, {plural(report.validation_byte_count, 'byte')})"
        )
    if report.requested_model:
        out.append(f"- Base model: {_code(report.requested_model)} (registry id {_code(report.model)})")
    elif report.model:
        out.append(f"- Base model: {_code(report.model)}")
    if report.strict:
        out.append("- Strict validation: duplicate examples and train/validation overlap are errors")
    if report.hyper_parameters:
        shown = ", ".join(f"{_text(k)}={_text(v)}" for k, v in report.hyper_parameters.items())
        out.append(f"- Hyper-parameters: {shown}")
    out.append("")
    return out


def _errors(report: ValidationReport, show_file: bool) -> list[str]:
    if not report.counts:
        return []
    out = ["## Errors", "", "| Code | Count |", "|---|---|"]
    for code, count in sorted(report.counts.items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"| {_code(code, in_table=True)} | {count:,} |")
    out += ["", "First errors of each code (up to 100 per code are in the JSON report):", ""]
    by_code: dict[str, list[Issue]] = {}
    for issue in report.sorted_issues():
        by_code.setdefault(issue.code, []).append(issue)
    first = sorted((i for issues in by_code.values() for i in issues[:5]), key=lambda i: (i.file, i.line))
    out.extend(_issue_rows(first, show_file))
    out.append("")
    return out


def _warnings(report: ValidationReport, show_file: bool) -> list[str]:
    if not report.warning_counts:
        return []
    counts = ", ".join(f"{_code(c)} x {n:,}" for c, n in sorted(report.warning_counts.items()))
    out = ["## Warnings", "", f"These do not stop tuning: {counts}.", ""]
    hygiene = [_code(c) for c in sorted(report.warning_counts) if c in CODES and CODES[c].hygiene]
    if hygiene:
        strict = "strict validation (TUNEDROP_STRICT_VALIDATION, `tunedrop validate --strict`)"
        them = "it an error" if len(hygiene) == 1 else "them errors"
        out += [f"Vertex AI accepts {' and '.join(hygiene)}; {strict} makes {them}.", ""]
    out.extend(_issue_rows(sorted(report.warnings, key=lambda i: (i.file, i.line))[:20], show_file))
    out.append("")
    return out


def _statistics(stats: dict[str, Any]) -> list[str]:
    if not stats:
        return []
    turns = stats.get("turns", {})
    measured = stats.get("examples_checked", 0)
    with_errors = stats.get("examples_with_errors_measured", 0)
    loosely = f" ({with_errors:,} of them with errors, measured by the text they hold)" if with_errors else ""
    out = [
        "## Statistics",
        "",
        f"- Examples measured: {measured:,}{loosely}",
        f"- Turns: {turns.get('total', 0):,} (mean {turns.get('mean', 0)}, max {turns.get('max', 0)})",
        f"- Characters of text: {stats.get('characters', 0):,}",
    ]
    if stats.get("multimodal_examples"):
        out.append(
            f"- Multimodal examples: {stats['multimodal_examples']:,} ({stats.get('media_parts', 0):,} media parts)"
        )
    tokens = stats.get("tokens_per_example", {})
    if "median" in tokens:
        out += [
            f"- Tokens per example: min {tokens['min']:,}, median {tokens['median']:,}, "
            f"p95 {tokens['p95']:,}, max {tokens['max']:,}",
            f"- Token counts: {_text(tokens.get('method', ''))}",
            *([f"- Media tokens: {_text(tokens['media_assumption'])}"] if tokens.get("media_assumption") else []),
            "",
            "Tokens per example:",
            "",
        ]
        out.extend(_histogram(tokens.get("histogram", [])))
    out.append("")
    return out


def _cost(cost: dict[str, Any]) -> list[str]:
    if not cost:
        return []
    out = [
        "## Training cost estimate",
        "",
        f"- Training tokens: {cost['training_tokens']:,} x {plural(cost['epochs'], 'epoch')} = "
        f"{plural(cost['billable_tokens'], 'billable token')}",
    ]
    if cost.get("scope_note"):
        out.append(f"- {_text(cost['scope_note'], starts_block=True)}")
    if "billable_tokens_ci95" in cost:
        low, high = cost["billable_tokens_ci95"]
        out.append(f"- 95% interval: {low:,} - {high:,} billable tokens")
    if cost.get("epochs_note"):
        out.append(f"- {_text(cost['epochs_note'], starts_block=True)}")
    out.extend(_price(cost))
    out.append(f"- Uncertainty: {_text(cost.get('uncertainty', ''))}")
    out.append("")
    return out


def _price(cost: dict[str, Any]) -> list[str]:
    """The cost lines in dollars, or why there is no figure."""
    if cost.get("estimated_cost_usd") is None:
        return [f"- {_text(cost['price_note'], starts_block=True)}"] if cost.get("price_note") else []
    confirmed = "" if cost.get("price_confirmed") else ", not re-confirmed"
    out = [
        f"- Estimated cost: **{_dollars(cost['estimated_cost_usd'], cost.get('billable_tokens', 0))}** at "
        f"${cost['price_per_million_tokens_usd']}"
        f" per 1M training tokens (price as of {cost.get('price_date') or 'unknown'}{confirmed})"
    ]
    if "estimated_cost_ci95_usd" in cost:
        low_usd, high_usd = cost["estimated_cost_ci95_usd"]
        out.append(f"- Cost range (95%): ${low_usd:,.2f} - ${high_usd:,.2f}")
    return out


def _dollars(amount: float, billable_tokens: int) -> str:
    """An amount to the cent; a cost that rounds to zero but bills tokens is "under $0.01", not "$0.00"."""
    return "under $0.01" if amount < 0.005 and billable_tokens > 0 else f"${amount:,.2f}"


def _notes(notes: list[str]) -> list[str]:
    if not notes:
        return []
    return ["## Notes", "", *(f"- {_text(note, starts_block=True)}" for note in notes), ""]
