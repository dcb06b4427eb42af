"""Run every benchmark listed in tests.bench.BENCHMARKS, or only those named on the command line."""

from __future__ import annotations

import importlib
import sys

from tests.bench import BENCHMARKS


def main(argv: list[str]) -> int:
    wanted = argv or BENCHMARKS
    unknown = [name for name in wanted if name not in BENCHMARKS and f"tests.bench.{name}" not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    status = 0
    for name in wanted:
        module = importlib.import_module(name if name in BENCHMARKS else f"tests.bench.{name}")
        print(f"\n## {module.__name__}\n", flush=True)
        status = max(status, int(module.main([])))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
