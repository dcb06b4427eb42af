"""The README's configuration table is the settings the code reads, no more and no less."""

from __future__ import annotations

import re
from pathlib import Path

from shared.config import SETTINGS

README = Path(__file__).resolve().parents[2] / "README.md"


def _table_rows() -> dict[str, tuple[str, str]]:
    text = README.read_text()
    block = text.split("<!-- settings-table:start", 1)[1].split("<!-- settings-table:end", 1)[0]
    rows = {}
    for line in block.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        match = re.fullmatch(r"`([A-Z_]+)`", cells[0])
        if match and len(cells) == 4:
            rows[match.group(1)] = (cells[1], cells[2])
    return rows


def _shown_default(default: str | None) -> str:
    if default is None:
        return "(required)"
    return f"`{default}`" if default else "(empty)"


def test_readme_settings_table_matches_the_code() -> None:
    expected = {s.name: (_shown_default(s.default), s.doc) for s in SETTINGS}
    assert _table_rows() == expected


def test_readme_quickstart_has_exactly_the_two_commands() -> None:
    quickstart = README.read_text().split("## Quickstart", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(make \w+)", quickstart, flags=re.MULTILINE)
    assert commands == ["make demo", "make test"]


def _emitted_codes() -> set[str]:
    """Every issue code the source can emit: the literal code of each Issue(...) or Problem(...),
    the hyper-parameters' codes and the closed-model codes."""
    from shared.validation.hyperparams import HYPER_PARAMETERS
    from shared.validation.registry import ModelStatus

    source = README.parent / "shared"
    literal = re.compile(r"\b(?:Issue|Problem)\(\s*(?:[^,()]*?,\s*)?\"([a-z0-9_]+)\"")
    codes = {match.group(1) for path in source.rglob("*.py") for match in literal.finditer(path.read_text())}
    codes |= {parameter.code for parameter in HYPER_PARAMETERS}
    codes |= {status.error_code for status in ModelStatus if status.error_code}
    return codes


def test_every_code_the_source_emits_is_in_the_codes_table() -> None:
    from shared.validation.codes import CODES

    emitted = _emitted_codes()
    assert {"not_json", "bad_role", "train_validation_overlap", "bad_epochs", "model_retired"} <= emitted
    assert emitted - CODES.keys() == set()


def test_readme_codes_table_is_generated_from_the_codes_table() -> None:
    from shared.validation.codes import markdown_table

    block = README.read_text().split("<!-- codes-table:start", 1)[1].split("<!-- codes-table:end", 1)[0]
    assert block.split("\n", 1)[1] == markdown_table()


def test_every_code_the_validator_reports_on_the_fixture_corpus_is_in_the_codes_table() -> None:
    """Codes that no literal names (a format's code, a rule's) are caught where the validator reports them."""
    from shared.validation import validate_dataset
    from shared.validation.codes import CODES

    fixtures = README.parent / "tests" / "fixtures"
    files = sorted([*(fixtures / "datasets").rglob("*.json*"), *(fixtures / "google_examples").glob("*.jsonl")])
    reported: set[str] = set()
    for model in ("gemini-1.0-pro-002", "gemini-2.0-flash-001", "gemini-2.5-flash", "gemini-3.5-flash"):
        for path in files:
            with path.open("rb") as handle, (fixtures / "datasets" / "every-error.jsonl").open("rb") as other:
                report = validate_dataset(
                    handle,
                    file=str(path),
                    model=model,
                    validation=other,
                    validation_file="every-error.jsonl",
                    hyper_parameters={"epoch_count": 0, "adapter_size": 3, "bogus": 1},
                    region="mars-west1",
                )
            reported |= set(report.counts) | set(report.warning_counts)
    assert {"not_json", "bad_role", "bad_epochs", "unsupported_region", "train_validation_overlap"} <= reported
    assert reported - CODES.keys() == set()
