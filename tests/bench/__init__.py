"""Benchmarks, run by `make bench` (python -m tests.bench).

Each benchmark is a module in this package listed in BENCHMARKS, exposing ``main(argv) -> int``
that prints its own Markdown section. Add yours to the list.
"""

BENCHMARKS: list[str] = [
    "tests.bench.validator",
    "tests.bench.queue",
    "tests.bench.fairness",
    "tests.bench.poll_calls",
    "tests.bench.three_teams",
    "tests.bench.gate_errors",
    "tests.bench.gate_calls",
]
