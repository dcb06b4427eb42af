"""Fixtures that run a local stack of their own, for scenarios whose settings differ from the shared stack's."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Literal

import pytest

from tests.stackfixture import running_stack


def stack_fixture(
    state_name: str, settings: Mapping[str, str], *, scope: Literal["function", "module"] = "function"
) -> Callable[..., object]:
    """A fixture giving the environment of a stack run with ``settings`` in a state directory named ``state_name``.

    Assign it to a module-level name: pytest registers the fixture under that name.
    """

    @pytest.fixture(scope=scope)
    def own_stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
        with running_stack(tmp_path_factory.mktemp(state_name), settings) as env:
            yield env

    return own_stack_env
