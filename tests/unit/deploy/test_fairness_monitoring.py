"""Visible fairness (issue 13, item 7): the per-team log-based metrics read fields the code's log lines carry, the
dashboard charts them by team, and the alerts (a team waiting too long, a team over budget) reach the channels."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path

import pytest

from shared.services.team_metrics import TeamGauge
from tests.fakes import Harness, queued_team_job
from tests.unit.deploy.terraform.copies import edited_terraform
from tests.unit.deploy.terraform.logs import unknown_log_messages
from tests.unit.deploy.terraform.paths import CODE_DIRS, TERRAFORM
from tests.unit.deploy.terraform.tfmodel import Binding, Module, for_each_items, load_module, one, parse_tf

MODULE = TERRAFORM / "modules" / "tunedrop"
FILE = "fairness_monitoring.tf"
EXAMPLE = TERRAFORM / "environments" / "example"
SEVERITIES = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"]
GAUGES = "team gauges"


@dataclass(frozen=True)
class Extraction:
    """What one log-based metric (one for_each instance) reads: the messages it filters on, the least severity,
    and the jsonPayload fields its value and labels come from."""

    metric: str
    messages: frozenset[str]
    severity: str
    value_field: str | None
    label_fields: frozenset[str]

    @property
    def fields(self) -> set[str]:
        return set(self.label_fields) | ({self.value_field} if self.value_field else set())


def _expanded(text: str, module: Module, each: Binding) -> str:
    """`text` with ${local.X} (string locals, recursively) and ${each.value.X} written out."""
    for _ in range(10):  # locals nest a few levels deep at most
        before = text
        text = re.sub(
            r"\$\{local\.(\w+)\}",
            lambda m: module.locals[m.group(1)] if isinstance(module.locals[m.group(1)], str) else m.group(0),
            text,
        )
        text = re.sub(r"\$\{each\.value\.(\w+)\}", lambda m: str(each.each_value[m.group(1)]), text)
        if text == before:
            break
    return text.replace('\\"', '"')


def _fields(extractor: str) -> list[str]:
    return re.findall(r"EXTRACT\(jsonPayload\.(\w+)\)", extractor)


def extractions(root: Path = TERRAFORM) -> list[Extraction]:
    """Every log-based metric of fairness_monitoring.tf, each for_each instance on its own."""
    directory = root / "modules" / "tunedrop"
    module = load_module(directory)
    found = []
    for group in parse_tf(directory / FILE).get("resource", []):
        for name, body in group.get("google_logging_metric", {}).items():
            for each in for_each_items(body, module):
                log_filter = _expanded(str(one(body["filter"])), module, each)
                messages = frozenset(re.findall(r'jsonPayload\.message="([^"]+)"', log_filter))
                (severity,) = re.findall(r"severity>=(\w+)", log_filter)
                value = _expanded(str(one(body.get("value_extractor", ""))), module, each)
                labels = {k: v for k, v in one(body["label_extractors"]).items() if not k.startswith("__")}
                label_fields = frozenset(f for extractor in labels.values() for f in _fields(extractor))
                address = f"{name}[{each.each_key}]" if each.each_key is not None else name
                value_field = next(iter(_fields(value)), None)
                found.append(Extraction(address, messages, severity, value_field, label_fields))
    return found


def _literal_log_call(node: ast.AST) -> tuple[str, set[str]] | None:
    """(message, keyword names) of a logs.info/warning/error("literal", ...) call; None for anything else."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
        return None
    func, message = node.func, node.args[0]
    if not (isinstance(func.value, ast.Name) and func.value.id == "logs" and func.attr in {"info", "warning", "error"}):
        return None
    if not isinstance(message, ast.Constant):
        return None
    return str(message.value), {keyword.arg for keyword in node.keywords if keyword.arg is not None}


