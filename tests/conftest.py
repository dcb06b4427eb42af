"""Generic fixtures for the unit and functional tiers: an App on in-memory fakes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `from tests.fakes import ...` under a bare `pytest` too
    sys.path.insert(0, str(ROOT))

from tests.fakes import Harness, make_harness  # noqa: E402


@pytest.fixture
def harness() -> Harness:
    """An App on fresh fakes with the default settings (TUNEDROP_QUOTA=1)."""
    return make_harness()


@pytest.fixture
def make_app() -> Callable[..., Harness]:
    """Build a harness with options: make_app(quota=3, vertex_quota=2, env={...})."""
    return make_harness
