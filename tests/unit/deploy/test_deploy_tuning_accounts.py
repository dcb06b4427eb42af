"""Jobs may run as the operators' tuning service accounts (issue 14, item 6): the dispatcher may act as exactly
those accounts, and each may read only the validated copies of datasets. Evaluated on the Terraform for an
example list."""

from __future__ import annotations

from tests.unit.deploy.terraform.bucket_access import allowed, bucket_grants
from tests.unit.deploy.terraform.paths import TERRAFORM
from tests.unit.deploy.terraform.tfmodel import resource_instances

ACCOUNTS = ["tuner@ml-project.iam.gserviceaccount.com", "tuner-eu@ml-project.iam.gserviceaccount.com"]
ROOT_VARIABLES = {"tuning_service_accounts": ACCOUNTS, "default_tuning_service_account": ACCOUNTS[0]}


def acts_as() -> dict[str, tuple[str, str]]:
    """Each google_service_account_iam_member: account -> (role, member)."""
    grants = {}
    for grant in resource_instances(
        TERRAFORM, lambda kind: kind == "google_service_account_iam_member", ROOT_VARIABLES
    ):
        if grant.name != "dispatch_acts_as_tuning_account":
            continue
        grants[grant.each.each_key] = (grant.value(grant.body["role"]), str(grant.value(grant.body["member"])))
    return grants


def test_the_dispatcher_may_act_as_each_tuning_account_and_no_other() -> None:
    grants = acts_as()
    assert set(grants) == set(ACCOUNTS)
    assert {role for role, _ in grants.values()} == {"roles/iam.serviceAccountUser"}
    assert all("dispatch" in member for _, member in grants.values())


def test_a_tuning_account_reads_only_the_validated_copies() -> None:
    grants = bucket_grants(ROOT_VARIABLES)
    member = f"serviceAccount:{ACCOUNTS[0]}"
    assert allowed(grants, member, "get", "tunedrop-staging/job/training-1.jsonl")
    for name in ("incoming/x.jsonl", "datasets/team/x.jsonl", "reports/team/x.json"):
        assert not allowed(grants, member, "get", name), name
    assert not allowed(grants, member, "create", "tunedrop-staging/job/x.jsonl")


def test_evaluation_results_may_be_written_under_reports_only_by_the_tuning_identities() -> None:
    grants = bucket_grants(ROOT_VARIABLES)
    result = "reports/team/job-1/evaluation/evaluation_1/aggregation_results.jsonl"
    writers = [f"serviceAccount:{account}" for account in ACCOUNTS] + [
        "serviceAccount:${google_project_service_identity.aiplatform.email}"
    ]
    for member in writers:
        assert allowed(grants, member, "create", result), member
        for name in ("incoming/team/x.jsonl", "datasets/team/x.jsonl", "tunedrop-staging/job/x.jsonl"):
            assert not allowed(grants, member, "create", name), (member, name)
        assert not allowed(grants, member, "delete", result), member


def test_no_tuning_accounts_no_grants() -> None:
    assert not [
        g
        for g in resource_instances(TERRAFORM, lambda kind: kind == "google_service_account_iam_member", {})
        if g.name == "dispatch_acts_as_tuning_account"
    ]
