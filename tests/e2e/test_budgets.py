"""Budgets on the local stack, through public surfaces only (issue 13): a team over its monthly budget gets
nothing more submitted while other teams' jobs go on.

Team ``thrifty`` has a budget of one cent; ``rich`` has none. Thrifty's first job fits (its estimate is a few
billable tokens) and runs; when it ends, the actual cost Vertex AI reports replaces the estimate and takes the
team past its budget. Its second job then waits QUEUED with ``waiting_reason == "over_budget"`` and a lifecycle
event ``waiting`` says why, while rich's jobs, uploaded with it, are submitted and succeed.

Why a budget between the estimate and the actual cost, not between one estimate and two: the dispatcher counts
the validation's billable tokens at the model's price unrounded (shared/services/budgets.py), a fraction of a cent
for a small dataset, and how the stack's validator estimates them (rule of thumb or a token counter) is its own
business; the actual cost of an emulated job is at least 21,000 billable tokens (the emulator's plausible
statistics, at 3 epochs), $0.063 at $3 per million. The test checks both ends: the spend `tunedrop quota --json`
shows, and the figures the waiting event carries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from shared.jobs import job_id_for
from tests.e2e.helpers import Completion, CompletionReader, bucket, dataset, job_document, list_tuning_jobs
from tests.e2e.stacks import stack_fixture

pytestmark = pytest.mark.e2e

# A team with a budget may tune only a model with a recorded price; this one has one and is open for tuning.
PRICED_MODEL = "gemini-3.1-flash-lite"
BUDGET_USD = 0.01
budgets_env = stack_fixture(
    "budgets",
    {
        # Room for all three jobs of the second round: only the budget holds thrifty's back.
        "TUNEDROP_QUOTA": "3",
        "TUNEDROP_EMULATOR_QUOTA": "10",
        "TUNEDROP_EMULATOR_JOB_SECONDS": "2",
        "TUNEDROP_POLL_SECONDS": "1",
        "TUNEDROP_BASE_MODEL": PRICED_MODEL,
        "TUNEDROP_TEAM_POLICIES": json.dumps({"teams": {"thrifty": {"monthly_budget_usd": BUDGET_USD}}}),
    },
    scope="module",
)


def _upload(env: dict[str, str], object_name: str) -> str:
    blob = bucket(env).blob(object_name)
    blob.upload_from_string(dataset(), content_type="application/jsonl")
    return job_id_for(env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))


def _quota_teams(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """`tunedrop quota --json`: each team's row (running, queued, spend this month, budget)."""
    done = subprocess.run(
        [sys.executable, "-c", "from shared.cli import main; main()", "quota", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {row["team"]: row for row in json.loads(done.stdout)["teams"]}


def _is_waiting(event: Completion, job_id: str) -> bool:
    return event.attributes["ce-subject"] == job_id and event.attributes["kind"] == "waiting"


@dataclass
class Rounds:
    """Thrifty's first job alone, then its second with rich's two; what the events said."""

    first: str
    second: str
    rich: set[str]
    outcomes: dict[str, Completion]  # job id -> its completion event
    steps: list[Completion]  # lifecycle events


def _two_rounds(env: dict[str, str]) -> Rounds:
    completions = CompletionReader(env)
    lifecycle = CompletionReader({**env, "TUNEDROP_COMPLETIONS_TOPIC": env["TUNEDROP_EVENTS_TOPIC"]})
    try:
        first = _upload(env, "incoming/thrifty/first.jsonl")
        ended = completions.read_until(lambda got: first in {e.attributes["ce-subject"] for e in got}, 90)
        second = _upload(env, "incoming/thrifty/second.jsonl")
        rich = {_upload(env, f"incoming/rich/{name}.jsonl") for name in ("one", "two")}
        ended += completions.read_until(lambda got: rich <= {e.attributes["ce-subject"] for e in got}, 90)
        steps = lifecycle.read_until(lambda got: any(_is_waiting(e, second) for e in got), 30)
    finally:
        completions.close()
        lifecycle.close()
    return Rounds(first, second, rich, {e.attributes["ce-subject"]: e for e in ended}, steps)


def test_a_team_over_budget_gets_nothing_more_submitted_while_other_teams_jobs_go_on(
    budgets_env: dict[str, str],
) -> None:
    env = budgets_env
    rounds = _two_rounds(env)
    outcomes = rounds.outcomes
    first = outcomes[rounds.first]
    assert first.attributes["ce-type"] == "tunedrop.job.v1.succeeded", first.data["error"]
    assert (first.data["team"], first.data["base_model"]) == ("thrifty", PRICED_MODEL)
    for job_id in rounds.rich:
        assert outcomes[job_id].attributes["ce-type"] == "tunedrop.job.v1.succeeded", outcomes[job_id].data["error"]
        assert outcomes[job_id].data["team"] == "rich"

    # The first job's actual cost replaced its estimate and took the team past its budget; rich is charged
    # too (for the record), with no budget to hold it back.
    teams = _quota_teams(env)
    assert teams["thrifty"]["spend_usd"] > BUDGET_USD == teams["thrifty"]["budget_usd"]
    assert (teams["thrifty"]["queued"], teams["thrifty"]["running"]) == (1, 0)
    assert teams["rich"]["spend_usd"] > 0 and teams["rich"]["budget_usd"] is None

    waiting = job_document(env, rounds.second)
    assert (waiting["state"], waiting["waiting_reason"]) == ("QUEUED", "over_budget")
    assert rounds.second not in outcomes, "a job waiting over budget has no completion event"
    assert not waiting["vertex_job_name"]
    assert not list_tuning_jobs(env, f"labels.tunedrop_job={rounds.second}"), "nothing was submitted for it"

    (event,) = [e for e in rounds.steps if _is_waiting(e, rounds.second)]
    _assert_says_over_budget(event, teams["thrifty"]["spend_usd"])


def _assert_says_over_budget(event: Completion, spend_usd: float) -> None:
    """The lifecycle event of a job that waits over its team's budget, with the figures that hold it back."""
    assert event.attributes["ce-type"] == "tunedrop.job.v1.lifecycle.waiting"
    assert (event.data["reason"], event.data["team"], event.data["state"]) == ("over_budget", "thrifty", "QUEUED")
    assert event.data["budget_usd"] == BUDGET_USD
    assert event.data["spent_usd"] == pytest.approx(spend_usd, abs=0.005)  # `tunedrop quota` rounds to cents
    # Alone, the second job's estimate would fit (as the first one's did): the spend is what holds it back.
    assert event.data["estimate_usd"] <= BUDGET_USD < event.data["spent_usd"] + event.data["estimate_usd"]
