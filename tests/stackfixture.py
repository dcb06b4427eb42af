"""Start a whole local stack for a test session, in a state directory of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tunedrop_local import stack as local_stack

# The stacks running now (state directory -> exported variables): a failing test shows what they
# logged, and a stack started while another runs does not inherit that one's settings.
_RUNNING: dict[Path, frozenset[str]] = {}


@contextmanager
def running_stack(state_dir: Path, settings: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Bring a stack up with `settings`, export its variables for the clients, stop it after."""
    inherited = frozenset().union(*_RUNNING.values())
    environ = {**{k: v for k, v in os.environ.items() if k not in inherited}, **settings}
    stack = local_stack.up(state_dir, environ=environ, quiet=True)
    _RUNNING[state_dir] = frozenset(stack.env)
    try:
        with local_stack.exported(stack.env):
            yield dict(stack.env)
    finally:
        del _RUNNING[state_dir]
        local_stack.down(state_dir, quiet=True)


def log_digest(notable: int = 20, last: int = 5) -> str:
    """For each running stack and process: its last warnings and errors, then its last lines.

    Attached to a failing end-to-end test, so a red CI run says what the stack was doing.
    """
    parts: list[str] = []
    for state_dir in _RUNNING:
        for log in sorted(local_stack.Stack(state_dir).log_dir.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            worrying = [line for line in lines if '"WARNING"' in line or '"ERROR"' in line or "Traceback" in line]
            shown = [*worrying[-notable:], "...", *lines[-last:]] if worrying else lines[-last:]
            if shown:
                parts.append(f"== {state_dir.name}/{log.name} ({len(lines)} lines, {len(worrying)} worrying)")
                parts.extend(line[:400] for line in shown)
    return "\n".join(parts) or "(no stack running)"


def log_lines(process: str) -> list[str]:
    """Every line one process (e.g. "upload") of the running stacks has logged so far."""
    lines: list[str] = []
    for state_dir in _RUNNING:
        log = local_stack.Stack(state_dir).log_dir / f"{process}.log"
        if log.exists():
            lines.extend(log.read_text(errors="replace").splitlines())
    return lines
