"""Alerting: the log-based metrics match what the code logs, and every alert reaches the channels."""

from __future__ import annotations

import json
import re

import pytest

from tests.fakes import Harness
from tests.unit.deploy.terraform.logs import filter_messages, unknown_log_messages
from tests.unit.deploy.terraform.paths import TERRAFORM
from tests.unit.deploy.terraform.tfmodel import load_module, one

MONITORING = TERRAFORM / "modules" / "tunedrop" / "monitoring.tf"
SEVERITIES = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"]


def metric_filter(name: str) -> str:
    module = load_module(MONITORING.parent)
    body = module.resources["google_logging_metric"][name]
    return str(one(body["filter"]))


def test_alert_policies_cover_dead_letters_errors_failed_and_stuck_jobs() -> None:
    module = load_module(MONITORING.parent)
    policies = module.resources["google_monitoring_alert_policy"]
    assert set(policies) == {
        *("dead_letters", "function_errors", "jobs_failed", "jobs_stuck", "registry_drift"),
        *("team_waiting", "team_over_budget"),  # fairness_monitoring.tf
    }
    for name, policy in policies.items():
        assert one(policy["notification_channels"]) == "${var.notification_channels}", name
        assert "documentation" in policy, name
    assert "google_monitoring_dashboard" in module.resources
    dead_letters = str(policies["dead_letters"]["conditions"])
    assert "num_undelivered_messages" in dead_letters and "dead_letter_subscription_regex" in dead_letters


def test_every_logged_message_in_a_filter_exists_in_the_code() -> None:
    text = MONITORING.read_text()
    assert set(filter_messages(text)) >= {"job finished", "poll done"}
    assert unknown_log_messages(text) == []


def test_a_filter_on_a_message_the_code_no_longer_logs_is_reported() -> None:
    text = MONITORING.read_text().replace('message=\\"job finished\\"', 'message=\\"job ended\\"')
    assert unknown_log_messages(text) == ["job ended"]


def matches(log_filter: str, entry: dict[str, object]) -> bool:
    """Evaluate the jsonPayload and severity terms of a logging filter against one JSON log line."""
    for field, value in re.findall(r'jsonPayload\.(\w+)="([^"]+)"', log_filter):
        if str(entry.get(field)) != value:
            return False
    for op, level in re.findall(r"severity(>=|=)(\w+)", log_filter):
        have = SEVERITIES.index(str(entry["severity"]))
        if (op == ">=" and have < SEVERITIES.index(level)) or (op == "=" and have != SEVERITIES.index(level)):
            return False
    return True


def poller_failure_logs(harness: Harness, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    job_id = harness.upload("a.jsonl")
    assert job_id in harness.app.dispatcher.dispatch()
    name = harness.job(job_id).vertex_job_name
    capsys.readouterr()
    harness.tuning.set_state(name, "JOB_STATE_FAILED", error_code=13, error_message="boom")
    harness.clock.advance(60)
    assert harness.app.poller.poll() == [job_id]
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_the_jobs_failed_metric_counts_the_poller_log_line(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    log_filter = metric_filter("jobs_failed").replace('\\"', '"')
    entries = poller_failure_logs(harness, capsys)
    assert [e["message"] for e in entries if matches(log_filter, e)] == ["job finished"]


def test_the_jobs_failed_filter_does_not_count_successes(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    log_filter = metric_filter("jobs_failed").replace('\\"', '"')
    job_id = harness.upload("b.jsonl")
    assert job_id in harness.app.dispatcher.dispatch()
    capsys.readouterr()
    harness.tuning.succeed(harness.job(job_id).vertex_job_name)
    harness.clock.advance(60)
    assert harness.app.poller.poll() == [job_id]
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(e["message"] == "job finished" for e in entries)
    assert not [e for e in entries if matches(log_filter, e)]
