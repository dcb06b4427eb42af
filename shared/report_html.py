"""The HTML report of a job and its evaluation: one self-contained page people open from reports/.

render_report(job, examples, token_counts) gives the page: inline CSS and inline SVG charts only, no script, no
URL of any kind (a Content-Security-Policy of `default-src 'none'` says so to the browser too), so it opens the
same from a bucket, a mail attachment or a disk with no network. Sections, each an element with a stable id:
`summary`, `tokens`, `checkpoints`, `gate`, `differences`.

Every value that came from users or from the job record is escaped (html.escape) after its control and bidi
characters are made visible (shared.text.printable) and long values are cut, so a hostile prompt reads as text.
"""

from __future__ import annotations

import heapq
import html
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from shared.evaluation import named_results
from shared.jobs import Job
from shared.text import printable

TOP_DIFFERENCES: Final = 10
HISTOGRAM_BINS: Final = 12
# How much of a value the page keeps: a field of the summary or the gate, and an example's text.
FIELD_LIMIT: Final = 300
TEXT_LIMIT: Final = 4000
# Metric series drawn across checkpoints (the table lists every result; the charts only the first few).
MAX_SERIES_CHARTS: Final = 6

# The gate summary's keys (shared.gate GateSummary), in the order the page lists them, with their labels.
GATE_FIELDS: Final = (
    ("verdict", "verdict"),
    ("reason", "reason"),
    ("metric", "metric"),
    ("examples", "examples"),
    ("candidate_mean", "candidate mean"),
    ("baseline_mean", "baseline mean"),
    ("margin_mean", "margin (candidate - baseline)"),
    ("low", "interval low"),
    ("high", "interval high"),
    ("confidence", "confidence"),
    ("win_rate", "win rate"),
)
PERCENT_FIELDS: Final = frozenset({"confidence", "win_rate"})
# Only these verdicts choose a style; any other value is shown as text with the neutral one.
VERDICT_CLASSES: Final = frozenset({"better", "worse", "inconclusive"})

# Nothing may be fetched: no script, no image, no font, no frame; only the inline style applies.
CONTENT_SECURITY_POLICY: Final = "default-src 'none'; style-src 'unsafe-inline'"

