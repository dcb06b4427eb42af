"""The functional tier: real functions-framework HTTP handling, an App on in-memory fakes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from shared import bootstrap
from tests.fakes import Harness, make_harness
from tests.functional.support import Functions, create_function_app


@pytest.fixture(scope="session")
def function_apps() -> dict[str, Flask]:
    return {target: create_function_app(target) for target in ("on_upload", "on_dispatch", "on_poll")}


@pytest.fixture
def functions(function_apps: dict[str, Flask]) -> Functions:
    """Test clients of the three deployed functions."""
    return Functions(
        upload=function_apps["on_upload"].test_client(),
        dispatch=function_apps["on_dispatch"].test_client(),
        poll=function_apps["on_poll"].test_client(),
    )


@pytest.fixture
def install() -> Iterator[Callable[[Harness], Harness]]:
    """Install a harness's App for the entry points; always uninstalled after the test."""

    def do(harness: Harness) -> Harness:
        bootstrap.set_app(harness.app)
        return harness

    yield do
    bootstrap.set_app(None)


@pytest.fixture
def world(install: Callable[[Harness], Harness]) -> Harness:
    """A harness (quota 1) installed as the functions' App."""
    return install(make_harness())
