"""The HTML report (shared/report_html.py): its content as written, and as headless Chromium renders it.

The browser is Debian's `chromium` package (`make test` installs it when missing). Without it the browser tests
fail, naming the fix: a report no browser has rendered is not a tested report. Each run keeps a screenshot under
test-artifacts/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import fields, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from shared.jobs import Job, JobState, new_job
from shared.report_html import TEXT_LIMIT, TOP_DIFFERENCES, render_report

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SECTIONS = ("summary", "tokens", "checkpoints", "gate", "differences")
T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
HOSTILE = "</script><img src=x onerror=alert(1)>"
# Markup, a terminal escape, a bell, a right-to-left override and 100 KB of text.
HOSTILE_PROMPT = HOSTILE + "\x1b[31mred\x07 \u202eevil\n" + "x" * 100_000
# Attributes through which a page can make the browser fetch something.
FETCHING_ATTRIBUTES = frozenset(
    {"src", "href", "xlink:href", "srcset", "action", "formaction", "poster", "data", "background", "ping"}
)
VOID_ELEMENTS = frozenset({"meta", "br", "img", "input", "link", "hr", "source", "area", "base", "col", "wbr"})
EVALUATION = {
    "metrics": [
        {"name": "fluency", "kind": "pointwise", "prompt_template": "Rate {response}", "aggregations": ["average"]},
        {"name": "exact", "kind": "exact_match", "aggregations": ["average"]},
    ],
    "output_uri_prefix": "gs://b/reports/kitchen/j/evaluation/",
}
VERDICT = {
    "metric": "exact_match",
    "examples": 120,
    "candidate_mean": 0.8125,
    "baseline_mean": 0.55,
    "margin_mean": 0.2625,
    "low": 0.18,
    "high": 0.34,
    "confidence": 0.95,
    "win_rate": 0.4,
    "verdict": "better",
    "reason": "the interval's low end 0.18 is above the margin 0.05",
}


def with_gate_fields(job: Job, **values: Any) -> Job:
    """The job with promote_as, gate and verdict set. They are being added to Job with the evaluation gate
    (issue 15); until a field exists it is set as a plain attribute, which is how render_report reads it."""
    known = {item.name for item in fields(Job)}
    job = replace(job, **{key: value for key, value in values.items() if key in known})
    for key, value in values.items():
        if key not in known:
            object.__setattr__(job, key, value)
    return job


def finished_job(**gate_fields: Any) -> Job:
    job = new_job(
        job_id="recipes-0123456789ab",
        bucket="datasets",
        object_name="incoming/kitchen/recipes.jsonl",
        generation="7",
        base_model="gemini-2.5-flash",
        now=T0,
    )
    job = replace(
        job,
        state=JobState.SUCCEEDED,
        team="kitchen",
        tuned_model="projects/p/locations/us-central1/models/42@1",
        endpoint="projects/p/locations/us-central1/endpoints/7",
        evaluation=EVALUATION,
        checkpoints=[{"checkpoint_id": str(n), "epoch": n, "step": 5 * n} for n in (1, 2, 3)],
        evaluations=[
            {
                "checkpoint_id": str(n),
                "metrics": [
                    {"metric": "pointwise", "aggregation": "AVERAGE", "value": 3.0 + n / 4},
                    {"metric": "exact_match", "aggregation": "AVERAGE", "value": 0.5 + n / 10},
                ],
            }
            for n in (1, 2, 3)
        ],
    )
    defaults = {"promote_as": "kitchen-assistant", "gate": {"margin": 0.05}, "verdict": VERDICT}
    return with_gate_fields(job, **{**defaults, **gate_fields})


def example(n: int, candidate: float | None, baseline: float | None, prompt: str = "") -> dict[str, Any]:
    return {
        "prompt": prompt or f"prompt number {n}",
        "reference": f"reference {n}",
        "candidate": f"candidate answer {n}",
        "baseline": f"baseline answer {n}",
        "candidate_score": candidate,
        "baseline_score": baseline,
    }


def hostile_examples() -> list[dict[str, Any]]:
    """Fifteen examples, differences 0.0 to 0.7, the largest one's prompt hostile: markup, controls, 100 KB."""
    examples = [example(n, 0.5 + n / 20, 0.5 - n / 40 if n % 2 else 0.5, f"question {n}?") for n in range(14)]
    examples.append(example(99, 1.0, 0.0, HOSTILE_PROMPT))
    return examples


