"""The local stack's listening ports: random, below the ephemeral range, and distinct within one stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tunedrop_local import stack as local_stack


class InTurn:
    """Picks the given ports in turn (a random pick that repeats itself)."""

    def __init__(self, ports: list[int]) -> None:
        self._ports: Iterator[int] = iter(ports)

    def choice(self, _: range) -> int:
        return next(self._ports)


def test_a_port_picked_already_for_another_process_of_the_stack_is_not_picked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every port of a stack is picked before any of its processes listens, so "free" alone would allow a repeat.
    first = local_stack.free_port()
    monkeypatch.setattr(local_stack, "_port_picker", InTurn([first, first, first + 1]))
    assert local_stack.free_port(taken={first}) == first + 1
