"""Every dataset example of Google's supervised-tuning pages validates clean for the models its page names.

The examples and their sources are in tests/fixtures/google_examples/index.json. The gs:// objects they
name are Google's or placeholders, so file existence is not checked (no URI checker), and token counts
come from the local estimate (no counter): the examples are far below every limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.validation import get_model, validate_dataset

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "google_examples"
INDEX: dict[str, Any] = json.loads((EXAMPLES_DIR / "index.json").read_text(encoding="utf-8"))


def _cases() -> list[Any]:
    return [
        pytest.param(entry["file"], model, id=f"{entry['file'].removesuffix('.jsonl')}-{model}")
        for entry in INDEX["examples"]
        for model in entry["models"]
    ]


def test_index_lists_every_example_file_with_its_source() -> None:
    listed = {entry["file"] for entry in INDEX["examples"]}
    on_disk = {path.name for path in EXAMPLES_DIR.glob("*.jsonl")}
    assert listed == on_disk
    for entry in INDEX["examples"]:
        assert entry["page"].startswith("https://"), entry["file"]
        assert entry["read"] == "2026-11-29", entry["file"]
        assert entry["section"] and entry["models"], entry["file"]


def test_index_names_only_registry_models() -> None:
    unknown = {model for entry in INDEX["examples"] for model in entry["models"] if get_model(model) is None}
    assert unknown == set()


@pytest.mark.parametrize(("file_name", "model"), _cases())
def test_google_example_validates_without_errors(file_name: str, model: str) -> None:
    path = EXAMPLES_DIR / file_name
    with path.open("rb") as lines:
        report = validate_dataset(lines, file=f"gs://ds/incoming/{file_name}", model=model)
    found = [(issue.line, issue.code, issue.message) for issue in report.sorted_issues()]
    assert found == [], f"{file_name} on {model}: {found}"
    assert report.example_count == 1
