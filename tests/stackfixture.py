"""Start a whole local stack for a test session, in a state directory of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tunedrop_local import stack as local_stack


@contextmanager
def running_stack(state_dir: Path, settings: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Bring a stack up with `settings`, export its variables for the clients, stop it after."""
    environ = {**os.environ, **settings}
    stack = local_stack.up(state_dir, environ=environ, quiet=True)
    try:
        with local_stack.exported(stack.env):
            yield dict(stack.env)
    finally:
        local_stack.down(state_dir, quiet=True)
