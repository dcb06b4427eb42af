"""The functions Terraform deploys are exactly functions/main.py's entry points, wired like the local stack."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.deploy.terraform.copies import edited_terraform
from tests.unit.deploy.terraform.functions import code_entry_points, deployed_functions, entry_point_mismatches
from tests.unit.deploy.terraform.iam import grants, role_problems
from tests.unit.deploy.terraform.paths import FUNCTIONS_MAIN, TERRAFORM
from tests.unit.deploy.terraform.tfmodel import evaluate, load_module, one

TUNEDROP = TERRAFORM / "modules" / "tunedrop"
FUNCTION = TERRAFORM / "modules" / "function"
PUSH = TERRAFORM / "modules" / "push-subscription"


def test_every_entry_point_is_deployed_and_every_deployed_function_exists() -> None:
    assert code_entry_points() == {"on_upload", "on_dispatch", "on_poll", "on_evaluate"}
    assert sorted(str(f.entry_point) for f in deployed_functions()) == [
        "on_dispatch",
        "on_evaluate",
        "on_poll",
        "on_upload",
    ]
    assert entry_point_mismatches() == []


def test_a_function_renamed_in_code_only_is_reported(tmp_path: Path) -> None:
    main = tmp_path / "main.py"
    main.write_text(FUNCTIONS_MAIN.read_text().replace("def on_poll(", "def on_poll_v2("))
    problems = entry_point_mismatches(main)
    assert "on_poll is deployed by Terraform but not defined in main.py" in problems
    assert "on_poll_v2 is defined in main.py but not deployed by Terraform" in problems


def test_a_function_renamed_in_terraform_only_is_reported(tmp_path: Path) -> None:
    copy = edited_terraform(tmp_path, "modules/tunedrop/functions.tf", ('"on_dispatch"', '"on_dispatcher"'))
    problems = entry_point_mismatches(root=copy)
    assert "on_dispatcher is deployed by Terraform but not defined in main.py" in problems
    assert "on_dispatch is defined in main.py but not deployed by Terraform" in problems


def test_functions_are_second_gen_python_311_plus_with_internal_ingress() -> None:
    module = load_module(FUNCTION)
    assert set(module.resources["google_cloudfunctions2_function"]) == {"this"}
    runtime_rule = one(module.variables["runtime"]["validation"])
    assert "python3(1[1-9])" in str(runtime_rule["condition"])
    assert one(module.variables["runtime"]["default"]) == "python311"
    for function in deployed_functions():
        assert function.ingress == "ALLOW_INTERNAL_ONLY", function.address


def test_each_function_has_its_own_runtime_and_invoker_service_accounts() -> None:
    module = load_module(FUNCTION)
    accounts = module.resources["google_service_account"]
    assert set(accounts) == {"runtime", "invoker"}
    service = one(module.resources["google_cloudfunctions2_function"]["this"]["service_config"])
    assert "google_service_account.runtime.email" in one(service["service_account_email"])
    # Only the invoker may invoke; the binding is on this function's service, not the project.
    (invoker,) = module.resources["google_cloud_run_v2_service_iam_member"].values()
    assert one(invoker["role"]) == "roles/run.invoker"
    assert "google_service_account.invoker.email" in one(invoker["member"])
    assert "google_cloudfunctions2_function.this.name" in one(invoker["name"])


def test_no_function_can_be_invoked_without_authentication() -> None:
    invokers = [g for g in grants() if g.role in ("roles/run.invoker", "roles/cloudfunctions.invoker")]
    assert invokers, "no invoker binding found"
    for grant in invokers:
        assert grant.member == "serviceAccount:${google_service_account.invoker.email}", grant
    assert not [p for p in role_problems() if "allUsers" in p or "allAuthenticatedUsers" in p]


def test_push_subscriptions_use_oidc_retry_and_dead_letters() -> None:
    module = load_module(PUSH)
    push = module.resources["google_pubsub_subscription"]["this"]
    config = one(push["push_config"])
    oidc = one(config["oidc_token"])
    assert "invoker_service_account_email" in one(oidc["service_account_email"])
    assert "var.audience" in one(oidc["audience"])
    assert one(push["retry_policy"])["minimum_backoff"]
    dead_letter = one(push["dead_letter_policy"])
    assert "google_pubsub_topic.dead_letter.id" in one(dead_letter["dead_letter_topic"])
    assert (
        "google_pubsub_subscription" in module.resources
        and "dead_letter" in module.resources["google_pubsub_subscription"]
    )
    # The Pub/Sub service agent may publish dead letters and acknowledge on the source subscription.
    assert one(module.resources["google_pubsub_topic_iam_member"]["dead_letter_publisher"]["role"]) == (
        "roles/pubsub.publisher"
    )
    assert one(module.resources["google_pubsub_subscription_iam_member"]["source_subscriber"]["role"]) == (
        "roles/pubsub.subscriber"
    )


def terraform_wiring() -> dict[str, set[str]]:
    """function -> the settings (TUNEDROP_*_TOPIC) of the topics whose subscriptions feed it."""
    module = load_module(TUNEDROP)
    subscriptions = evaluate(module.locals["subscriptions"], module)
    environment = evaluate(module.locals["function_environment"], module)
    setting_of_topic = {}
    for setting, value in environment.items():
        found = re.search(r'google_pubsub_topic\.this\["(\w+)"\]', str(value))
        if found:
            setting_of_topic[found.group(1)] = setting
    wiring: dict[str, set[str]] = {}
    for sub in subscriptions.values():
        wiring.setdefault(sub["function"], set()).add(setting_of_topic[sub["topic"]])
    return wiring


def test_subscriptions_feed_the_functions_like_the_local_stack() -> None:
    from tunedrop_local.stack import FUNCTIONS

    local = {name: set(topics) for name, (_, topics) in FUNCTIONS.items()}
    assert terraform_wiring() == local
    assert local["dispatch"] == {"TUNEDROP_DISPATCH_TOPIC", "TUNEDROP_POLL_TOPIC"}  # fed twice
    entry_points = {name: entry for name, (entry, _) in FUNCTIONS.items()}
    module = load_module(TUNEDROP)
    functions = evaluate(module.locals["functions"], module)
    assert {k: v["entry_point"] for k, v in functions.items()} == entry_points


def test_upload_validator_can_stream_a_large_dataset_within_its_timeout() -> None:
    module = load_module(TUNEDROP)
    functions = evaluate(module.locals["functions"], module)
    upload = functions["upload"]
    assert upload["timeout_seconds"] >= 540 and upload["memory"] == "2Gi" and upload["concurrency"] == 1
    for name, function in functions.items():
        # The push subscription waits timeout + 30 s, capped by Pub/Sub at 600 s.
        assert function["timeout_seconds"] + 30 <= 600, name
