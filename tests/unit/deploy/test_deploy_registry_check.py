"""The weekly model-registry check: a Cloud Build trigger on a schedule, least privilege, an alert."""

from __future__ import annotations

import re

import yaml

from tests.unit.deploy.terraform.iam import custom_role_permissions, grants
from tests.unit.deploy.terraform.paths import ROOT, TERRAFORM
from tests.unit.deploy.terraform.tfmodel import load_module, one

MODULE = TERRAFORM / "modules" / "tunedrop"
BUILD_CONFIG = ROOT / "deploy" / "registry-check.cloudbuild.yaml"


def test_the_trigger_runs_the_check_from_the_repository_weekly() -> None:
    module = load_module(MODULE)
    trigger = module.resources["google_cloudbuild_trigger"]["registry_check"]
    config = one(trigger["git_file_source"])
    assert one(config["path"]) == "deploy/registry-check.cloudbuild.yaml"
    assert "registry_check[0]" in str(trigger["service_account"])
    schedule = module.resources["google_cloud_scheduler_job"]["registry_check"]
    target = one(schedule["http_target"])
    assert str(one(target["uri"])).endswith(":run")
    assert "google_cloudbuild_trigger.registry_check[0].trigger_id" in str(target["uri"])
    default = one(module.variables["registry_check_schedule"]["default"])
    _minute, _hour, day, month, weekday = default.split()
    assert (day, month) == ("*", "*") and weekday.isdigit(), "once a week"
    steps = yaml.safe_load(BUILD_CONFIG.read_text())["steps"]
    assert any("tunedrop models check" in "\n".join(step["args"]) for step in steps)


def test_the_scheduler_may_only_start_builds_as_the_checks_account() -> None:
    roles = {g.role for g in grants() if "registry_check_scheduler" in g.member}
    assert roles == {
        "${google_project_iam_custom_role.registry_check_runner[0].name}",
        "roles/iam.serviceAccountUser",
    }
    assert custom_role_permissions()["registry_check_runner"] == ["cloudbuild.builds.create"]
    check_roles = {g.role for g in grants() if "google_service_account.registry_check[0]" in g.member}
    assert check_roles == {"roles/logging.logWriter"}


def test_a_difference_or_an_unreadable_page_alerts() -> None:
    module = load_module(MODULE)
    metric = str(one(module.resources["google_logging_metric"]["registry_drift"]["filter"]))
    # The lines `tunedrop models check` prints for a difference and for a page it cannot read.
    assert "DIFFERENCE" in metric and "tunedrop models check:" in metric
    policy = module.resources["google_monitoring_alert_policy"]["registry_drift"]
    assert one(policy["notification_channels"]) == "${var.notification_channels}"


def test_the_check_installs_the_locked_runtime_in_an_image_pinned_by_digest() -> None:
    config = yaml.safe_load(BUILD_CONFIG.read_text())
    image = config["substitutions"]["_PYTHON_IMAGE"]
    assert re.fullmatch(r"[a-z0-9./-]+@sha256:[0-9a-f]{64}", image), image
    assert all(step["name"] == "${_PYTHON_IMAGE}" for step in config["steps"])
    script = "\n".join(step["args"][-1] for step in config["steps"])
    assert "--require-hashes -r requirements.lock" in script
    assert "--require-hashes --no-deps --no-warn-conflicts" in script and "-r requirements-build.lock" in script
    # The project itself: no dependency resolution, no build isolation (either would fetch unpinned packages).
    project_installs = [line for line in script.splitlines() if line.rstrip().endswith(" .")]
    assert project_installs and all("--no-deps --no-build-isolation" in line for line in project_installs)
