"""A copy of the Terraform tree with one file edited: the broken input a check must report."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.unit.deploy.terraform.paths import TERRAFORM


def edited_terraform(tmp_path: Path, file: str, *replacements: tuple[str, str]) -> Path:
    """Copy the Terraform tree under ``tmp_path``, make each (old, new) replacement in ``file`` (relative to
    the tree), and return the copy's root. An edit that matches nothing fails here rather than leave the
    copy unbroken."""
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy)
    edited = copy / file
    text = edited.read_text()
    for old, new in replacements:
        assert old in text, f"{old!r} is not in {file}"
        text = text.replace(old, new)
    edited.write_text(text)
    return copy
