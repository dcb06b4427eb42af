"""The copies of validated datasets: the prefix Terraform expires is the one the code writes."""

from __future__ import annotations

from tests.unit.deploy.terraform.paths import TERRAFORM
from tests.unit.deploy.terraform.tfmodel import load_module

MODULE = TERRAFORM / "modules" / "tunedrop"


def test_the_staging_prefix_is_the_codes_and_expires() -> None:
    from shared.services.upload import STAGING_PREFIX

    module = load_module(MODULE)
    assert module.locals["staging_prefix"] == STAGING_PREFIX
    storage = (MODULE / "storage.tf").read_text()
    assert "prefixes = [local.staging_prefix]" in storage
