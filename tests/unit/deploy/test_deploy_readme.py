"""deploy/README.md documents every setting with its default."""

from __future__ import annotations

from pathlib import Path

from shared.config import SETTINGS
from tests.unit.deploy import infra

README = infra.ROOT / "deploy" / "README.md"


def undocumented(readme: Path) -> list[str]:
    rows = [line for line in readme.read_text().splitlines() if line.startswith("| `")]
    return [
        setting.name
        for setting in SETTINGS
        if not any(row.startswith(f"| `{setting.name}` | {infra.default_cell(setting.default)} |") for row in rows)
    ]


def test_every_setting_is_in_the_configuration_table() -> None:
    assert undocumented(README) == []


def test_a_missing_setting_is_reported(tmp_path: Path) -> None:
    copy = tmp_path / "README.md"
    copy.write_text("\n".join(line for line in README.read_text().splitlines() if "`TUNEDROP_QUOTA`" not in line))
    assert undocumented(copy) == ["TUNEDROP_QUOTA"]


def test_the_generated_table_lists_every_setting() -> None:
    table = infra.settings_table()
    assert table.count("\n") == len(SETTINGS) + 1
    assert all(f"| `{s.name}` |" in table for s in SETTINGS)
