"""The evaluation gate end to end on the local stack (issue 15's acceptance): tuned models are judged on held-out
data through the emulator's GenerateContent and EvaluateInstances, promoted only when better, announced once each,
and an operator's rollback restores the previous champion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from shared.bootstrap import build_app
from shared.jobs import job_id_for
from tests.e2e.helpers import Completion, CompletionReader, bucket
from tests.eventschema import assert_valid_model_event
from tests.fakes_gate import qa_line

pytestmark = pytest.mark.e2e

TEAM = "gate"
COLOURS = ("teal", "amber", "crimson", "olive", "indigo", "coral", "ivory", "slate")
EXAMPLES = 110  # above the gate's default minimum of 100 held-out examples


def _answer(item: int) -> str:
    return f"The colour of item {item} is {COLOURS[item % len(COLOURS)]}."


TRAINING = "".join(qa_line(f"Which colour is item {n}?", _answer(n)) for n in range(EXAMPLES))
HELD_OUT = "".join(qa_line(f"Name the colour of item {n}.", _answer(n)) for n in range(EXAMPLES))


def _tune(env: dict[str, str], run: str, name: str, quality: int, **manifest: Any) -> str:
    """Upload a manifest promoting as the run's alias; the emulator's tuned model answers from its training data
    for `quality` percent of prompts (its label emulator_quality), generically otherwise."""
    target = bucket(env)
    target.blob(f"datasets/{TEAM}/{run}-{name}.jsonl").upload_from_string(TRAINING)
    body = {
        "training_dataset": f"datasets/{TEAM}/{run}-{name}.jsonl",
        "evaluation_dataset": f"datasets/{TEAM}/{run}-held-out.jsonl",
        "promote_as": f"colours-{run}",
        "labels": {"emulator_quality": str(quality)},
        **manifest,
    }
    blob = target.blob(f"incoming/{TEAM}/{run}-{name}.json")
    blob.upload_from_string(json.dumps(body), content_type="application/json")
    return job_id_for(env["TUNEDROP_BUCKET"], blob.name, str(blob.generation))


def _verdict_of(reader: CompletionReader, job_id: str, seen: list[Completion]) -> Completion:
    def done(got: list[Completion]) -> bool:
        return any(
            e.attributes.get("ce-type", "").startswith("tunedrop.model.v1.") and e.data.get("job_id") == job_id
            for e in [*seen, *got]
        )

    seen.extend(reader.read_until(done, timeout=150))
    (event,) = [
        e
        for e in seen
        if e.attributes.get("ce-type", "").startswith("tunedrop.model.v1.") and e.data["job_id"] == job_id
    ]
    assert_valid_model_event(event.attributes, event.data)
    return event


def _champion(alias: str) -> str | None:
    found = build_app().store.read_alias(alias)
    return found.value.champion.job_id if found is not None and found.value.champion is not None else None


def _tunedrop(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from shared.cli import main; main()", *argv],
        env={**os.environ, **env, "TUNEDROP_OPERATOR": "e2e-operator"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _judge_four(env: dict[str, str], run: str, alias: str) -> tuple[dict[str, str], list[Completion]]:
    """First (promoted over the base model), worse (held), better (promoted), capped (held, no model called):
    their job ids, and every event read."""
    reader = CompletionReader(env)
    seen: list[Completion] = []
    jobs: dict[str, str] = {}
    try:
        jobs["first"] = _tune(env, run, "first", 60)
        promoted = _verdict_of(reader, jobs["first"], seen)
        assert promoted.attributes["ce-type"] == "tunedrop.model.v1.promoted", promoted.data
        assert promoted.data["verdict"]["baseline_model"].endswith("/publishers/google/models/gemini-3.5-flash")
        assert _champion(alias) == jobs["first"]

        jobs["worse"] = _tune(env, run, "worse", 5)
        held = _verdict_of(reader, jobs["worse"], seen)
        assert held.attributes["ce-type"] == "tunedrop.model.v1.held", held.data
        assert held.data["verdict"]["baseline_job"] == jobs["first"] and _champion(alias) == jobs["first"]

        jobs["better"] = _tune(env, run, "better", 100)
        assert _verdict_of(reader, jobs["better"], seen).attributes["ce-type"] == "tunedrop.model.v1.promoted"
        assert _champion(alias) == jobs["better"]

        jobs["capped"] = _tune(env, run, "capped", 100, gate={"max_cost_usd": 0.000001})
        _verdict_of(reader, jobs["capped"], seen)
        seen.extend(reader.read_until(lambda got: False, timeout=3))  # anything published twice arrives meanwhile
    finally:
        reader.close()
    return jobs, seen


def _assert_capped_called_no_model(env: dict[str, str], seen: list[Completion], capped: str) -> None:
    (refused,) = [
        e for e in seen if e.data.get("job_id") == capped and e.attributes["ce-type"].startswith("tunedrop.model")
    ]
    assert refused.attributes["ce-type"] == "tunedrop.model.v1.held"
    assert refused.data["verdict"]["verdict"] == "inconclusive" and refused.data["verdict"]["calls"] == 0
    assert "over the cap" in refused.data["reason"]
    # No model was asked: nothing of the evaluation was written for it.
    names = [b.name for b in bucket(env).list_blobs(prefix=f"reports/{TEAM}/{capped}/")]
    assert not [n for n in names if "evaluation" in n], names


def test_the_gate_promotes_better_models_holds_a_worse_one_and_a_rollback_restores(stack_env: dict[str, str]) -> None:
    env = stack_env
    run = uuid.uuid4().hex[:6]
    alias = f"colours-{run}"
    bucket(env).blob(f"datasets/{TEAM}/{run}-held-out.jsonl").upload_from_string(HELD_OUT)
    jobs, seen = _judge_four(env, run, alias)

    _assert_capped_called_no_model(env, seen, jobs["capped"])
    # Each verdict announced exactly once.
    gate_ids = [e.attributes["ce-id"] for e in seen if e.attributes.get("ce-type", "").startswith("tunedrop.model.v1.")]
    assert sorted(gate_ids) == sorted(set(gate_ids)) and len(gate_ids) == 4
    # The report people look at was written beside the results.
    report = bucket(env).blob(f"reports/{TEAM}/{jobs['better']}/report.html").download_as_text()
    assert 'id="gate"' in report and jobs["better"] in report

    rolled = _tunedrop(env, "rollback", alias, "--reason", "e2e: users prefer the earlier answers")
    assert rolled.returncode == 0, rolled.stderr
    assert _champion(alias) == jobs["first"]
    shown = json.loads(_tunedrop(env, "alias", alias, "--json").stdout)
    assert shown["champion_job_id"] == jobs["first"]