def _log_calls(code_dirs: tuple[Path, ...] = CODE_DIRS) -> Iterator[tuple[str, str, set[str]]]:
    """(where, message, keyword names) of every logs call with a literal message in the code."""
    for directory in code_dirs:
        for path in sorted(directory.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                call = _literal_log_call(node)
                if call is not None:
                    yield f"{path.name}:{getattr(node, 'lineno', 0)}", *call


def field_problems(root: Path = TERRAFORM) -> list[str]:
    """A metric reading a field that some call logging its message does not pass (or a message nobody logs)."""
    calls = list(_log_calls())
    problems = []
    for extraction in extractions(root):
        for wanted in sorted(extraction.messages):
            logging_it = [(where, keywords) for where, message, keywords in calls if message == wanted]
            if not logging_it:
                problems.append(f"{extraction.metric}: nothing logs {wanted!r}")
            for where, keywords in logging_it:
                missing = sorted(extraction.fields - keywords)
                if missing:
                    problems.append(f"{extraction.metric}: {where} logs {wanted!r} without {missing}")
    return problems


def test_the_metrics_read_the_gauges_the_wait_at_start_and_the_over_budget_warning() -> None:
    found = {e.metric: e for e in extractions()}
    gauge_values = {e.value_field for e in found.values() if e.messages == {GAUGES}}
    assert gauge_values == {"queued", "running", "head_wait_seconds", "spend_usd"}
    assert gauge_values < {f.name for f in fields(TeamGauge)}
    assert (found["team_wait_at_start"].messages, found["team_wait_at_start"].value_field) == (
        {"tuning job created"},
        "waited_seconds",
    )
    over_budget = found["team_over_budget"]
    assert over_budget.messages == {"team over budget", "job rejected over budget"}  # waiting, and rejected
    assert (over_budget.severity, over_budget.value_field) == ("WARNING", None)
    assert all(e.label_fields == {"team"} for e in found.values())


def test_every_field_a_metric_extracts_is_passed_by_every_call_logging_its_message() -> None:
    assert field_problems() == []
    assert unknown_log_messages((MODULE / FILE).read_text()) == []


def test_a_metric_extracting_a_field_the_code_does_not_log_is_reported(tmp_path: Path) -> None:
    copy = edited_terraform(
        tmp_path,
        f"modules/tunedrop/{FILE}",
        ('field   = "head_wait_seconds"', 'field   = "head_wait"'),
        ("EXTRACT(jsonPayload.waited_seconds)", "EXTRACT(jsonPayload.wait_seconds)"),
    )
    problems = field_problems(copy)
    assert len(problems) == 2
    assert problems[0].startswith("team_gauge[head_wait]: team_metrics.py:") and "['head_wait']" in problems[0]
    assert problems[1].startswith("team_wait_at_start: submission.py:") and "['wait_seconds']" in problems[1]


def matches(extraction: Extraction, entry: dict[str, object]) -> bool:
    """Whether the metric's filter takes this JSON log line, and every field it extracts converts as needed."""
    if entry.get("message") not in extraction.messages:
        return False
    if SEVERITIES.index(str(entry["severity"])) < SEVERITIES.index(extraction.severity):
        return False
    value = entry.get(extraction.value_field) if extraction.value_field else 0
    return isinstance(value, int | float) and all(isinstance(entry.get(f), str) for f in extraction.label_fields)


def test_the_poller_and_dispatcher_lines_feed_their_metrics(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    now = harness.clock()
    for n, team in enumerate(("search", "search", "ads")):
        harness.store.put(queued_team_job(f"j{n}", team, now - timedelta(minutes=n)))
    capsys.readouterr()
    harness.clock.advance(30)
    started = harness.app.dispatcher.dispatch()  # quota 1: one job starts, with its "tuning job created"
    assert len(started) == 1
    harness.app.poller.poll()
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    fed = {e.metric: [entry for entry in entries if matches(e, entry)] for e in extractions()}
    assert len(fed["team_wait_at_start"]) == 1
    for gauge in ("queue_depth", "running", "head_wait", "spend"):
        assert sorted(str(entry["team"]) for entry in fed[f"team_gauge[{gauge}]"]) == ["ads", "search"], gauge


def test_the_wait_alert_fires_on_the_variable_per_team_and_both_alerts_reach_the_channels() -> None:
    module = load_module(MODULE)
    policies = module.resources["google_monitoring_alert_policy"]
    waiting = one(one(policies["team_waiting"]["conditions"])["condition_threshold"])
    assert one(waiting["threshold_value"]) == "${var.team_wait_alert_minutes * 60}"
    assert 'google_logging_metric.team_gauge["head_wait"].name' in one(waiting["filter"])
    aggregation = one(waiting["aggregations"])
    # Distributions take ALIGN_DELTA and REDUCE_MEAN, not ALIGN_MAX (numbers only): common.proto.
    assert (one(aggregation["per_series_aligner"]), one(aggregation["cross_series_reducer"])) == (
        "ALIGN_DELTA",
        "REDUCE_MEAN",
    )
    assert one(aggregation["group_by_fields"]) == ["metric.label.team"]
    over = one(one(policies["team_over_budget"]["conditions"])["condition_threshold"])
    assert "google_logging_metric.team_over_budget.name" in one(over["filter"])
    for name in ("team_waiting", "team_over_budget"):
        assert one(policies[name]["notification_channels"]) == "${var.notification_channels}"
        assert one(policies[name]["documentation"])["content"]


def test_the_teams_dashboard_charts_every_team_metric_by_team() -> None:
    module = load_module(MODULE)
    charted = {
        re.sub(r"^\$\{google_logging_metric\.|\.name\}$", "", chart["metric"]) for chart in module.locals["team_charts"]
    }
    assert charted == {
        'team_gauge["queue_depth"]',
        'team_gauge["running"]',
        'team_gauge["head_wait"]',
        'team_gauge["spend"]',
        "team_wait_at_start",
        "team_over_budget",
    }
    dashboard = str(one(module.resources["google_monitoring_dashboard"]["teams"]["dashboard_json"]))
    assert "local.team_charts" in dashboard and "metric.label.team" in dashboard


def test_the_example_passes_the_wait_bound_with_the_same_default() -> None:
    call = load_module(EXAMPLE).modules["tunedrop"]
    assert one(call["team_wait_alert_minutes"]) == "${var.team_wait_alert_minutes}"
    example = load_module(EXAMPLE).variables["team_wait_alert_minutes"]
    declared = load_module(MODULE).variables["team_wait_alert_minutes"]
    assert one(example["default"]) == one(declared["default"]) == 120


def threshold_root(tmp_path: Path) -> Path:
    """A root holding only the module's wait-bound variable and the alert's threshold computed from it."""
    text = (MODULE / FILE).read_text()
    start = text.index('variable "team_wait_alert_minutes"')
    end = text.index("\n}\n", start) + 3
    (tmp_path / "variables.tf").write_text(text[start:end])
    (tmp_path / "main.tf").write_text('output "seconds" {\n  value = var.team_wait_alert_minutes * 60\n}\n')
    return tmp_path


def applied(root: Path, tfvars: str) -> subprocess.CompletedProcess[str]:
    (root / "terraform.tfvars").write_text(tfvars)
    for command in (["init"], ["apply", "-auto-approve"], ["output", "-raw", "seconds"]):
        result = subprocess.run(
            ["terraform", *command, *(["-input=false"] if command[0] != "output" else []), "-no-color"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            break
    return result


needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")


@needs_terraform
def test_terraform_takes_whole_minutes_from_ten_to_a_week(tmp_path: Path) -> None:
    root = threshold_root(tmp_path)
    default = applied(root, "")
    assert default.returncode == 0 and default.stdout == "7200", default.stdout + default.stderr
    for refused in ("9", "10081", "90.5"):
        result = applied(root, f"team_wait_alert_minutes = {refused}")
        assert result.returncode != 0 and "team_wait_alert_minutes must be a whole number" in result.stderr, refused
    assert applied(root, "team_wait_alert_minutes = 10080").stdout == str(10080 * 60)
