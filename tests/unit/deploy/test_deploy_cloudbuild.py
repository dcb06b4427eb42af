"""cloudbuild.yaml: lint, type-check and test before plan; apply only when designated."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import yaml

from tests.unit.deploy.terraform.paths import ROOT

CLOUDBUILD = ROOT / "cloudbuild.yaml"
MAKEFILE = ROOT / "Makefile"
DEV_LOCK = ROOT / "requirements-dev.lock"
DIGEST = re.compile(r"[a-z0-9.-]+(?:/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}")
PIPED_INTO_A_SHELL = re.compile(r"\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b")


def steps() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load(CLOUDBUILD.read_text())
    return {step["id"]: step for step in config["steps"]}


def script(step: dict[str, Any]) -> str:
    return "\n".join(str(a) for a in step.get("args", []))


def body(step: dict[str, Any]) -> str:
    """The script a `bash -c` step runs: its last argument."""
    return str(step["args"][-1])


def substitutions() -> dict[str, str]:
    subs: dict[str, str] = yaml.safe_load(CLOUDBUILD.read_text())["substitutions"]
    return subs


def rendered(text: str, **overrides: str) -> str:
    """What Cloud Build runs: ${_NAME} substituted, $$ unescaped to $."""
    values = substitutions() | overrides
    return re.sub(r"\$\{(_[A-Z0-9_]+)\}", lambda m: values[m.group(1)], text).replace("$$", "$")


def make_recipe(target: str) -> list[str]:
    recipe = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", MAKEFILE.read_text(), re.MULTILINE)
    assert recipe is not None, target
    return [line.strip() for line in recipe.group(1).splitlines()]


def test_the_pipeline_has_its_steps_in_order() -> None:
    found = steps()
    assert list(found) == ["install", "lint", "type-check", "test", "build-source", "terraform-plan", "terraform-apply"]
    assert set(found["terraform-plan"]["waitFor"]) == {"lint", "type-check", "test", "build-source"}
    assert found["terraform-apply"]["waitFor"] == ["terraform-plan"]


def test_tests_run_where_the_emulators_are() -> None:
    assert substitutions()["_CLI_IMAGE"].startswith("gcr.io/google.com/cloudsdktool/google-cloud-cli@sha256:")
    test = steps()["test"]
    assert test["name"] == "${_CLI_IMAGE}"
    assert ".venv/bin/python -m pytest tests" in script(test)


def test_lint_and_type_check_run_what_make_lint_runs() -> None:
    commands = [line.lstrip("@").replace("$(BIN)/", ".venv/bin/") for line in make_recipe("lint")]
    ci = script(steps()["lint"]) + "\n" + script(steps()["type-check"])
    assert commands and [c for c in commands if c not in ci] == []


def test_apply_is_gated_on_the_branch_or_an_explicit_substitution() -> None:
    apply = script(steps()["terraform-apply"])
    assert "terraform apply -input=false tfplan" in apply
    assert '[ "$BRANCH_NAME" = "${_APPLY_BRANCH}" ] || [ "${_APPLY}" = "true" ]' in apply
    assert apply.index("if [") < apply.index("terraform apply")
    plan = script(steps()["terraform-plan"])
    assert "terraform plan -input=false -out=tfplan" in plan and "terraform apply" not in plan
    config = yaml.safe_load(CLOUDBUILD.read_text())
    assert config["substitutions"]["_APPLY"] == "false"


def test_every_step_image_is_pinned_by_digest() -> None:
    images = {step_id: rendered(step["name"]) for step_id, step in steps().items()}
    assert {step_id: image for step_id, image in images.items() if not DIGEST.fullmatch(image)} == {}


def test_nothing_is_piped_into_a_shell() -> None:
    for step_id, step in steps().items():
        assert not PIPED_INTO_A_SHELL.search(script(step)), step_id
    assert PIPED_INTO_A_SHELL.search("curl -LsSf https://example.com/install.sh | sh")  # the check can fail


def test_the_install_step_refuses_an_image_given_by_tag() -> None:
    install = rendered(body(steps()["install"]))
    guard = install[: install.index("\ndone\n") + len("\ndone\n")]  # the loop over the images, before apt-get
    assert "apt-get" not in guard
    assert subprocess.run(["bash", "-euc", guard], capture_output=True, timeout=30).returncode == 0
    tagged = rendered(body(steps()["install"]), _TF_IMAGE="hashicorp/terraform:1.11.4")
    refused = subprocess.run(["bash", "-euc", tagged[: len(guard)]], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "not pinned by digest" in refused.stdout


def test_the_install_step_installs_from_the_locks() -> None:
    install = rendered(body(steps()["install"]))
    assert "make install" in install
    # uv comes from PyPI with the version and hashes requirements-dev.lock pins: the step's own extraction
    # applied to the real lock yields exactly that entry.
    extraction = next((line for line in install.splitlines() if line.startswith("sed ")), "")
    assert " requirements-dev.lock > " in extraction
    command = extraction.split(" > ")[0]
    extracted = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=30)
    lock = DEV_LOCK.read_text()
    entry = lock[lock.index("\nuv==") + 1 :]
    entry = entry[: entry.index("\n    #")] if "\n    #" in entry else entry
    assert extracted.stdout.strip() == entry.strip() and "--hash=sha256:" in extracted.stdout
    assert "--require-hashes" in install and "/uv-requirement.txt" in install


def test_make_install_installs_only_hashed_pins() -> None:
    install = " ".join(make_recipe("$(STAMP)"))
    assert "--require-hashes -r $(DEV_LOCK)" in install and "--require-hashes --no-deps" in install
    assert "--no-deps --no-build-isolation -e ." in install
    assert "--upgrade" not in install  # nothing unpinned