class Page(HTMLParser):
    """A page read back: the tags met, every attribute, and the text inside each element with an id."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.text: dict[str, str] = {}
        self.ids: list[str] = []
        self._open: list[tuple[str, str | None]] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]
        element_id = dict(attrs).get("id")
        if element_id:
            self.ids.append(element_id)
            self.text.setdefault(element_id, "")
        if tag not in VOID_ELEMENTS:
            self._open.append((tag, element_id))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self._open.pop()

    def handle_endtag(self, tag: str) -> None:
        # Up to the element it closes; an end tag of no open element (</p> stray) closes nothing.
        if any(open_tag == tag for open_tag, _ in self._open):
            while self._open.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        for _, element_id in self._open:
            if element_id:
                self.text[element_id] += data

    def fetching(self) -> list[tuple[str, str]]:
        return [(name, value) for name, value in self.attributes if name in FETCHING_ATTRIBUTES]


def assert_report_content(page: Page) -> None:
    """What a full report says, as written or as the browser rendered it."""
    assert [i for i in page.ids if i in SECTIONS] == list(SECTIONS), page.ids
    summary = page.text["summary"]
    for value in (
        "recipes-0123456789ab",
        "kitchen",
        "gemini-2.5-flash",
        "SUCCEEDED",
        "models/42@1",
        "kitchen-assistant",
        "better",
    ):
        assert value in summary, (value, summary)
    tokens = page.text["tokens"]
    assert "examples7" in tokens and "median40" in tokens and "max1,200" in tokens, tokens
    checkpoints = page.text["checkpoints"]
    assert "fluency (pointwise) average: 3.75" in checkpoints and "exact (exact_match) average: 0.8" in checkpoints
    assert "fluency (pointwise) average: 3.25 → 3.75" in checkpoints, checkpoints
    gate = page.text["gate"]
    for value in ("candidate mean0.8125", "baseline mean0.55", "interval low0.18", "interval high0.34", "95.0%"):
        assert value in gate, (value, gate)
    assert "win rate40.0%" in gate and "gate margin0.05" in gate and "the interval's low end" in gate
    differences = page.text["differences"]
    assert f"The {TOP_DIFFERENCES} of 15 examples" in differences
    assert HOSTILE in differences and "\\x1b[31mred\\x07 \\u202eevil" in differences
    assert f"… ({len(HOSTILE_PROMPT) - TEXT_LIMIT:,} more characters)" in differences  # 100 KB cut short


def full_report() -> str:
    return render_report(finished_job(), hostile_examples(), token_counts=[10, 20, 30, 40, 50, 600, 1200])


# --- the page as written ------------------------------------------------------------------------------------------


def test_the_report_holds_every_section_with_its_values() -> None:
    page = Page(full_report())
    assert_report_content(page)
    assert page.ids.count("summary") == 1 and page.tags.count("section") == len(SECTIONS)


def test_a_hostile_prompt_is_text_cut_short_and_never_markup() -> None:
    markup = full_report()
    page = Page(markup)
    assert "img" not in page.tags and "script" not in page.tags
    assert not any(name.startswith("on") for name, _ in page.attributes)
    assert "\x1b" not in markup and "\x07" not in markup and "\u202e" not in markup
    assert len(markup) < 120_000  # ten examples, the hostile one 100 KB long


def test_the_page_names_no_url_and_loads_nothing() -> None:
    markup = full_report()
    page = Page(markup)
    assert page.fetching() == [] and "script" not in page.tags and "link" not in page.tags
    style = markup[markup.index("<style>") : markup.index("</style>")]
    assert "url(" not in style and "@import" not in style and "@font-face" not in style
    (policy,) = [value for name, value in page.attributes if name == "content" and "default-src" in value]
    assert policy.startswith("default-src 'none'")


def test_the_examples_that_differ_most_come_first_and_only_ten() -> None:
    examples = [example(n, n / 100, 0.0) for n in range(12)]
    examples += [example(50, None, 0.3), example(51, 0.9, -0.9), example(52, 0.2, 0.7)]
    text = Page(render_report(finished_job(), examples)).text["differences"]
    shown = [int(number) for number in re.findall(r"prompt number (\d+)", text)]
    assert shown == [51, 52, 11, 10, 9, 8, 7, 6, 5, 4], shown
    assert "difference 1.8" in text and "prompt number 50" not in text


def test_an_example_without_both_scores_is_shown_last_without_a_difference() -> None:
    text = Page(render_report(finished_job(), [example(1, None, 0.5), example(2, 0.5, 0.25)])).text["differences"]
    assert text.index("prompt number 2") < text.index("prompt number 1")
    assert "candidate —, baseline 0.5, difference —" in text


def test_a_job_not_yet_evaluated_says_so_in_each_section() -> None:
    job = new_job(job_id="j", bucket="b", object_name="incoming/a.jsonl", generation="1", base_model="m", now=T0)
    page = Page(render_report(job))
    assert [i for i in page.ids if i in SECTIONS] == list(SECTIONS)
    assert "not evaluated" in page.text["summary"] and "none: the job promotes no alias" in page.text["summary"]
    assert "No token counts" in page.text["tokens"]
    assert "No checkpoints" in page.text["checkpoints"]
    assert "Not evaluated" in page.text["gate"]
    assert "No per-example results" in page.text["differences"]


def test_a_partial_verdict_shows_what_is_there_and_no_interval_without_both_ends() -> None:
    verdict = {"verdict": "inconclusive", "reason": "cost over the cap: 7.50 USD > 5.00 USD"}
    page = Page(render_report(finished_job(verdict=verdict, gate=None)))
    gate = page.text["gate"]
    assert "inconclusive" in gate and "cost over the cap" in gate and "gate margin0" in gate
    assert "No confidence interval" in gate and "candidate mean" not in gate


def test_the_interval_chart_places_the_gate_margin_and_the_interval() -> None:
    markup = render_report(finished_job(gate={"margin": 0.25}))
    gate = Page(markup).text["gate"]
    assert "gate margin 0.25" in gate and "95.0% interval 0.18 to 0.34" in gate
    assert 'class="interval"' in markup and 'class="margin"' in markup


def test_the_histogram_counts_every_example_once() -> None:
    counts = [5] * 3 + [100] * 7 + list(range(200, 212))
    markup = render_report(finished_job(), token_counts=counts)
    titles = [part.split("</title>")[0] for part in markup.split("<title>")[2:] if " tokens: " in part]
    assert sum(int(t.split(": ")[1].split()[0]) for t in titles) == len(counts) and len(titles) <= 12, titles
    single = render_report(finished_job(), token_counts=[7, 7])
    assert single.count('class="bar"') == 1 and "<title>7 tokens: 2 examples</title>" in single


def test_hostile_values_on_the_job_and_its_checkpoints_are_text_too() -> None:
    job = finished_job(promote_as=HOSTILE, verdict={**VERDICT, "verdict": HOSTILE, "reason": "\x1b[2J" + "r" * 5000})
    job = replace(job, checkpoints=[{"checkpoint_id": HOSTILE, "epoch": 1, "step": 1}], evaluations=[])
    markup = render_report(job)
    page = Page(markup)
    assert "img" not in page.tags and "\x1b" not in markup
    assert HOSTILE in page.text["summary"] and HOSTILE in page.text["checkpoints"] and HOSTILE in page.text["gate"]
    assert "\\x1b[2J" in page.text["gate"] and "more characters)" in page.text["gate"]
    assert 'class="verdict"' in markup  # an unknown verdict takes the neutral style, never a class of its own


def test_a_prompt_given_as_gemini_contents_reads_as_json() -> None:
    contents = [{"role": "user", "parts": [{"text": "Bonjour <b>"}]}]
    text = Page(render_report(finished_job(), [{**example(1, 1.0, 0.0), "prompt": contents}])).text["differences"]
    assert '"role": "user"' in text and '"text": "Bonjour <b>"' in text


# --- the page as headless Chromium renders it ---------------------------------------------------------------------


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "Debian's chromium is not installed: `make test` installs it, or run `apt-get install -y chromium`",
            pytrace=False,
        )
    return found


def run_chromium(page: Path, profile: Path, *options: str) -> str:
    """Chromium headless on `page`, no network at all (every host name resolves to nothing); its stdout."""
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        *options,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def page_requests(net_log: Path) -> list[str]:
    """The URLs the page itself asked for over the network, from Chromium's net log: a request made for a file://
    page is keyed by that page (the browser's own background requests are keyed by their own sites)."""
    log = json.loads(net_log.read_text(encoding="utf-8"))
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requests: list[str] = []
    for event in log["events"]:
        params: Mapping[str, Any] = event.get("params", {})
        if event["type"] == start_job and str(params.get("network_isolation_key", "")).startswith("file://"):
            requests.append(str(params.get("url", "")))
    return [url for url in requests if not url.startswith(("file:", "data:"))]


def rendered(markup: str, folder: Path, name: str) -> tuple[Page, list[str]]:
    """The DOM Chromium built from `markup` and the network requests it made for it."""
    page = folder / f"{name}.html"
    page.write_text(markup, encoding="utf-8")
    net_log = folder / f"{name}-net.json"
    dom = run_chromium(page, folder / f"{name}-profile", f"--log-net-log={net_log}", "--dump-dom")
    return Page(dom), page_requests(net_log)


def test_chromium_renders_every_section_and_requests_nothing(tmp_path: Path) -> None:
    dom, requests = rendered(full_report(), tmp_path, "report")
    assert_report_content(dom)
    assert "img" not in dom.tags and "script" not in dom.tags  # the hostile prompt built no element
    assert requests == []


def test_the_request_check_sees_a_page_that_fetches(tmp_path: Path) -> None:
    """The control for the test above: the same check on a page with a remote image finds its request."""
    markup = '<!DOCTYPE html><html><body><img src="http://example.invalid/pixel.png"><p id="x">x</p></body></html>'
    dom, requests = rendered(markup, tmp_path, "fetching")
    assert "img" in dom.tags and requests == ["http://example.invalid/pixel.png"]


def test_chromium_screenshots_the_report_into_the_test_artifacts(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(full_report(), encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    run_chromium(page, tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1280,2000")
    data = screenshot.read_bytes()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and (width, height) == (1280, 2000), (width, height)
    assert len(data) > 20_000  # a blank page compresses to a few KB; this one has text and charts
