"""Every checkov suppression in deploy/terraform says why. checkov itself runs in `make lint` (and in
Cloud Build's lint step), not in the test tiers: running it twice bought nothing."""

from __future__ import annotations

import re

from tests.unit.deploy.terraform.paths import ROOT
from tests.unit.deploy.terraform.tfmodel import tf_files

_SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def test_every_skip_is_justified() -> None:
    skips = []
    for path in tf_files():
        for line in path.read_text().splitlines():
            found = _SKIP.search(line)
            if found:
                skips.append((path.name, found.group(1), (found.group(2) or "").strip()))
    assert skips, "expected the documented CMEK/usage-log skips"
    assert [s for s in skips if len(s[2]) < 30] == []


def test_make_lint_runs_checkov_on_the_terraform() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "checkov" in lint and "-d deploy/terraform" in lint
