from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.stackfixture import log_digest, running_stack

# Quota 2 with 3-second jobs and a 1-second poll: short enough to run, tight enough to test.
E2E_SETTINGS = {
    "TUNEDROP_QUOTA": "2",
    "TUNEDROP_EMULATOR_QUOTA": "10",
    "TUNEDROP_EMULATOR_JOB_SECONDS": "3",
    "TUNEDROP_POLL_SECONDS": "1",
}


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with running_stack(tmp_path_factory.mktemp("stack"), E2E_SETTINGS) as env:
        yield env


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    """A failed end-to-end test carries the stack's logs: CI keeps nothing else."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        report.sections.append(("local stack logs", log_digest()))
