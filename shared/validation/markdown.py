"""The report as Markdown for people: verdict, what to fix first, numbers, cost."""

from __future__ import annotations

from typing import Any

from shared.validation.report import Issue, ValidationReport

_BAR_WIDTH = 40


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _issue_rows(issues: list[Issue], show_file: bool) -> list[str]:
    head = "| File | Line | Code | Where | What to do |" if show_file else "| Line | Code | Where | What to do |"
    rows = [head, "|" + "---|" * (5 if show_file else 4)]
    for issue in issues:
        line = str(issue.line) if issue.line else "—"
        cells = [line, f"`{issue.code}`", f"`{issue.path}`" if issue.path else "", _cell(issue.message)]
        if show_file:
            cells.insert(0, _cell(issue.file or ""))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _histogram(bins: list[dict[str, Any]]) -> list[str]:
    peak = max((b["count"] for b in bins), default=0)
    if not peak:
        return []
    width = max(len(f"{b['from']:,}-{b['to']:,}") for b in bins)
    lines = ["```text"]
    for b in bins:
        label = f"{b['from']:,}-{b['to']:,}".rjust(width)
        bar = "█" * round(_BAR_WIDTH * b["count"] / peak)
        if b["count"] and not bar:
            bar = "▏"
        lines.append(f"{label} | {bar} {b['count']:,}")
    lines.append("```")
    return lines


def render_markdown(report: ValidationReport) -> str:
    """A readable report: verdict, errors by code, warnings, statistics with a histogram, cost."""
    out: list[str] = []
    verdict = "✅ valid" if report.valid else f"❌ invalid: {report.error_count:,} problem(s)"
    out.append(f"# Dataset validation: {verdict}")
    out.append("")
    out.append(f"- Training file: `{report.file}` ({report.example_count:,} examples, {report.byte_count:,} bytes)")
    if report.validation_file:
        out.append(
            f"- Validation file: `{report.validation_file}` ({report.validation_example_count:,} examples, "
            f"{report.validation_byte_count:,} bytes)"
        )
    if report.model:
        out.append(f"- Base model: `{report.model}`")
    if report.hyper_parameters:
        shown = ", ".join(f"{k}={v}" for k, v in report.hyper_parameters.items())
        out.append(f"- Hyper-parameters: {shown}")
    out.append("")
    show_file = bool(report.validation_file)
    if report.counts:
        out.append("## Errors")
        out.append("")
        out.append("| Code | Count |")
        out.append("|---|---|")
        for code, count in sorted(report.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"| `{code}` | {count:,} |")
        out.append("")
        out.append("First errors of each code (up to 100 per code are in the JSON report):")
        out.append("")
        by_code: dict[str, list[Issue]] = {}
        for issue in report.sorted_issues():
            by_code.setdefault(issue.code, []).append(issue)
        first = sorted((i for issues in by_code.values() for i in issues[:5]), key=lambda i: (i.file, i.line))
        out.extend(_issue_rows(first, show_file))
        out.append("")
    if report.warning_counts:
        out.append("## Warnings")
        out.append("")
        counts = ", ".join(f"`{c}` x {n:,}" for c, n in sorted(report.warning_counts.items()))
        out.append(f"These do not stop tuning: {counts}.")
        out.append("")
        out.extend(_issue_rows(sorted(report.warnings, key=lambda i: (i.file, i.line))[:20], show_file))
        out.append("")
    stats = report.stats
    if stats:
        out.append("## Statistics")
        out.append("")
        turns = stats.get("turns", {})
        out.append(f"- Examples checked: {stats.get('examples_checked', 0):,}")
        out.append(f"- Turns: {turns.get('total', 0):,} (mean {turns.get('mean', 0)}, max {turns.get('max', 0)})")
        out.append(f"- Characters of text: {stats.get('characters', 0):,}")
        if stats.get("multimodal_examples"):
            out.append(
                f"- Multimodal examples: {stats['multimodal_examples']:,} ({stats.get('media_parts', 0):,} media parts)"
            )
        tokens = stats.get("tokens_per_example", {})
        if "median" in tokens:
            out.append(
                f"- Tokens per example: min {tokens['min']:,}, median {tokens['median']:,}, "
                f"p95 {tokens['p95']:,}, max {tokens['max']:,}"
            )
            out.append(f"- Token counts: {tokens.get('method', '')}")
            out.append("")
            out.append("Tokens per example:")
            out.append("")
            out.extend(_histogram(tokens.get("histogram", [])))
        out.append("")
    cost = report.cost
    if cost:
        out.append("## Training cost estimate")
        out.append("")
        out.append(
            f"- Training tokens: {cost['training_tokens']:,} x {cost['epochs']} epoch(s) = "
            f"{cost['billable_tokens']:,} billable tokens"
        )
        if "billable_tokens_ci95" in cost:
            low, high = cost["billable_tokens_ci95"]
            out.append(f"- 95% interval: {low:,} - {high:,} billable tokens")
        if cost.get("epochs_note"):
            out.append(f"- {cost['epochs_note']}")
        if cost.get("estimated_cost_usd") is not None:
            confirmed = "" if cost.get("price_confirmed") else ", not re-confirmed"
            line = (
                f"- Estimated cost: **${cost['estimated_cost_usd']:,.2f}** at ${cost['price_per_million_tokens_usd']}"
                f" per 1M training tokens (price as of {cost.get('price_date') or 'unknown'}{confirmed})"
            )
            out.append(line)
            if "estimated_cost_ci95_usd" in cost:
                low_usd, high_usd = cost["estimated_cost_ci95_usd"]
                out.append(f"- Cost range (95%): ${low_usd:,.2f} - ${high_usd:,.2f}")
        elif cost.get("price_note"):
            out.append(f"- {cost['price_note']}")
        out.append(f"- Uncertainty: {cost.get('uncertainty', '')}")
        out.append("")
    if report.notes:
        out.append("## Notes")
        out.append("")
        out.extend(f"- {note}" for note in report.notes)
        out.append("")
    return "\n".join(out).rstrip() + "\n"