STYLE: Final = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #1f2328; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
section { margin-bottom: 2rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; } th, td { border: 1px solid #d0d7de; padding: .3rem .5rem; }
th { background: #f6f8fa; text-align: left; } td { vertical-align: top; overflow-wrap: anywhere; }
.verdict { font-weight: 700; padding: .1rem .5rem; border-radius: .3rem; background: #eaeef2; }
.verdict-better { background: #dafbe1; color: #116329; } .verdict-worse { background: #ffebe9; color: #a40e26; }
.verdict-inconclusive { background: #fff8c5; color: #7d4e00; }
.note { color: #59636e; font-style: italic; }
.difference { border: 1px solid #d0d7de; border-radius: .4rem; padding: .5rem 1rem; margin-bottom: 1rem; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace, monospace; font-size: .85rem;
  background: #f6f8fa; padding: .4rem; margin: .2rem 0 .6rem; max-height: 16rem; overflow: auto; }
svg text { font-size: 11px; fill: #1f2328; }
.bar { fill: #0969da; } .interval { fill: #54aeff; } .mean { fill: #0550ae; } .series { stroke: #0969da; fill: none; }
.zero { stroke: #59636e; } .margin { stroke: #cf222e; stroke-dasharray: 4 3; } .axis { stroke: #8c959f; }
"""


def render_report(job: Job, examples: Sequence[Mapping[str, Any]] = (), token_counts: Sequence[int] = ()) -> str:
    """The report page of `job`: its summary, the histogram of `token_counts` (tokens per training example), the
    checkpoints' metrics, the gate's verdict (candidate against baseline) and the `examples` (per-example results:
    prompt, reference, candidate, baseline, candidate_score, baseline_score) where the two differ most."""
    sections = (
        _summary_section(job),
        _tokens_section(token_counts),
        _checkpoints_section(job),
        _gate_section(job),
        _differences_section(examples),
    )
    title = f"Tunedrop report: {_field(job.job_id)}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{STYLE}</style></head>\n"
        f"<body><h1>{title}</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


# --- values made safe ---------------------------------------------------------------------------------------------


def _field(value: object, limit: int = FIELD_LIMIT) -> str:
    """A one-line value as HTML text: controls shown as escapes, cut to `limit`, escaped."""
    return html.escape(printable(str(value), limit))


def _text(value: object, limit: int = TEXT_LIMIT) -> str:
    """A multi-line value as HTML text: line breaks kept, every other control shown as an escape, cut, escaped."""
    # Anything but a string (Gemini contents, say) is shown as the JSON it would be written as.
    shown_as = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1, default=str)
    text = shown_as.replace("\r\n", "\n")
    cut = len(text) - limit
    kept = text[:limit] if cut > 0 else text
    shown = "\n".join(printable(line) for line in kept.split("\n"))
    if cut > 0:
        shown += f"… ({cut:,} more character{'' if cut == 1 else 's'})"
    return html.escape(shown)


def _finite(value: object) -> float | None:
    """A number as a float; None for anything else (a bool, a string, NaN, an infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _number(value: object) -> str:
    """A value for people: whole numbers as they are, other numbers to 4 significant digits, the rest as text."""
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    number = _finite(value)
    return f"{number:.4g}" if number is not None else _field(value)


def _percent(value: object) -> str:
    number = _finite(value)
    return f"{number:.1%}" if number is not None else _field(value)


def _section(section_id: str, heading: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{heading}</h2>\n{body}\n</section>'


def _definitions(rows: Iterable[tuple[str, str]]) -> str:
    """A definition list of (label, HTML already made safe)."""
    return "<dl>" + "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows) + "</dl>"


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def _verdict_badge(verdict: Mapping[str, Any] | None) -> str:
    if not verdict or "verdict" not in verdict:
        return _note("not evaluated")
    value = str(verdict["verdict"])
    style = f" verdict-{value}" if value in VERDICT_CLASSES else ""
    return f'<span class="verdict{style}">{_field(value)}</span>'


def _job_verdict(job: Job) -> Mapping[str, Any] | None:
    # Job.verdict is being added with the evaluation gate (issue 15); a record without it has no verdict.
    verdict = getattr(job, "verdict", None)
    return verdict if isinstance(verdict, Mapping) else None


# --- summary ------------------------------------------------------------------------------------------------------


def _summary_section(job: Job) -> str:
    alias = str(getattr(job, "promote_as", "") or "")
    rows = [
        ("job", _field(job.job_id)),
        ("team", _field(job.team) if job.team else _note("default")),
        ("base model", _field(job.base_model)),
        ("state", _field(job.state.value)),
        ("tuned model", _field(job.tuned_model) if job.tuned_model else _note("none yet")),
        ("endpoint", _field(job.endpoint) if job.endpoint else _note("none yet")),
        ("alias", _field(alias) if alias else _note("none: the job promotes no alias")),
        ("verdict", _verdict_badge(_job_verdict(job))),
    ]
    return _section("summary", "Summary", _definitions(rows))


# --- tokens per example -------------------------------------------------------------------------------------------


def _tokens_section(token_counts: Sequence[int]) -> str:
    counts = sorted(int(count) for count in token_counts if _finite(count) is not None and count >= 0)
    if not counts:
        return _section("tokens", "Tokens per example", _note("No token counts: none were given for this job."))
    median = counts[len(counts) // 2]
    facts = _definitions(
        [
            ("examples", _number(len(counts))),
            ("min", _number(counts[0])),
            ("median", _number(median)),
            ("max", _number(counts[-1])),
        ]
    )
    return _section("tokens", "Tokens per example", facts + _histogram_svg(_bins(counts)))


def _bins(counts: Sequence[int]) -> list[tuple[int, int, int]]:
    """Equal-width bins of whole numbers over sorted `counts`: (first, last inclusive, how many), none empty-edged."""
    first, last = counts[0], counts[-1]
    width = max(1, math.ceil((last - first + 1) / HISTOGRAM_BINS))
    bins = [(start, min(start + width - 1, last), 0) for start in range(first, last + 1, width)]
    tallies = [0] * len(bins)
    for count in counts:
        tallies[(count - first) // width] += 1
    return [(start, end, tally) for (start, end, _), tally in zip(bins, tallies, strict=True)]


def _histogram_svg(bins: Sequence[tuple[int, int, int]]) -> str:
    width, height, bottom = 1000, 220, 40
    slot = width / len(bins)
    tallest = max(tally for _, _, tally in bins)
    parts = [f'<svg role="img" aria-label="histogram of tokens per example" width="{width}" height="{height}">']
    for index, (start, end, tally) in enumerate(bins):
        bar = (height - bottom - 20) * tally / tallest
        x, y = index * slot, height - bottom - bar
        exact = f"{start:,}" if start == end else f"{start:,} to {end:,}"
        label = _compact(start) if start == end else f"{_compact(start)}-{_compact(end)}"
        parts.append(
            f'<rect class="bar" x="{x + 2:.1f}" y="{y:.1f}" width="{slot - 4:.1f}" height="{bar:.1f}">'
            f"<title>{exact} tokens: {tally:,} example{'' if tally == 1 else 's'}</title></rect>"
            f'<text x="{x + slot / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{tally:,}</text>'
            f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 14:.1f}" text-anchor="middle">{label}</text>'
        )
    parts.append(f'<text x="{width / 2:.0f}" y="{height - 6}" text-anchor="middle">tokens per example</text></svg>')
    return "".join(parts)


def _compact(count: int) -> str:
    """A bin edge short enough for its label (the bar's tooltip has it exactly): 950, 9,500, 95k, 9.5M."""
    if count < 10_000:
        return f"{count:,}"
    if count < 1_000_000:
        return f"{count / 1000:.3g}k"
    return f"{count / 1_000_000:.3g}M"


# --- checkpoints --------------------------------------------------------------------------------------------------


def _checkpoints_section(job: Job) -> str:
    """Each checkpoint with the metrics evaluation during tuning gave it, named as `tunedrop job` names them."""
    if not job.checkpoints and not job.evaluations:
        return _section("checkpoints", "Checkpoints", _note("No checkpoints or evaluation during tuning."))
    runs = {str(run.get("checkpoint_id")): run for run in named_results(job.evaluations, job.evaluation)}
    checkpoints = job.checkpoints or [{"checkpoint_id": key} for key in runs]
    rows = [
        _checkpoint_row(checkpoint, runs.get(str(checkpoint.get("checkpoint_id", "")), {}))
        for checkpoint in checkpoints
    ]
    table = (
        "<table><thead><tr><th>checkpoint</th><th>epoch</th><th>step</th><th>metrics</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    return _section("checkpoints", "Checkpoints", table + _series_charts(checkpoints, runs))


def _checkpoint_row(checkpoint: Mapping[str, Any], run: Mapping[str, Any]) -> str:
    metrics = [f"{_field(_metric_label(result))}: {_number(result.get('value'))}" for result in run.get("metrics", [])]
    error = run.get("error")
    if isinstance(error, Mapping):
        metrics.append(f"evaluation failed: {_field(error.get('message', ''))}")
    cells = (
        _field(checkpoint.get("checkpoint_id", "")),
        _number(checkpoint["epoch"]) if "epoch" in checkpoint else "",
        _number(checkpoint["step"]) if "step" in checkpoint else "",
        "<br>".join(metrics) or _note("no metrics"),
    )
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _metric_label(result: Mapping[str, Any]) -> str:
    """As `tunedrop job` says it: the manifest's name and the kind (or the kind alone), then the aggregation."""
    kind = str(result.get("metric", ""))
    named = f"{result['name']} ({kind})" if result.get("name") else kind
    return f"{named} {str(result.get('aggregation', '')).lower()}".strip()


def _series_charts(checkpoints: Sequence[Mapping[str, Any]], runs: Mapping[str, Mapping[str, Any]]) -> str:
    """One small chart per metric across the checkpoints (the first MAX_SERIES_CHARTS), when there are two or more."""
    if len(checkpoints) < 2:
        return ""
    names = [str(checkpoint.get("checkpoint_id", "")) for checkpoint in checkpoints]
    series: dict[str, list[float | None]] = {}
    for index, name in enumerate(names):
        for result in runs.get(name, {}).get("metrics", []):
            values = series.setdefault(_metric_label(result), [None] * len(names))
            values[index] = _finite(result.get("value"))
    charts = [_series_svg(label, names, values) for label, values in list(series.items())[:MAX_SERIES_CHARTS]]
    return "".join(chart for chart in charts if chart)


def _series_svg(label: str, checkpoints: Sequence[str], values: Sequence[float | None]) -> str:
    """A metric's value at each checkpoint, as a line; "" when fewer than two checkpoints have one."""
    points = [(index, value) for index, value in enumerate(values) if value is not None]
    if len(points) < 2:
        return ""
    width, height, pad = 340, 120, 24
    low, high = min(v for _, v in points), max(v for _, v in points)
    spread = (high - low) or 1.0

    def x(index: int) -> float:
        return pad + (width - 2 * pad) * index / (len(values) - 1)

    def y(value: float) -> float:
        return height - 2 * pad - (height - 3 * pad - 10) * (value - low) / spread

    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in points)
    dots = "".join(
        f'<circle class="mean" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3"><title>checkpoint {_field(checkpoints[i], 40)}: '
        f"{_number(v)}</title></circle>"
        f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="middle">{_field(checkpoints[i], 12)}</text>'
        for i, v in points
    )
    return (
        f'<svg role="img" aria-label="{_field(label)} per checkpoint" width="{width}" height="{height}">'
        f'<text x="{pad}" y="14">{_field(label, 60)}: {_number(points[0][1])} → {_number(points[-1][1])}</text>'
        f'<polyline class="series" points="{line}"/>{dots}</svg>'
    )


# --- the gate -----------------------------------------------------------------------------------------------------


def _gate_section(job: Job) -> str:
    verdict = _job_verdict(job)
    if not verdict:
        return _section("gate", "Candidate against baseline", _note("Not evaluated: the job has no verdict yet."))
    gate = getattr(job, "gate", None)
    margin = _finite(gate.get("margin", 0) if isinstance(gate, Mapping) else 0) or 0.0
    rows = [(label, _gate_value(key, verdict[key])) for key, label in GATE_FIELDS if key in verdict]
    rows.append(("gate margin", _number(margin)))
    body = _definitions(rows) + _interval_chart(verdict, margin)
    return _section("gate", "Candidate against baseline", body)


def _gate_value(key: str, value: object) -> str:
    if key == "verdict":
        return _verdict_badge({"verdict": value})
    formats: dict[str, Callable[[object], str]] = {"reason": _field, "metric": _field}
    return formats.get(key, _percent if key in PERCENT_FIELDS else _number)(value)


def _interval_chart(verdict: Mapping[str, Any], margin: float) -> str:
    """The interval low..high of the candidate's margin over the baseline, against zero and the gate's margin."""
    low, high = _finite(verdict.get("low")), _finite(verdict.get("high"))
    if low is None or high is None:
        return _note("No confidence interval was computed.")
    mean = _finite(verdict.get("margin_mean"))
    marks = [low, high, margin, 0.0, *([mean] if mean is not None else [])]
    left, right = min(marks), max(marks)
    pad = (right - left) * 0.1 or 0.1
    left, right = left - pad, right + pad
    width, height, side = 1000, 120, 30

    def x(value: float) -> float:
        return side + (width - 2 * side) * (value - left) / (right - left)

    confidence = _percent(verdict["confidence"]) if _finite(verdict.get("confidence")) is not None else "confidence"
    parts = [
        f'<svg role="img" aria-label="interval of the margin against the gate" width="{width}" height="{height}">',
        f'<line class="axis" x1="{side}" y1="70" x2="{width - side}" y2="70"/>',
        f'<line class="zero" x1="{x(0):.1f}" y1="30" x2="{x(0):.1f}" y2="95"/>',
        f'<text x="{x(0):.1f}" y="110" text-anchor="middle">0</text>',
        f'<line class="margin" x1="{x(margin):.1f}" y1="25" x2="{x(margin):.1f}" y2="95"/>',
        f'<text x="{x(margin):.1f}" y="20" text-anchor="middle">gate margin {_number(margin)}</text>',
        f'<rect class="interval" x="{x(low):.1f}" y="60" width="{max(x(high) - x(low), 1):.1f}" height="20">'
        f"<title>{confidence} interval {_number(low)} to {_number(high)}</title></rect>",
        f'<text x="{x(low):.1f}" y="52" text-anchor="end">{_number(low)}</text>',
        f'<text x="{x(high):.1f}" y="52" text-anchor="start">{_number(high)}</text>',
    ]
    if mean is not None:
        parts.append(
            f'<circle class="mean" cx="{x(mean):.1f}" cy="70" r="5"><title>mean {_number(mean)}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --- the examples that differ most --------------------------------------------------------------------------------


def _difference(example: Mapping[str, Any]) -> float:
    candidate, baseline = _finite(example.get("candidate_score")), _finite(example.get("baseline_score"))
    if candidate is None or baseline is None:
        return -1.0  # an example without both scores comes after every scored one
    return abs(candidate - baseline)


def _differences_section(examples: Sequence[Mapping[str, Any]]) -> str:
    heading = "Where candidate and baseline differ most"
    if not examples:
        return _section("differences", heading, _note("No per-example results."))
    top = heapq.nlargest(TOP_DIFFERENCES, examples, key=_difference)
    intro = _note(f"The {len(top)} of {len(examples):,} examples with the largest score difference.")
    return _section("differences", heading, intro + "".join(_example_article(e) for e in top))


def _example_article(example: Mapping[str, Any]) -> str:
    candidate, baseline = example.get("candidate_score"), example.get("baseline_score")
    difference = _difference(example)
    shown = _number(difference) if difference >= 0 else "—"
    scores = f"candidate {_number(candidate)}, baseline {_number(baseline)}, difference {shown}"
    texts = "".join(
        f'<h3>{key}</h3><div class="text">{_text(example.get(key, ""))}</div>'
        for key in ("prompt", "reference", "candidate", "baseline")
    )
    return f'<article class="difference"><p>{scores}</p>{texts}</article>'
