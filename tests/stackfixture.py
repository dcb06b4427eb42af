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
    saved = {key: os.environ.get(key) for key in stack.env}
    os.environ.update(stack.env)
    try:
        yield dict(stack.env)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        local_stack.down(state_dir, quiet=True)
