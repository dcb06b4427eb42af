"""The evaluation gate on the fakes (issue 15): a succeeded job with promote_as is judged against the alias's
champion (or the base model) on its held-out set, promoted only when better, and announced exactly once."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from shared import bootstrap, cli
from shared.adapters.identity import FixedOperator, Operator
from shared.aliases import Champion
from shared.jobs import JobState
from shared.ports import Generated, TuningUnavailable
from shared.services import gate as gate_module
from tests.eventschema import assert_valid_completion, assert_valid_model_event
from tests.fakes import Harness, make_harness
from tests.fakes_gate import qa_line

TEAM = "kitchen"
ALIAS = "colours"
COLOURS = ("teal", "amber", "crimson", "olive", "indigo", "coral", "ivory", "slate")
HELD_OUT = 40
OPERATOR = Operator("ops@example.com", "service account credentials", verified=True)


def answer(item: int) -> str:
    return f"The colour of item {item} is {COLOURS[item % len(COLOURS)]}."


TRAINING = "".join(qa_line(f"Which colour is item {n}?", answer(n)) for n in range(HELD_OUT))
HELD = "".join(qa_line(f"Name the colour of item {n}.", answer(n)) for n in range(HELD_OUT))


def tuned_job(h: Harness, name: str, *, quality: int, gate: dict[str, Any] | None = None, team: str = TEAM) -> str:
    """Upload a manifest with promote_as, tune it (the fake's endpoint answers at `quality` percent), succeed it,
    and return its id; its evaluate request is then on the evaluate topic."""
    h.blobs.put("ds", f"datasets/{team}/{name}-train.jsonl", TRAINING.encode())
    h.blobs.put("ds", f"datasets/{team}/held-out.jsonl", HELD.encode())
    manifest = {
        "training_dataset": f"datasets/{team}/{name}-train.jsonl",
        "evaluation_dataset": f"datasets/{team}/held-out.jsonl",
        "promote_as": ALIAS,
        "gate": {"min_examples": 30, **(gate or {})},
    }
    job_id = h.upload(f"incoming/{team}/{name}.json", data=json.dumps(manifest))
    assert h.job(job_id).state is JobState.QUEUED, h.job(job_id).validation
    h.app.dispatcher.dispatch()
    vertex = h.job(job_id).vertex_job_name
    remote = h.tuning.succeed(vertex)
    h.answers.tune(remote.endpoint, TRAINING, quality=quality)
    h.app.poller.poll()
    assert h.job(job_id).state is JobState.SUCCEEDED
    return job_id


@contextmanager
def publishing_fails(h: Harness, why: str) -> Iterator[None]:
    """Every publish fails (the process dies there) until the block ends."""

    def fail(*args: Any, **kwargs: Any) -> str:
        raise TuningUnavailable(why)

    real = h.publisher.publish
    h.publisher.publish = fail  # type: ignore[method-assign]
    try:
        yield
    finally:
        h.publisher.publish = real  # type: ignore[method-assign]


def gate_events(h: Harness) -> list[tuple[dict[str, str], dict[str, Any]]]:
    return [
        (dict(p.attributes), json.loads(p.data))
        for p in h.completions()
        if p.attributes["ce-type"].startswith("tunedrop.model.v1.")
    ]


def evaluate(h: Harness, job_id: str) -> str:
    assert h.app.gate is not None
    return h.app.gate.evaluate(job_id)


def champion(h: Harness) -> str:
    found = h.store.read_alias(ALIAS)
    assert found is not None and found.value.champion is not None
    return found.value.champion.job_id


@pytest.fixture
def h() -> Harness:
    return make_harness(quota=3)


def test_a_first_job_is_judged_against_the_base_model_promoted_and_announced_once(h: Harness) -> None:
    first = tuned_job(h, "first", quality=100)
    (completion,) = [p for p in h.completions() if p.attributes["ce-type"] == "tunedrop.job.v1.succeeded"]
    assert json.loads(completion.data)["evaluation_gate"] == {"alias": ALIAS, "status": "pending"}
    assert_valid_completion(dict(completion.attributes), json.loads(completion.data))
    assert [json.loads(m.data) for m in h.publisher.on(h.settings.evaluate_topic)] == [{"job_id": first}]

    assert evaluate(h, first) == "promoted"
    assert evaluate(h, first) == "judged already"  # a redelivery: nothing again

    verdict = h.job(first).verdict
    assert verdict is not None
    assert (verdict["verdict"], verdict["metric"], verdict["examples"]) == ("better", "exact_match", HELD_OUT)
    assert verdict["baseline_model"].endswith("/publishers/google/models/gemini-3.5-flash")
    assert verdict["candidate_mean"] == 1.0 and verdict["baseline_mean"] == 0.0
    assert verdict["calls"] == pytest.approx(HELD_OUT * 2 + 2 * 2)  # two answers each, two batched scores a chunk
    (event,) = gate_events(h)
    attributes, data = event
    assert_valid_model_event(attributes, data)
    assert (attributes["ce-type"], attributes["ce-id"], attributes["ce-subject"]) == (
        "tunedrop.model.v1.promoted",
        f"{first}/1/promoted",
        ALIAS,
    )
    assert data["champion"]["job_id"] == first == champion(h)
    rows = h.blobs.read(h.settings.bucket, f"reports/{TEAM}/{first}/evaluation.jsonl").decode().splitlines()
    assert len(rows) == HELD_OUT and json.loads(rows[0])["candidate"] == answer(0)
    assert "<html" in h.blobs.read(h.settings.bucket, f"reports/{TEAM}/{first}/report.html").decode().lower()


def test_a_worse_job_is_held_and_a_better_one_replaces_the_champion(h: Harness) -> None:
    first = tuned_job(h, "first", quality=60)
    assert evaluate(h, first) == "promoted"
    worse = tuned_job(h, "worse", quality=5)
    assert evaluate(h, worse) == "held"
    assert champion(h) == first
    assert h.job(worse).verdict["verdict"] == "worse"  # type: ignore[index]
    assert h.job(worse).verdict["baseline_job"] == first  # type: ignore[index]
    better = tuned_job(h, "better", quality=100)
    assert evaluate(h, better) == "promoted"
    assert champion(h) == better
    kinds = [(data["job_id"], data["kind"]) for _, data in gate_events(h)]
    assert kinds == [(first, "promoted"), (worse, "held"), (better, "promoted")]
    for attributes, data in gate_events(h):
        assert_valid_model_event(attributes, data)


def test_a_delivery_cut_short_goes_on_from_the_chunks_written_and_announces_once(h: Harness) -> None:
    first = tuned_job(h, "first", quality=100)
    # The 45th model call fails for good (the adapter's retries gave up): the first chunk of 20 examples (40 calls)
    # is written, the second is not.
    calls_per_chunk = 40

    original = h.answers.generate
    made: list[int] = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        if len(made) == calls_per_chunk + 5:
            raise TuningUnavailable("the model did not answer")
        return original(*args, **kwargs)

    h.answers.generate = failing  # type: ignore[method-assign]
    with pytest.raises(TuningUnavailable):
        evaluate(h, first)
    assert gate_events(h) == [] and h.job(first).verdict is None
    made.clear()
    h.answers.generate = original  # type: ignore[method-assign]
    before = len(h.answers.calls)
    assert evaluate(h, first) == "promoted"
    assert len(h.answers.calls) - before == 2 * (HELD_OUT - 20)  # the chunk written is not asked again
    assert len(gate_events(h)) == 1


def test_an_evaluation_over_its_cost_cap_calls_no_model_and_holds(h: Harness) -> None:
    first = tuned_job(h, "first", quality=100, gate={"max_cost_usd": 0.0000001})
    before = len(h.answers.calls)
    assert evaluate(h, first) == "held"
    assert len(h.answers.calls) == before and h.judge.calls == []
    verdict = h.job(first).verdict
    assert verdict is not None and verdict["verdict"] == "inconclusive" and verdict["calls"] == 0
    assert "over the cap" in verdict["reason"]
    assert h.store.read_alias(ALIAS) is None


def test_a_manual_gate_announces_a_candidate_and_moves_nothing(h: Harness) -> None:
    first = tuned_job(h, "first", quality=100, gate={"manual": True})
    assert evaluate(h, first) == "candidate_ready"
    assert h.store.read_alias(ALIAS) is None
    ((attributes, data),) = gate_events(h)
    assert attributes["ce-type"] == "tunedrop.model.v1.candidate_ready" and data["verdict"]["verdict"] == "better"


def test_a_job_of_another_team_cannot_take_the_alias(h: Harness) -> None:
    first = tuned_job(h, "first", quality=100)
    evaluate(h, first)
    h.blobs.put("ds", "datasets/ads/t.jsonl", TRAINING.encode())
    h.blobs.put("ds", "datasets/ads/h.jsonl", HELD.encode())
    manifest = {
        "training_dataset": "datasets/ads/t.jsonl",
        "evaluation_dataset": "datasets/ads/h.jsonl",
        "promote_as": ALIAS,
    }
    job = h.job(h.upload("incoming/ads/m.json", data=json.dumps(manifest)))
    assert job.state is JobState.REJECTED
    assert "alias_other_team" in job.validation["error_counts"]


def test_a_job_of_another_team_uploaded_before_the_alias_existed_does_not_move_it(h: Harness) -> None:
    # Both uploads pass (no alias yet); the kitchen's job takes the alias first; the ads job, better than the base
    # model, is held and never judged against the kitchen's champion.
    ads = tuned_job(h, "ads", quality=100, team="ads")
    first = tuned_job(h, "first", quality=60)
    assert evaluate(h, first) == "promoted"
    assert evaluate(h, ads) == "held"
    assert champion(h) == first
    assert h.job(ads).verdict["baseline_job"] == ""  # type: ignore[index]
    (attributes, data) = gate_events(h)[-1]
    assert (data["job_id"], data["kind"], data["champion"]) == (ads, "held", None)
    assert "is team kitchen's" in data["reason"]
    assert_valid_model_event(attributes, data)


def test_a_held_out_example_vertex_ai_refuses_holds_the_job_with_the_reason(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Upload validation lets an unknown key on a turn through; GenerateContent refuses it for good. The delivery
    # must still end in a verdict and an event, not be acknowledged with the job pending for ever.
    odd = {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}], "mood": "odd"},
            {"role": "model", "parts": [{"text": "x"}]},
        ]
    }
    monkeypatch.setattr(sys.modules[__name__], "HELD", HELD + json.dumps(odd) + "\n")
    first = tuned_job(h, "first", quality=100)
    assert evaluate(h, first) == "held"
    verdict = h.job(first).verdict
    assert verdict is not None and verdict["verdict"] == "inconclusive"
    assert "could not run" in verdict["reason"] and "mood" in verdict["reason"]
    ((attributes, data),) = gate_events(h)
    assert data["kind"] == "held" and h.store.read_alias(ALIAS) is None
    assert_valid_model_event(attributes, data)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"evaluation_dataset": None}, "manifest_incomplete_gate"),
        ({"evaluation_dataset": f"datasets/{TEAM}/first-train.jsonl"}, "manifest_same_datasets"),
        ({"gate": {"min_examples": 41}}, "evaluation_too_small"),
        ({"gate": {"metric": "perplexity"}}, "manifest_bad_gate"),
        ({"gate": {"min_examples": 501}}, "manifest_bad_gate"),  # over TUNEDROP_EVALUATION_MAX_EXAMPLES
    ],
)
def test_a_gate_that_cannot_run_is_rejected_at_upload(h: Harness, changes: dict[str, Any], code: str) -> None:
    h.blobs.put("ds", f"datasets/{TEAM}/first-train.jsonl", TRAINING.encode())
    h.blobs.put("ds", f"datasets/{TEAM}/held-out.jsonl", HELD.encode())
    manifest = {
        "training_dataset": f"datasets/{TEAM}/first-train.jsonl",
        "evaluation_dataset": f"datasets/{TEAM}/held-out.jsonl",
        "promote_as": ALIAS,
        "gate": {"min_examples": 30},
        **changes,
    }
    job = h.job(
        h.upload(f"incoming/{TEAM}/m.json", data=json.dumps({k: v for k, v in manifest.items() if v is not None}))
    )
    assert job.state is JobState.REJECTED
    assert code in job.validation["error_counts"], job.validation


def test_a_held_out_example_that_is_also_a_training_line_is_refused(h: Harness) -> None:
    h.blobs.put("ds", f"datasets/{TEAM}/t.jsonl", TRAINING.encode())
    h.blobs.put("ds", f"datasets/{TEAM}/h.jsonl", (HELD + TRAINING.splitlines()[3] + "\n").encode())
    manifest = {
        "training_dataset": f"datasets/{TEAM}/t.jsonl",
        "evaluation_dataset": f"datasets/{TEAM}/h.jsonl",
        "promote_as": ALIAS,
        "gate": {"min_examples": 30},
    }
    job = h.job(h.upload(f"incoming/{TEAM}/m.json", data=json.dumps(manifest)))
    assert job.validation["error_counts"] == {"evaluation_overlap": 1}


# -- operators: tunedrop aliases / alias / promote / rollback ------------------------------------------


@pytest.fixture
def operated(monkeypatch: pytest.MonkeyPatch, h: Harness) -> Iterator[Harness]:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    bootstrap.set_app(replace(h.app, operator_identity=FixedOperator(OPERATOR)))
    try:
        yield h
    finally:
        bootstrap.set_app(None)


def tunedrop(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(argv))
    return int(exit_info.value.code or 0), capsys.readouterr().out


def test_an_operator_rolls_back_and_promotes_by_hand_recorded_and_announced(
    operated: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = operated
    first = tuned_job(h, "first", quality=60)
    evaluate(h, first)
    second = tuned_job(h, "second", quality=100)
    evaluate(h, second)
    assert champion(h) == second

    status, out = tunedrop(capsys, "rollback", ALIAS, "--reason", "users report worse answers")
    assert status == 0 and f"champion is job {first} again" in out
    assert champion(h) == first
    status, out = tunedrop(capsys, "alias", ALIAS, "--json")
    document = json.loads(out)
    assert document["champion_job_id"] == first and document["history"] == []

    worse = tuned_job(h, "worse", quality=5)
    evaluate(h, worse)
    assert champion(h) == first  # held by the gate
    status, _ = tunedrop(capsys, "promote", ALIAS, worse, "--reason", "we accept it for its tone")
    assert status == 0 and champion(h) == worse
    found = h.store.read_alias(ALIAS)
    assert found is not None and found.value.champion is not None
    assert (found.value.champion.actor, found.value.champion.reason) == (OPERATOR.actor, "we accept it for its tone")

    by_hand = [(a, d) for a, d in gate_events(h) if d["actor"]]
    assert [(d["job_id"], d["reason"]) for _, d in by_hand] == [
        (first, "users report worse answers"),
        (worse, "we accept it for its tone"),
    ]
    for attributes, data in by_hand:
        assert_valid_model_event(attributes, data)
    status, out = tunedrop(capsys, "aliases")
    assert status == 0 and ALIAS in out and worse in out


def test_rollback_without_an_earlier_champion_is_refused(operated: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    h = operated
    first = tuned_job(h, "first", quality=100)
    evaluate(h, first)
    status, _ = tunedrop(capsys, "rollback", ALIAS, "--reason", "try")
    assert status != 0 and champion(h) == first


def test_tunedrop_job_shows_the_gate_pending_then_its_verdict(h: Harness) -> None:
    first = tuned_job(h, "first", quality=100)
    assert "  gate         promote as colours: pending" in cli.job_details(h.job(first))
    evaluate(h, first)
    (line,) = [line for line in cli.job_details(h.job(first)) if line.startswith("  gate")]
    assert "promote as colours: better: the candidate beat the base model" in line
    assert f"reports/{TEAM}/{first}/report.html" in line


def test_a_team_policy_lowers_the_evaluation_cost_cap() -> None:
    policies = json.dumps({"teams": {TEAM: {"evaluation_max_cost_usd": 0.0000001}}})
    h = make_harness({"TUNEDROP_TEAM_POLICIES": policies}, quota=3)
    first = tuned_job(h, "first", quality=100)
    before = len(h.answers.calls)
    assert evaluate(h, first) == "held"
    assert len(h.answers.calls) == before
    verdict = h.job(first).verdict
    assert verdict is not None and verdict["cost_cap_usd"] == 0.0000001


def test_answers_costing_more_than_estimated_stop_the_evaluation_at_the_cap(h: Harness) -> None:
    # The estimate takes answers as long as the references; a model that writes (or thinks) far more is stopped
    # at the first chunk boundary over the cap, not allowed to spend on.
    first = tuned_job(h, "first", quality=100)
    original = h.answers.generate

    def verbose(*args: Any, **kwargs: Any) -> Generated:
        said = original(*args, **kwargs)
        return Generated(said.text, said.prompt_tokens, 100_000)  # $0.90 an answer at gemini-3.5-flash's price

    h.answers.generate = verbose  # type: ignore[method-assign]
    before = len(h.answers.calls)
    assert evaluate(h, first) == "held"
    assert len(h.answers.calls) - before == 2 * 20  # one chunk, then stopped
    verdict = h.job(first).verdict
    assert verdict is not None and verdict["verdict"] == "inconclusive"
    assert "stopped after 20 examples" in verdict["reason"] and h.store.read_alias(ALIAS) is None


def test_two_deliveries_judging_at_once_act_on_the_verdict_stored_first(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tuned_job(h, "first", quality=100)
    gate = h.app.gate
    assert gate is not None
    judge_now = gate._judge_now  # the step a concurrent delivery races with

    def raced(job: Any, contest: Any) -> dict[str, Any]:
        mine = judge_now(job, contest)
        # Meanwhile the other delivery stored its verdict, which disagrees (a model's answers vary).
        theirs = {**mine, "verdict": "inconclusive", "reason": "the other delivery's"}
        h.store.update(first, lambda latest: latest.with_fields(verdict=theirs))
        return mine

    monkeypatch.setattr(gate, "_judge_now", raced)
    assert evaluate(h, first) == "held"
    assert h.job(first).verdict["reason"] == "the other delivery's"  # type: ignore[index]
    assert h.store.read_alias(ALIAS) is None


def test_an_operator_command_that_died_before_announcing_is_announced_when_run_again_and_moves_once(
    operated: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = operated
    for name, quality in (("first", 30), ("second", 60), ("third", 100)):
        evaluate(h, tuned_job(h, name, quality=quality))
    third = champion(h)
    with publishing_fails(h, "the CLI died"):
        status, _ = tunedrop(capsys, "rollback", ALIAS, "--reason", "first try")
    assert status != 0
    second = champion(h)
    assert second != third  # rolled back once, not announced yet

    status, _ = tunedrop(capsys, "rollback", ALIAS, "--reason", "second try")
    assert status == 0 and champion(h) == second  # the earlier rollback announced, not a second step back
    announced = [a["ce-id"] for a, d in gate_events(h) if d["actor"]]
    assert announced == [f"{ALIAS}/1"]
    found = h.store.read_alias(ALIAS)
    assert found is not None and found.value.pending is None


def test_a_redelivered_verdict_does_not_undo_an_operators_rollback(
    operated: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = operated
    first = tuned_job(h, "first", quality=60)
    evaluate(h, first)
    second = tuned_job(h, "second", quality=100)
    # The gate promotes `second` and dies before its event.
    with publishing_fails(h, "died"), pytest.raises(TuningUnavailable):
        evaluate(h, second)
    assert champion(h) == second
    assert tunedrop(capsys, "rollback", ALIAS, "--reason", "not this one")[0] == 0
    assert champion(h) == first

    assert evaluate(h, second) == "held"  # the redelivery
    assert champion(h) == first
    (held,) = [d for _, d in gate_events(h) if d["job_id"] == second]
    assert "rolled alias colours back from this job" in held["reason"]


def test_a_long_evaluation_hands_the_rest_to_a_new_delivery_and_finishes_there(h: Harness) -> None:
    first = tuned_job(h, "first", quality=100)
    gate = h.app.gate
    assert gate is not None
    gate._delivery_seconds = -1.0  # every chunk takes longer than a delivery may
    asked = len(h.publisher.on(h.settings.evaluate_topic))

    assert evaluate(h, first) == "continuing"  # judged the first chunk of 20, asked for the rest
    assert [json.loads(m.data) for m in h.publisher.on(h.settings.evaluate_topic)[asked:]] == [{"job_id": first}]
    assert gate_events(h) == [] and h.job(first).verdict is None
    calls = len(h.answers.calls)
    assert evaluate(h, first) == "promoted"  # the next delivery reads the chunk back and judges the second
    assert len(h.answers.calls) - calls == 2 * (HELD_OUT - 20)
    assert len(gate_events(h)) == 1


@pytest.mark.parametrize("when", ["before the command reads the alias back", "while the command publishes"])
def test_a_gate_promotion_during_an_operators_announcement_is_kept_and_leaves_nothing_pending(
    operated: Harness, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    h = operated
    for name, quality in (("first", 60), ("second", 100)):
        evaluate(h, tuned_job(h, name, quality=quality))
    gated = tuned_job(h, "gated", quality=100)

    def gate_promotes() -> None:  # what GateKeeper._promote writes: the champion replaced, the rest kept
        found = h.store.read_alias(ALIAS)
        assert found is not None and found.value.pending is not None
        champion_of = Champion(gated, f"{gated}-model", "endpoint", h.clock(), reason="the evaluation gate")
        assert h.store.write_alias(found.value.promoted(champion_of), found.version)

    if when == "while the command publishes":
        real_publish = h.publisher.publish

        def publish(*args: Any, **kwargs: Any) -> Any:
            gate_promotes()
            monkeypatch.setattr(h.publisher, "publish", real_publish)
            return real_publish(*args, **kwargs)

        monkeypatch.setattr(h.publisher, "publish", publish)
    else:
        real_write = h.store.write_alias

        def write_alias(alias: Any, version: Any) -> bool:
            monkeypatch.setattr(h.store, "write_alias", real_write)
            written = real_write(alias, version)
            gate_promotes()
            return written

        monkeypatch.setattr(h.store, "write_alias", write_alias)

    assert tunedrop(capsys, "rollback", ALIAS, "--reason", "users report worse answers")[0] == 0
    found = h.store.read_alias(ALIAS)
    assert found is not None and found.value.champion is not None
    assert found.value.champion.job_id == gated  # the gate's later move is not undone by clearing the announcement
    assert found.value.pending is None  # nor is the announcement left for the next command to publish again


def test_a_delivery_hands_over_before_a_chunk_that_would_take_it_past_its_budget(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tuned_job(h, "first", quality=100)
    gate = h.app.gate
    assert gate is not None
    clock = [0.0]  # each model call takes one second
    monkeypatch.setattr(gate_module, "time", SimpleNamespace(monotonic=lambda: clock[0], perf_counter=lambda: clock[0]))
    generate = h.answers.generate

    def slow(*args: Any, **kwargs: Any) -> Generated:
        clock[0] += 1.0
        return generate(*args, **kwargs)

    monkeypatch.setattr(h.answers, "generate", slow)
    gate._delivery_seconds = 60.0  # the first chunk (40 calls) takes 40 s: a second one would end at 80 s

    assert evaluate(h, first) == "continuing"
    assert len(h.answers.calls) == 2 * 20 and h.job(first).verdict is None
    assert evaluate(h, first) == "promoted"
