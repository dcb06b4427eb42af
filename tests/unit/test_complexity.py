"""Every function reads in one sitting: radon's cyclomatic complexity grade is C or better.

The validator's hot loop is the one exception, earned by measurement: each function listed in
HOT_LOOP says, in its own body, which benchmark justifies its length.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from radon.complexity import cc_rank, cc_visit
from radon.visitors import Function

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("shared", "functions", "deploy", "tests")
WORST_ALLOWED = "C"
# (file, function) -> the benchmark its docstring or comments must name.
HOT_LOOP = {
    ("shared/validation/schema.py", "fast_check"): "tests/bench/validator.py",
    ("shared/validation/engine.py", "scan"): "tests/bench/validator.py",
}


def _python_files() -> list[Path]:
    return sorted(p for folder in CHECKED for p in (ROOT / folder).rglob("*.py") if ".venv" not in p.parts)


def _functions(path: Path) -> list[Function]:
    found: list[Function] = []
    pending = list(cc_visit(path.read_text(encoding="utf-8")))
    while pending:
        block = pending.pop()
        if isinstance(block, Function):
            found.append(block)
            pending.extend(block.closures)
        else:
            pending.extend(block.methods)
            pending.extend(getattr(block, "inner_classes", []))
    return found


def test_no_function_is_graded_worse_than_c_outside_the_hot_loop() -> None:
    too_complex = []
    for path in _python_files():
        relative = path.relative_to(ROOT).as_posix()
        for function in _functions(path):
            grade = cc_rank(function.complexity)
            if grade > WORST_ALLOWED and (relative, function.name) not in HOT_LOOP:
                too_complex.append(f"{relative}:{function.lineno} {function.fullname} {grade} ({function.complexity})")
    assert not too_complex, "split these into named steps:\n" + "\n".join(too_complex)


@pytest.mark.parametrize(("relative", "name"), sorted(HOT_LOOP))
def test_each_hot_loop_function_names_the_benchmark_that_justifies_it(relative: str, name: str) -> None:
    path = ROOT / relative
    function = next(f for f in _functions(path) if f.name == name)
    body = "\n".join(path.read_text(encoding="utf-8").splitlines()[function.lineno - 1 : function.endline])
    assert HOT_LOOP[(relative, name)] in body


def test_the_check_sees_a_complex_function() -> None:
    branches = "\n".join(f"    if x == {n}:\n        return {n}" for n in range(25))
    source = f"def tangled(x):\n{branches}\n    return -1\n"
    (function,) = cc_visit(source)
    assert cc_rank(function.complexity) > WORST_ALLOWED
