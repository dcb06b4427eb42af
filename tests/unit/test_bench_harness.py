"""The benchmarks are not run by `make test`; these checks keep their wrappers in step with the ports."""

from __future__ import annotations

from typing import Any

from tests.bench.queue import CountingStore
from tests.fakes import InMemoryJobStore


def test_the_counting_store_implements_every_port_method() -> None:
    inner: Any = InMemoryJobStore()
    store = CountingStore(inner)  # an abstract method left unimplemented raises TypeError here
    assert store.list_jobs(None, 10) == []
    assert store.existing(["missing"]) == set()
    assert store.reads == 2
