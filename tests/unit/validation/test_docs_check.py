"""`tunedrop models check` against saved copies of Google's pages (no network in tests)."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest

from shared.cli import main
from shared.validation.docs_check import check, facts_of, model_id, run_check
from shared.validation.registry import registry

DOCS = Path(__file__).resolve().parents[2] / "fixtures" / "docs"
SFT, REFERENCE, VERSIONS = (
    DOCS / n for n in ("supervised-tuning.md.txt", "tuning-reference.md.txt", "model-versions.md.txt")
)
SAVED = [str(SFT), str(REFERENCE), str(VERSIONS)]
CHECKED = date(2026, 11, 29)


def test_the_saved_pages_are_read_in_full_not_skipped() -> None:
    facts = facts_of({str(p): p.read_text() for p in (SFT, REFERENCE, VERSIONS)})
    assert {"gemini-3.5-flash", "gemini-3.5-flash-lite", "gemini-3.1-flash-lite", "gemini-2.5-pro"} <= set(facts.listed)
    flash = facts.limits["gemini-3.5-flash"]
    assert flash == facts.limits["gemini-3.5-flash-lite"]  # one table shared by two models
    assert flash == {
        "max_tokens_per_example": 131_072,
        "max_validation_examples": 5_000,
        "max_validation_share": 0.3,
        "validation_share_above": 1_000,
        "max_file_bytes": 2**30,
        "max_examples_text": 10_000_000,
        "max_examples_multimodal": 300_000,
        "adapter_sizes": [1, 2, 4, 8, 16],
        "regions": ["europe-west4", "us-central1"],
        "cmek": False,
    }
    assert facts.limits["gemini-2.5-pro"]["adapter_sizes"] == [1, 2, 4, 8]
    versions = facts.lifecycle
    assert versions["gemini-3.5-flash"] == {"released": date(2026, 5, 19), "retires": None, "replacement": None}
    assert versions["gemini-2.5-flash"]["retires"] == date(2026, 10, 16)
    assert versions["gemini-2.5-flash"]["replacement"] == "gemini-3.5-flash-lite"
    assert versions["gemini-1.0-pro-002"]["replacement"] == "gemini-2.5-flash"


def test_the_saved_pages_agree_with_the_registry() -> None:
    differences, notes = check(SAVED, CHECKED)
    assert differences == []
    # The pages contradict themselves on the 2.5 models: listed for tuning, yet retired.
    assert any("gemini-2.5-pro is listed" in n for n in notes)
    out = io.StringIO()
    assert run_check(SAVED, on=CHECKED, out=out) == 0
    assert "agrees with every page" in out.getvalue()


def test_a_changed_limit_is_named_and_fails_the_check() -> None:
    changed = [str(DOCS / "supervised-tuning-changed.md.txt"), str(REFERENCE), str(VERSIONS)]
    out = io.StringIO()
    assert run_check(changed, on=CHECKED, out=out) == 1
    lines = [line for line in out.getvalue().splitlines() if line.startswith("DIFFERENCE")]
    assert lines == [
        f"DIFFERENCE {m}: max_tokens_per_example is 131072 in the registry, 262144 in {changed[0]}"
        for m in ("gemini-3.5-flash", "gemini-3.5-flash-lite")
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # A retirement date announced for a current model.
        (
            "| `gemini-3.5-flash` | May 19, 2026 | May 19, 2027 or later |   |",
            "| `gemini-3.5-flash` | May 19, 2026 | June 1, 2027 | Gemini 4 Flash |",
            {("gemini-3.5-flash", "retires"), ("gemini-3.5-flash", "replacement")},
        ),
        # A retirement moved.
        (
            "| `gemini-2.5-pro` | June 17, 2025 | October 16, 2026 |",
            "| `gemini-2.5-pro` | June 17, 2025 | October 20, 2026 |",
            {("gemini-2.5-pro", "retires")},
        ),
    ],
)
def test_a_changed_date_is_a_difference(tmp_path: Path, old: str, new: str, expected: set[tuple[str, str]]) -> None:
    text = VERSIONS.read_text()
    assert old in text
    altered = tmp_path / "model-versions.md.txt"
    altered.write_text(text.replace(old, new))
    differences, _ = check([str(SFT), str(REFERENCE), str(altered)], CHECKED)
    assert {(d.model, d.field) for d in differences} == expected


def test_a_model_newly_listed_or_no_longer_listed_is_a_difference(tmp_path: Path) -> None:
    text = REFERENCE.read_text()
    added = text.replace("- [Gemini 2.5 Pro]", "- [Gemini 3.7 Flash](https://example.invalid/3-7)\n- [Gemini 2.5 Pro]")
    dropped = text.replace("- [Gemini 3.1 Flash-Lite](", "- [Removed](")
    (tmp_path / "added.md.txt").write_text(added)
    (tmp_path / "dropped.md.txt").write_text(dropped)
    differences, _ = check([str(tmp_path / "added.md.txt")], CHECKED)
    assert [(d.model, d.registry, d.docs) for d in differences] == [
        ("gemini-3.7-flash", "not in the registry", "listed")
    ]
    differences, _ = check([str(tmp_path / "dropped.md.txt")], CHECKED)
    assert [(d.model, d.registry, d.docs) for d in differences] == [
        ("gemini-3.1-flash-lite", "available", "not listed")
    ]


def test_an_unreadable_or_empty_source_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check([str(tmp_path / "missing.md.txt")], on=CHECKED) == 2
    (tmp_path / "empty.md.txt").write_text("# nothing here\n")
    assert run_check([str(tmp_path / "empty.md.txt")], on=CHECKED) == 2
    assert "tunedrop models check" in capsys.readouterr().err


def test_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["models", "check", "--on", "2026-11-29"] + [a for path in SAVED for a in ("--source", path)]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 0
    assert "agrees" in capsys.readouterr().out


def test_display_names_map_to_registry_ids() -> None:
    for spec in registry().models.values():
        if spec.name.startswith("gemini-3") or spec.name.startswith("gemini-2.5"):
            assert model_id(spec.display_name) == spec.name
    assert model_id("`gemini-1.5-pro-002`\\*") == "gemini-1.5-pro-002"


# ---- `tunedrop models` and the README's model table

JSON_KEYS = {"id", "aliases", "status", "preview", "released", "tuning_closes", "retires", "replacement"}


def test_models_json_lists_every_model_with_its_lifecycle_and_limits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "--json", "--on", "2026-11-29"])
    assert exit_info.value.code == 0
    rows = __import__("json").loads(capsys.readouterr().out)
    assert isinstance(rows, list) and {r["id"] for r in rows} == set(registry().models)
    for row in rows:
        assert JSON_KEYS | {"max_tokens_per_example", "adapter_sizes", "modalities", "media"} <= set(row)
    status = {r["id"]: r["status"] for r in rows}
    assert {m for m, s in status.items() if s == "available"} == {
        "gemini-3.5-flash",
        "gemini-3.5-flash-lite",
        "gemini-3.1-flash-lite",
    }
    assert status["gemini-1.0-pro-002"] == "retired"
    retired = [r for r in rows if r["status"] == "retired"]
    assert all(r["replacement"] and r["retires"] < "2026-11-29" for r in retired)
    with pytest.raises(SystemExit):
        main(["models", "--json", "--on", "2026-09-20"])
    status = {r["id"]: r["status"] for r in __import__("json").loads(capsys.readouterr().out)}
    assert status["gemini-2.5-flash"] == "tuning_closed"


def test_the_readme_model_table_is_the_registry() -> None:
    from shared.validation.registry import markdown_table

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = readme.split("<!-- models-table:start", 1)[1].split("-->", 1)[1].split("<!-- models-table:end", 1)[0]
    assert block.strip() == markdown_table(registry().models).strip(), "run `tunedrop models --markdown`"
