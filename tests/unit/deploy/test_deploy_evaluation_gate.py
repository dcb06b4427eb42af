"""The evaluation gate's deployment (issue 15, item 8): the evaluate function, its topic and push subscription with
dead letters, its service account's least privilege, who may ask it to judge, and the variables of its settings."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings, env_name
from shared.errors import ConfigError
from tests.unit.deploy.terraform.bucket_access import allowed, bucket_grants
from tests.unit.deploy.terraform.copies import edited_terraform
from tests.unit.deploy.terraform.functions import deployed_functions
from tests.unit.deploy.terraform.iam import custom_role_permissions, grants
from tests.unit.deploy.terraform.paths import ROOT, TERRAFORM
from tests.unit.deploy.terraform.tfmodel import Binding, evaluate, interpolate, load_module, one, resource_instances

MODULE = Path("modules") / "tunedrop"
GATE_CODE = ROOT / "shared" / "services" / "gate.py"
COMPLETIONS_CODE = ROOT / "shared" / "services" / "completions.py"
EVALUATE_ACCOUNT = 'module.function["evaluate"].runtime_service_account_email'
# The functions whose services publish completions through CompletionNotifier, so settle a job and, when it
# SUCCEEDED with promote_as, ask the gate to judge it (upload: a redelivered notification of an ended job).
SETTLING_FUNCTIONS = ("upload", "dispatch", "poll")
EVALUATION_SETTINGS = {
    "evaluation_max_cost_usd": "TUNEDROP_EVALUATION_MAX_COST_USD",
    "evaluation_concurrency": "TUNEDROP_EVALUATION_CONCURRENCY",
    "evaluation_max_examples": "TUNEDROP_EVALUATION_MAX_EXAMPLES",
}
_PUBLISH = re.compile(r"\.publish\(\s*self\._settings\.(\w+_topic)\b")
_TOPIC = re.compile(r'google_pubsub_topic\.this\["(\w+)"\]')


def module_local(name: str, root: Path = TERRAFORM) -> Any:
    module = load_module(root / MODULE)
    return evaluate(module.locals[name], module)


# ---------------------------------------------------------------------------- the function, its topic, dead letters


def test_the_evaluate_function_judges_one_job_per_instance_within_the_push_deadline() -> None:
    gate = module_local("functions")["evaluate"]
    assert gate["entry_point"] == "on_evaluate"
    assert gate["concurrency"] == 1  # one evaluation per instance; its own threads make the model calls
    assert 300 <= gate["timeout_seconds"] <= 570  # long, yet the subscription waits timeout + 30 s <= 600 s
    assert gate["memory"] in ("1Gi", "2Gi", "4Gi")
    assert 1 <= gate["max_instances"] <= 5  # max instances x TUNEDROP_EVALUATION_CONCURRENCY calls at once
    deployed = {str(f.entry_point): f for f in deployed_functions()}
    assert deployed["on_evaluate"].ingress == "ALLOW_INTERNAL_ONLY"
    assert deployed["on_evaluate"].address == "function[evaluate].google_cloudfunctions2_function.this"


def test_the_evaluate_topic_feeds_the_gate_alone_and_keeps_a_request_a_week() -> None:
    topic = module_local("topics")["evaluate"]
    assert interpolate(topic, load_module(TERRAFORM / MODULE), Binding({"name_prefix": "tunedrop"})) == (
        "tunedrop-evaluate"
    )
    feeding = {key: sub for key, sub in module_local("subscriptions").items() if "evaluate" in sub.values()}
    assert feeding == {"evaluate-to-evaluate": {"topic": "evaluate", "function": "evaluate"}}
    # A request waits for a healthy gate as long as a queued job's message does; only ticks are short-lived.
    assert "evaluate" not in module_local("short_lived_topics")


def test_the_gates_subscription_pushes_with_oidc_retries_and_dead_letters() -> None:
    found = {
        (r.resource_type, r.name): r
        for r in resource_instances(TERRAFORM, lambda kind: kind.startswith("google_pubsub"))
        if r.module_address == "subscription[evaluate-to-evaluate]"
    }
    assert set(found) == {
        ("google_pubsub_subscription", "this"),
        ("google_pubsub_topic", "dead_letter"),
        ("google_pubsub_subscription", "dead_letter"),
        ("google_pubsub_topic_iam_member", "dead_letter_publisher"),
        ("google_pubsub_subscription_iam_member", "source_subscriber"),
    }
    arguments = found[("google_pubsub_subscription", "this")].each.variables
    assert arguments["topic_id"] == "${google_pubsub_topic.this[each.value.topic].id}"
    assert (
        "module.function[each.value.function].invoker_service_account_email"
        in arguments["invoker_service_account_email"]
    )
    # The module's max_delivery_attempts, as every subscription (the example root keeps its default).
    attempts = load_module(TERRAFORM / MODULE).variables["max_delivery_attempts"]
    assert arguments["max_delivery_attempts"] == one(attempts["default"])
    push = found[("google_pubsub_subscription", "this")].body
    assert "google_pubsub_topic.dead_letter.id" in one(one(push["dead_letter_policy"])["dead_letter_topic"])
    assert one(one(one(push["push_config"])["oidc_token"])["service_account_email"])


def test_every_function_is_told_the_evaluate_topic_and_the_gates_bounds() -> None:
    environment = module_local("function_environment")
    assert topic_of_setting("evaluate_topic", environment) == "evaluate"
    for variable, setting in EVALUATION_SETTINGS.items():
        assert environment[setting] == f"${{tostring(var.{variable})}}"
    for function in deployed_functions():
        assert {"TUNEDROP_EVALUATE_TOPIC", *EVALUATION_SETTINGS.values()} <= set(function.environment), function


# ---------------------------------------------------------------------------- least privilege


def evaluate_roles() -> set[str]:
    return {g.role for g in grants() if EVALUATE_ACCOUNT in g.member}


def test_the_gate_holds_a_custom_vertex_role_with_exactly_predict_and_evaluate() -> None:
    assert evaluate_roles() == {
        "roles/datastore.user",
        "${google_project_iam_custom_role.evaluation_gate.name}",
        "roles/pubsub.publisher",
        "roles/storage.objectViewer",
        "roles/storage.objectUser",
    }
    assert sorted(custom_role_permissions()["evaluation_gate"]) == [
        "aiplatform.endpoints.predict",  # GenerateContent on publisher models and tuned endpoints
        "aiplatform.locations.evaluateInstances",  # EvaluateInstances
    ]
    assert not any(role.startswith("roles/aiplatform.") for role in evaluate_roles())
    # Its Firestore grant is one of the runtime project roles, so it takes the same database-only condition.
    assert module_local("runtime_project_roles")["evaluate-datastore"] == {
        "function": "evaluate",
        "role": "roles/datastore.user",
    }


@pytest.mark.parametrize(
    ("operation", "name", "allowed_to"),
    [
        ("get", "tunedrop-staging/job-1/evaluation-123.jsonl", True),  # the held-out copy
        ("get", "reports/search/job-1/evaluation-parts/1-k-exact_match/00000.jsonl", True),  # resuming
        ("create", "reports/search/job-1/report.html", True),
        ("delete", "reports/search/job-1/evaluation.jsonl", True),  # overwritten by a redelivery
        ("create", "tunedrop-staging/job-1/evaluation-123.jsonl", False),
        ("delete", "tunedrop-staging/job-1/evaluation-123.jsonl", False),
        ("get", "incoming/search/data.jsonl", False),
        ("get", "datasets/search/held-out.jsonl", False),
        ("create", "incoming/search/data.jsonl", False),
        ("list", "", False),
    ],
)
def test_the_gate_reads_only_staged_copies_and_writes_only_reports(operation: str, name: str, allowed_to: bool) -> None:
    bucket = bucket_grants({})
    (member,) = {g.member for g in bucket if EVALUATE_ACCOUNT in g.member}
    assert allowed(bucket, member, operation, name) is allowed_to


def topic_of_setting(attribute: str, environment: Mapping[str, Any]) -> str:
    """The Terraform topic key a Settings attribute (evaluate_topic) names, through its environment variable."""
    variable = env_name(Settings.model_fields[attribute])
    found = _TOPIC.search(str(environment[variable]))
    assert found, f"{variable} is not set from a google_pubsub_topic.this"
    return found.group(1)


def topics_published(code: Path, environment: Mapping[str, Any]) -> set[str]:
    """The topics a service publishes to: its `self._publisher.publish(self._settings.<x>_topic, ...)` calls."""
    return {topic_of_setting(attribute, environment) for attribute in _PUBLISH.findall(code.read_text())}


def publisher_problems(root: Path = TERRAFORM) -> list[str]:
    """Publisher grants against the code: the gate publishes exactly where GateKeeper does, and every function that
    settles jobs may publish wherever CompletionNotifier does (the evaluate topic among them)."""
    environment = module_local("function_environment", root)
    granted: dict[str, set[str]] = {}
    for grant in module_local("runtime_topic_publishers", root).values():
        granted.setdefault(grant["function"], set()).add(grant["topic"])
    problems = []
    gate = topics_published(GATE_CODE, environment)
    if granted.get("evaluate", set()) != gate:
        problems.append(f"evaluate may publish to {sorted(granted.get('evaluate', set()))}; its code to {sorted(gate)}")
    completion = topics_published(COMPLETIONS_CODE, environment)
    problems += [
        f"{function} settles jobs but may not publish to {topic}"
        for function in SETTLING_FUNCTIONS
        for topic in sorted(completion - granted.get(function, set()))
    ]
    return problems


def test_publishers_match_the_code() -> None:
    environment = module_local("function_environment")
    assert topics_published(COMPLETIONS_CODE, environment) >= {"completions", "evaluate"}
    # The model events, and the rest of a long evaluation asked for in a new delivery.
    assert topics_published(GATE_CODE, environment) == {"completions", "evaluate"}
    assert publisher_problems() == []


def test_a_settling_function_without_the_evaluate_topic_is_reported(tmp_path: Path) -> None:
    copy = edited_terraform(
        tmp_path,
        "modules/tunedrop/iam.tf",
        ('    "poll-evaluate"        = { function = "poll", topic = "evaluate" }\n', ""),
        ('"evaluate-completions" = { function = "evaluate", topic = "completions" }', ""),
    )
    assert publisher_problems(copy) == [
        "evaluate may publish to ['evaluate']; its code to ['completions', 'evaluate']",
        "poll settles jobs but may not publish to evaluate",
    ]


# ---------------------------------------------------------------------------- the variables, through Terraform


needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")


def settings_root(tmp_path: Path) -> Path:
    """A root holding the module's three evaluation variables and the functions' rendering of them, nothing else."""
    variables = (TERRAFORM / MODULE / "variables.tf").read_text()
    blocks = []
    for variable in EVALUATION_SETTINGS:
        start = variables.index(f'variable "{variable}"')
        blocks.append(variables[start : variables.index("\n}\n", start) + 3])
    functions = (TERRAFORM / MODULE / "functions.tf").read_text()
    rendered = [
        re.search(rf"^\s*({setting}\s*=\s*.+)$", functions, re.MULTILINE) for setting in EVALUATION_SETTINGS.values()
    ]
    assert all(rendered), "functions.tf does not render every evaluation setting"
    lines = "\n".join(f"    {match.group(1)}" for match in rendered if match)
    (tmp_path / "variables.tf").write_text("\n".join(blocks))
    (tmp_path / "main.tf").write_text(f'output "environment" {{\n  value = {{\n{lines}\n  }}\n}}\n')
    return tmp_path


def terraform_environment_for(tmp_path: Path, tfvars: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """`terraform apply` of that root with these variables, and the environment it renders (empty when refused)."""
    root = settings_root(tmp_path)
    (root / "terraform.tfvars").write_text(tfvars)

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["terraform", *command], cwd=root, capture_output=True, text=True, timeout=120, check=False
        )

    result = run("init", "-input=false", "-no-color")
    if result.returncode == 0:
        result = run("apply", "-auto-approve", "-input=false", "-no-color")
    if result.returncode != 0:
        return result, {}
    output = run("output", "-json", "environment")
    return result, json.loads(output.stdout)


def settings_from(environment: Mapping[str, str]) -> Settings:
    return Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "TUNEDROP_BUCKET": "b", **environment})


@needs_terraform
@pytest.mark.parametrize(
    ("tfvars", "expected"),
    [
        ("", (5.0, 8, 500)),
        ("evaluation_max_cost_usd = 0\nevaluation_concurrency = 1\nevaluation_max_examples = 1", (0.0, 1, 1)),
        (
            "evaluation_max_cost_usd = 100000\nevaluation_concurrency = 64\nevaluation_max_examples = 10000",
            (100000.0, 64, 10000),
        ),
        ("evaluation_max_cost_usd = 0.25", (0.25, 8, 500)),
    ],
)
def test_what_terraform_renders_is_what_tunedrop_reads(tmp_path: Path, tfvars: str, expected: tuple[Any, ...]) -> None:
    result, environment = terraform_environment_for(tmp_path, tfvars)
    assert result.returncode == 0, result.stdout + result.stderr
    settings = settings_from(environment)
    assert (
        settings.evaluation_max_cost_usd,
        settings.evaluation_concurrency,
        settings.evaluation_max_examples,
    ) == expected


@needs_terraform
@pytest.mark.parametrize(
    ("tfvars", "setting", "value"),
    [
        ("evaluation_max_cost_usd = -0.01", "TUNEDROP_EVALUATION_MAX_COST_USD", "-0.01"),
        ("evaluation_max_cost_usd = 100000.5", "TUNEDROP_EVALUATION_MAX_COST_USD", "100000.5"),
        ("evaluation_concurrency = 0", "TUNEDROP_EVALUATION_CONCURRENCY", "0"),
        ("evaluation_concurrency = 65", "TUNEDROP_EVALUATION_CONCURRENCY", "65"),
        ("evaluation_concurrency = 2.5", "TUNEDROP_EVALUATION_CONCURRENCY", "2.5"),
        ("evaluation_max_examples = 0", "TUNEDROP_EVALUATION_MAX_EXAMPLES", "0"),
        ("evaluation_max_examples = 10001", "TUNEDROP_EVALUATION_MAX_EXAMPLES", "10001"),
    ],
)
def test_terraform_refuses_what_tunedrop_would_refuse(tmp_path: Path, tfvars: str, setting: str, value: str) -> None:
    result, _ = terraform_environment_for(tmp_path, tfvars)
    assert result.returncode != 0
    assert "Invalid value for variable" in result.stdout + result.stderr
    with pytest.raises(ConfigError, match=setting):
        settings_from({setting: value})


def test_the_example_environment_passes_the_gates_variables() -> None:
    example = load_module(TERRAFORM / "environments" / "example")
    (call,) = example.modules.values()
    for variable in EVALUATION_SETTINGS:
        assert one(call[variable]) == f"${{var.{variable}}}"
        assert "default" not in example.variables[variable] or one(example.variables[variable]["default"]) == one(
            load_module(TERRAFORM / MODULE).variables[variable]["default"]
        )


def test_the_alerts_watch_the_gates_subscription_dead_letters_and_errors() -> None:
    module = load_module(TERRAFORM / MODULE)
    binding = Binding({"name_prefix": "tunedrop"})

    def regex(name: str) -> str:
        return str(interpolate(module.locals[name], module, binding))

    # The dead-letter alert, the stuck-message alert and the dashboard select subscriptions by these patterns.
    assert re.fullmatch(regex("dead_letter_subscription_regex"), "tunedrop-evaluate-to-evaluate-dlq")
    assert re.fullmatch(regex("push_subscription_regex"), "tunedrop-evaluate-to-evaluate")
    # The error-rate alert and the log-based metrics cover every function of local.functions, the gate among them.
    assert "keys(local.functions)" in str(module.locals["function_metric_filter"])
    assert "keys(local.functions)" in str(module.locals["function_service_regex"])
    assert "local.function_service_regex" in str(module.locals["functions_log_filter"])
