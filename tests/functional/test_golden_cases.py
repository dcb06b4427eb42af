"""Every golden case: its input files played against the functions give exactly its expected output file.

See tests/functional/goldencases.py for the files' shape and how to regenerate the expected outputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fakes import Harness, make_harness
from tests.functional.goldencases import (
    case_names,
    expected_path,
    load_expected,
    load_input,
    run_case,
    updating,
    write_expected,
)
from tests.functional.support import Functions

CASES = case_names()
# Every time in a case comes from the recorded requests or the harness's fake clock: all on its first day.
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
GOLDEN_DAY = "2026-01-01T"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


@pytest.mark.parametrize("case", CASES)
def test_golden_case(case: str, install: Callable[[Harness], Harness], functions: Functions) -> None:
    spec = load_input(case)
    h = install(make_harness(spec.get("env"), quota=spec.get("quota", 1)))
    output = run_case(spec, h, functions)
    if updating():
        write_expected(case, output)
    assert expected_path(case).exists(), f"no expected output for {case}: run with TUNEDROP_UPDATE_GOLDEN=1"
    assert output == load_expected(case)


def test_every_case_is_a_pair_and_there_are_enough() -> None:
    assert len(CASES) >= 8
    orphans = sorted(
        path.name
        for path in expected_path("x").parent.glob("*.expected.json")
        if path.name.removesuffix(".expected.json") not in CASES
    )
    assert not orphans, f"expected outputs without an input: {orphans}"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.mark.parametrize("case", CASES)
def test_expected_outputs_hold_no_volatile_values(case: str) -> None:
    """No wall-clock time and no random id: a rerun tomorrow must give the same file."""
    strings = list(_strings(load_expected(case)))
    times = [s for s in strings if (found := ISO_TIME.search(s)) and not found.group().startswith(GOLDEN_DAY)]
    assert not times, f"times not from the fake clock or the inputs: {times}"
    assert not [s for s in strings if UUID.search(s)], "a random id in the expected output"


def test_regenerating_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUNEDROP_UPDATE_GOLDEN", raising=False)
    assert not updating()
    monkeypatch.setenv("TUNEDROP_UPDATE_GOLDEN", "yes")
    assert not updating()
    monkeypatch.setenv("TUNEDROP_UPDATE_GOLDEN", "1")
    assert updating()
