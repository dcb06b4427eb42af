"""`tunedrop` commands on fakes: exit statuses, text and --json output, usage errors, where logs go."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from shared import bootstrap, cli, logs
from shared.adapters.identity import FixedOperator, Operator
from shared.clock import FakeClock
from shared.jobs import JobState
from shared.ports import PolicyRecord
from shared.validation.cli import parse_day
from shared.validation.registry import DEFAULT_MODEL, markdown_table, registry
from tests.fakes import Harness, make_harness

MARKUP = "[bold red]loud[/bold red] :smile: [link=https://example.invalid]x[/link]"
ALICE = Operator("alice@example.com", "service account credentials", verified=True)


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The services on fakes, on 2026-11-29 (every seed model retired); a project is set, so no local stack. The
    command runs as alice@example.com."""
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    built = make_harness(clock=FakeClock(datetime(2026, 11, 29, 12, tzinfo=UTC)))
    bootstrap.set_app(replace(built.app, operator_identity=FixedOperator(ALICE)))
    try:
        yield built
    finally:
        bootstrap.set_app(None)


def tunedrop(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of one command."""
    capsys.readouterr()  # what the test's own setup logged
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(argv))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


# -- jobs and job ------------------------------------------------------------------------------


def test_jobs_json_is_the_list_of_job_documents_oldest_first(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    first = harness.upload("a.jsonl")
    harness.clock.advance(60)
    second = harness.upload("b.jsonl")
    code, out, _ = tunedrop(capsys, "jobs", "--json")
    documents = json.loads(out)
    assert code == 0
    assert [d["job_id"] for d in documents] == [first, second]
    assert documents[0] == json.loads(json.dumps(harness.job(first).to_document(), default=str))
    for key in ("job_id", "state", "bucket", "object_name", "base_model", "vertex_job_name"):
        assert key in documents[1]


def test_jobs_state_is_read_in_any_case_and_limit_bounds_the_list(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    queued = {harness.upload("a.jsonl"), harness.upload("c.jsonl")}
    harness.upload("old.jsonl", metadata={"base_model": "gemini-1.5-pro-002"})  # rejected: retired
    _, out, _ = tunedrop(capsys, "jobs", "--state", "rejected", "--json")
    assert [d["state"] for d in json.loads(out)] == ["REJECTED"]
    _, out, _ = tunedrop(capsys, "jobs", "--state", "QUEUED", "--json")
    assert {d["job_id"] for d in json.loads(out)} == queued
    _, out, _ = tunedrop(capsys, "jobs", "--state", "Queued", "--json", "--limit", "1")
    assert len(json.loads(out)) == 1 and json.loads(out)[0]["job_id"] in queued
    code, out, err = tunedrop(capsys, "jobs", "--state", "sleeping")
    assert (code, out) == (2, "") and "sleeping" in err


def test_jobs_table_has_a_header_and_a_row_per_job(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = harness.upload("a.jsonl")
    code, out, _ = tunedrop(capsys, "jobs")
    header, row = out.splitlines()
    assert code == 0
    assert header.split() == ["JOB", "ID", "STATE", "PRIORITY", "BASE", "MODEL", "CREATED", "DATASET"]
    assert row.startswith(f"{job_id}  QUEUED") and row.endswith(harness.job(job_id).dataset_uri)


def test_rich_reads_no_markup_or_emoji_codes_in_user_text(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = harness.upload(f"{harness.settings.incoming_prefix}{MARKUP}.jsonl")
    _, out, _ = tunedrop(capsys, "jobs")
    assert f"{MARKUP}.jsonl" in out
    _, out, _ = tunedrop(capsys, "job", job_id)
    assert f"{MARKUP}.jsonl" in out


def test_job_not_found_exits_one_naming_it_printably(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = tunedrop(capsys, "job", "nope\x1b[2J")
    assert (code, out) == (1, "")
    assert err == "tunedrop: no job nope\\x1b[2J\n"


# -- cancel, retry, retune ---------------------------------------------------------------------


def test_cancel_prints_the_outcome_or_the_job_document(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    queued = harness.upload("a.jsonl")
    code, out, err = tunedrop(capsys, "cancel", queued, "--reason", "wrong dataset")
    assert (code, out) == (0, f"{queued}: CANCELLED (it had not been submitted)\n")
    assert "(acting as alice@example.com, named by service account credentials)" in err
    other = harness.upload("b.jsonl")
    code, out, _ = tunedrop(capsys, "cancel", other, "--json", "--reason", "x")
    assert code == 0 and json.loads(out)["state"] == "CANCELLED" and json.loads(out)["job_id"] == other


def test_cancel_of_an_unknown_job_exits_one(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = tunedrop(capsys, "cancel", "nope", "--reason", "typo")
    assert (code, out) == (1, "")
    assert err.splitlines()[-1] == "tunedrop: no job nope"


def test_retry_requeues_a_failed_job(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = harness.upload("a.jsonl")
    harness.app.dispatcher.dispatch()
    harness.tuning.set_state(harness.job(job_id).vertex_job_name, "JOB_STATE_FAILED", error_code=13, error_message="x")
    harness.app.poller.poll()
    code, out, _ = tunedrop(capsys, "retry", job_id, "--json", "--reason", "Vertex AI had an outage")
    document = json.loads(out)
    assert code == 0 and (document["state"], document["attempt"]) == ("QUEUED", 2)
    assert document["history"][-1]["actor"] == "alice@example.com"
    assert document["history"][-1]["reason"] == "retried by an operator as attempt 2: Vertex AI had an outage"


def test_retry_text(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = harness.upload("a.jsonl")
    harness.app.dispatcher.dispatch()
    harness.tuning.set_state(harness.job(job_id).vertex_job_name, "JOB_STATE_FAILED", error_code=13, error_message="x")
    harness.app.poller.poll()
    assert tunedrop(capsys, "retry", job_id, "--reason", "again")[:2] == (0, f"{job_id}: QUEUED as attempt 2\n")


def test_retune_prints_the_new_job(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    rejected = harness.upload("old.jsonl", metadata={"base_model": "gemini-1.5-pro-002"})
    code, out, _ = tunedrop(capsys, "retune", rejected, "--reason", "1.5 retired")
    (line,) = out.splitlines()
    new_id = line.split(":", 1)[0]
    assert code == 0 and new_id != rejected
    assert line == f"{new_id}: QUEUED on gemini-3.5-flash-lite (retuned from {rejected})"
    code, out, _ = tunedrop(
        capsys, "retune", rejected, "--model", "gemini-3.1-flash-lite", "--json", "--reason", "cheaper"
    )
    document = json.loads(out)
    assert code == 0
    assert (document["retuned_from"], document["base_model"]) == (rejected, "gemini-3.1-flash-lite")
    assert (document["requested_by"], document["request_reason"]) == ("alice@example.com", "cheaper")
    first = document["history"][0]
    assert (first["to_state"], first["actor"]) == ("VALIDATING", "alice@example.com")
    assert first["reason"].endswith("asked by an operator: cheaper")


# -- operators are named, with their reason ----------------------------------------------------


def test_each_operator_action_shows_in_the_job_history_with_who_and_why(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    queued = harness.upload("a.jsonl")
    tunedrop(capsys, "cancel", queued, "--reason", "wrong dataset")
    code, out, _ = tunedrop(capsys, "job", queued)
    assert code == 0
    assert out.splitlines()[-1].endswith(
        "QUEUED -> CANCELLED   cancelled by an operator: wrong dataset  (by alice@example.com)"
    )
    assert "(by" not in out.splitlines()[-2]  # Tunedrop's own moves name nobody
    _, out, _ = tunedrop(capsys, "job", queued, "--json")
    last = json.loads(out)["history"][-1]
    assert (last["actor"], last["reason"]) == ("alice@example.com", "cancelled by an operator: wrong dataset")


def test_a_running_jobs_cancel_names_the_operator_when_vertex_ai_reports_it(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = harness.upload("a.jsonl")
    harness.app.dispatcher.dispatch()
    harness.tuning.set_state(harness.job(job_id).vertex_job_name, "JOB_STATE_RUNNING")
    harness.app.poller.poll()
    code, _, _ = tunedrop(capsys, "cancel", job_id, "--reason", "over budget")
    assert code == 0 and harness.job(job_id).state is JobState.RUNNING
    _, out, _ = tunedrop(capsys, "job", job_id)
    assert "  cancel asked alice@example.com: over budget" in out.splitlines()
    harness.tuning.set_state(harness.job(job_id).vertex_job_name, "JOB_STATE_CANCELLED")
    harness.app.poller.poll()
    last = harness.job(job_id).history[-1]
    assert (last.to_state, last.actor) == ("CANCELLED", "alice@example.com")
    assert last.reason == "Vertex AI reports JOB_STATE_CANCELLED; asked by an operator: over budget"


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (("--reason", ""), "say why"),
        (("--reason", "   "), "say why"),
        (("--reason", "x" * 301), "at most 300"),
        (("--reason", "two\nlines"), "one line"),
        ((), "--reason"),
    ],
)
def test_an_operator_action_without_a_reason_is_a_usage_error(
    harness: Harness, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], problem: str
) -> None:
    queued = harness.upload("a.jsonl")
    for command in ("cancel", "retry", "retune"):
        code, out, err = tunedrop(capsys, command, queued, *argv)
        assert (code, out) == (2, "") and problem in err
    assert harness.job(queued).state is JobState.QUEUED


def test_nobody_named_is_refused_saying_how_to_name_yourself(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    built = make_harness()  # no credentials and no TUNEDROP_OPERATOR: nobody
    bootstrap.set_app(built.app)
    try:
        queued = built.upload("a.jsonl")
        code, out, err = tunedrop(capsys, "cancel", queued, "--reason", "wrong dataset")
    finally:
        bootstrap.set_app(None)
    assert (code, out) == (2, "")
    assert "TUNEDROP_OPERATOR" in err and "gcloud auth application-default login" in err
    job = built.job(queued)
    assert job.state is JobState.QUEUED and all(not entry.actor for entry in job.history)


def test_a_declared_operator_is_recorded_as_declared(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    built = make_harness({"TUNEDROP_OPERATOR": "carol"})
    bootstrap.set_app(built.app)
    try:
        queued = built.upload("a.jsonl")
        code, _, _ = tunedrop(capsys, "cancel", queued, "--reason", "testing the local stack")
    finally:
        bootstrap.set_app(None)
    assert code == 0 and built.job(queued).history[-1].actor == "carol (TUNEDROP_OPERATOR)"


# -- policy history and show -------------------------------------------------------------------


def keep_policy(harness: Harness, digest: str, changed_by: str, reason: str, day: int) -> None:
    policies = json.dumps({"default": {"max_priority": day}, "teams": {}})
    seen_at = datetime(2026, 11, day, tzinfo=UTC)
    assert harness.store.record_policy(PolicyRecord(digest, policies, changed_by, reason, seen_at))


def test_policy_history_lists_each_version_newest_first(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    keep_policy(harness, "a" * 64, "alice@example.com", "search gets two slots", 1)
    keep_policy(harness, "b" * 64, "bob@example.com", "search gets two slots", 2)
    keep_policy(harness, "c" * 64, "", "", 3)
    code, out, _ = tunedrop(capsys, "policy", "history")
    header, newest, middle, oldest = out.splitlines()
    assert code == 0 and header.split() == ["SEEN", "DIGEST", "CHANGED", "BY", "REASON"]
    assert newest.split() == ["2026-11-03", "00:00:00", "c" * 12, "-", "-"]
    assert middle.endswith("bob@example.com    search gets two slots (same reason as the version before)")
    assert oldest.endswith("alice@example.com  search gets two slots")
    code, out, _ = tunedrop(capsys, "policy", "history", "--json", "--limit", "2")
    documents = json.loads(out)
    assert code == 0 and [d["digest"] for d in documents] == ["c" * 64, "b" * 64]
    assert documents[1] == {
        "digest": "b" * 64,
        "changed_by": "bob@example.com",
        "reason": "search gets two slots",
        "seen_at": "2026-11-02T00:00:00+00:00",
        "policies": {"default": {"max_priority": 2}, "teams": {}},
    }


def test_policy_show_prints_the_newest_version(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    assert tunedrop(capsys, "policy", "show", "--json")[:2] == (0, "null\n")
    code, out, _ = tunedrop(capsys, "policy", "show")
    assert code == 0 and "no version of the team policies is kept yet" in out
    keep_policy(harness, "a" * 64, "alice@example.com", "first", 1)
    keep_policy(harness, "b" * 64, "bob@example.com", "second", 2)
    code, out, _ = tunedrop(capsys, "policy", "show")
    assert code == 0
    assert out.splitlines()[:4] == [
        f"digest      {'b' * 64}",
        "changed by  bob@example.com",
        "reason      second",
        "first seen  2026-11-02 00:00:00",
    ]
    assert json.loads("\n".join(out.splitlines()[4:])) == {"default": {"max_priority": 2}, "teams": {}}
    code, out, _ = tunedrop(capsys, "policy", "show", "--json")
    assert code == 0 and json.loads(out)["changed_by"] == "bob@example.com"


# -- quota and models --------------------------------------------------------------------------


def test_quota_text_and_json(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = harness.upload("a.jsonl")
    harness.app.dispatcher.dispatch()
    code, out, _ = tunedrop(capsys, "quota", "--json")
    assert code == 0
    assert json.loads(out) == {
        "limit": 1,
        "in_use": 1,
        "held": [job_id],
        "foreign": [],
        "queued": 0,
        "paused_until": None,
    }
    _, out, _ = tunedrop(capsys, "quota")
    assert out.splitlines()[:3] == [
        "limit   1 concurrent tuning jobs (TUNEDROP_QUOTA)",
        "in use  1: 1 by Tunedrop, 0 by others",
        f"          tunedrop  {job_id}",
    ]


def test_models_json_table_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = tunedrop(capsys, "models", "--json", "--on", "2026-11-29")
    rows = json.loads(out)
    assert code == 0 and {row["id"] for row in rows} == set(registry().models)
    code, out, _ = tunedrop(capsys, "models", "--on", "2026-11-29")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:2] == ["MODEL", "STATUS"]
    assert [line.split()[0] for line in lines[1:-1]] == [row["id"] for row in rows]
    assert lines[-1] == f"(status as of 2026-11-29; registry checked {registry().checked})"
    assert tunedrop(capsys, "models", "--markdown")[:2] == (0, markdown_table(registry().models))


def test_a_bad_day_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = tunedrop(capsys, "models", "--on", "2026-13-01")
    assert (code, out) == (2, "")
    assert "is not a date like 2026-11-29" in err


# -- local stack -------------------------------------------------------------------------------


def test_local_status_of_a_stack_that_is_not_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tunedrop(capsys, "local", "status", "--state-dir", str(tmp_path))[:2] == (1, "not running\n")
    code, out, _ = tunedrop(capsys, "local", "status", "--state-dir", str(tmp_path), "--json")
    assert (code, json.loads(out)) == (1, {"running": False, "processes": {}})


# -- the command line itself -------------------------------------------------------------------


def test_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = tunedrop(capsys, "--help")
    assert code == 0
    for command in ("validate", "jobs", "job", "cancel", "retry", "retune", "quota", "models", "dlq", "local", "demo"):
        assert f" {command} " in out
    code, out, err = tunedrop(capsys)
    assert code == 2 and "Usage: tunedrop" in out + err
    code, out, err = tunedrop(capsys, "frobnicate")
    assert (code, out) == (2, "") and "frobnicate" in err


def test_a_configuration_error_exits_two(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    monkeypatch.setenv("TUNEDROP_REGION", "not a region")
    code, out, err = tunedrop(capsys, "validate", "whatever.jsonl")
    assert (code, out) == (2, "")
    assert err.startswith("tunedrop: Tunedrop configuration is invalid") and "TUNEDROP_REGION" in err


def test_logs_go_to_stderr_while_a_command_runs_and_logging_is_handed_back(
    harness: Harness, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)

    def quota_logging() -> Any:
        logs.warning("reading the quota", job_id="j1")
        return original()

    original = harness.app.operations.quota
    monkeypatch.setattr(harness.app.operations, "quota", quota_logging)
    code, out, err = tunedrop(capsys, "quota", "--json")
    assert code == 0 and json.loads(out)["limit"] == 1
    (entry,) = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert (entry["severity"], entry["message"], entry["job_id"]) == ("WARNING", "reading the quota", "j1")
    assert (list(root.handlers), root.level) == before


def test_an_interrupted_command_exits_130(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted() -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.app.operations, "quota", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["quota"])
    assert exit_info.value.code == 130


def test_on_is_parsed_as_a_day() -> None:
    assert parse_day("2026-11-29") == date(2026, 11, 29)


# -- convert -----------------------------------------------------------------------------------

FOREIGN = Path(__file__).resolve().parents[1] / "fixtures" / "datasets" / "foreign"


def test_an_openai_chat_file_is_diagnosed_once_and_validates_clean_after_convert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUNEDROP_BASE_MODEL", raising=False)  # the default model
    source = tmp_path / "chat.jsonl"
    source.write_bytes((FOREIGN / "openai_chat.jsonl").read_bytes())
    code, out, _ = tunedrop(capsys, "validate", str(source), "--json")
    report = json.loads(out)
    assert code == 1 and report["error_counts"] == {"openai_chat_format": 1}
    (diagnosis,) = report["errors"]
    assert diagnosis["line"] == 0 and diagnosis["lines_affected"] == 5
    assert diagnosis["command"] == f"tunedrop convert {source} {tmp_path / 'chat.gemini.jsonl'} --from openai"

    code, out, err = tunedrop(capsys, *diagnosis["command"].split()[1:])  # the command the report gives
    assert code == 0 and err == ""
    assert "5 of 5 examples written" in out and "0 lines not converted" in out
    code, out, _ = tunedrop(capsys, "validate", str(tmp_path / "chat.gemini.jsonl"), "--json")
    report = json.loads(out)
    assert code == 0 and report["valid"] and report["errors"] == [] and report["warnings"] == []
    assert report["model"] == DEFAULT_MODEL


def test_convert_reports_each_line_it_could_not_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "mixed.jsonl"
    source.write_text(
        '{"prompt": "a", "completion": "b"}\n{"messages": [{"role": "\\u001b[31mrobot", "content": "x"}]}\n{oops\n'
    )
    code, out, err = tunedrop(capsys, "convert", str(source), str(tmp_path / "out.jsonl"), "--json")
    summary = json.loads(out)
    assert code == 1
    assert (summary["examples"], summary["converted"], summary["not_converted"]) == (3, 1, 2)
    assert [f["line"] for f in summary["failures"]] == [2, 3]
    assert summary["from"] == "auto" and summary["output"] == str(tmp_path / "out.jsonl")
    lines = err.splitlines()
    assert lines[0].startswith(f"{source}:2: not converted: message 1 has role ") and "\x1b" not in err
    assert lines[1] == f"{source}:3: not converted: not valid JSON"
    assert (tmp_path / "out.jsonl").read_text().count("\n") == 1


def test_convert_usage_errors_exit_2_and_never_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a", "completion": "b"}\n')
    target = tmp_path / "out.jsonl"
    target.write_text("keep me")
    code, out, err = tunedrop(capsys, "convert", str(source), str(target))
    assert code == 2 and out == "" and "exists" in err and target.read_text() == "keep me"
    code, _, err = tunedrop(capsys, "convert", str(tmp_path / "nope.jsonl"), str(tmp_path / "new.jsonl"))
    assert code == 2 and "cannot read" in err
    code, _, _ = tunedrop(capsys, "convert", str(source), str(tmp_path / "new.jsonl"), "--from", "csv")
    assert code == 2 and not (tmp_path / "new.jsonl").exists()


def test_convert_reads_and_writes_cloud_storage_without_overwriting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes import InMemoryBlobStore

    store = InMemoryBlobStore()
    monkeypatch.setattr("shared.validation.convert._blob_store", lambda: store)
    store.put("bucket", "in.jsonl", (FOREIGN / "prompt_completion.jsonl").read_bytes())
    code, _, _ = tunedrop(
        capsys, "convert", "gs://bucket/in.jsonl", "gs://bucket/out.jsonl", "--from", "prompt-completion"
    )
    assert code == 0
    written = [json.loads(line) for line in store.read("bucket", "out.jsonl").splitlines()]
    assert len(written) == 3 and written[0]["contents"][0]["role"] == "user"
    assert store.get("bucket", "out.jsonl").content_type == "application/jsonl"
    generation = store.get("bucket", "out.jsonl").generation
    code, _, err = tunedrop(capsys, "convert", "gs://bucket/in.jsonl", "gs://bucket/out.jsonl")
    assert code == 2 and "exists" in err and store.get("bucket", "out.jsonl").generation == generation
    code, _, err = tunedrop(capsys, "convert", "gs://bucket/missing.jsonl", "gs://bucket/new.jsonl")
    assert code == 2 and "does not exist" in err
    code, _, err = tunedrop(capsys, "convert", "gs://", "out.jsonl")
    assert code == 2 and "gs://bucket/object" in err


def test_convert_never_overwrites_an_object_created_while_it_converts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.validation import convert
    from tests.fakes import InMemoryBlobStore

    store = InMemoryBlobStore()
    monkeypatch.setattr("shared.validation.convert._blob_store", lambda: store)
    store.put("bucket", "in.jsonl", (FOREIGN / "prompt_completion.jsonl").read_bytes())
    converting = convert.convert_stream

    def racing(*args: Any) -> Any:  # someone writes the output after the check, before the upload
        store.put("bucket", "out.jsonl", b"someone else's")
        return converting(*args)

    monkeypatch.setattr("shared.validation.convert.convert_stream", racing)
    code, out, err = tunedrop(capsys, "convert", "gs://bucket/in.jsonl", "gs://bucket/out.jsonl")
    assert code == 2 and out == ""
    assert err == (
        "tunedrop convert: gs://bucket/out.jsonl was created while converting: tunedrop convert never overwrites "
        "an object (nothing was written; convert again to another name)\n"
    )
    assert store.read("bucket", "out.jsonl") == b"someone else's"


def test_convert_reports_lines_it_cannot_map_instead_of_crashing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "$schema": "x"}}}]
    rows = [
        {"prompt": "p", "input": "a", "output": "b"},  # input/output, as the diagnosis says: converted
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 0}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": tools},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code, out, err = tunedrop(capsys, "convert", str(source), str(tmp_path / "out.jsonl"), "--json")
    summary = json.loads(out)
    assert code == 1 and "Traceback" not in err
    assert (summary["examples"], summary["converted"], summary["not_converted"]) == (3, 2, 1)
    assert err.startswith(f"{source}:2: not converted: message 2 has weight 0 (not trained on)")
    assert summary["warnings"] == [
        {"line": 1, "lines": 1, "message": "prompt left out: the example is read as input/output, which it also has"},
        {
            "line": 3,
            "lines": 1,
            "message": 'tool "f": left out what Gemini\'s Schema does not have: parameters.$schema',
        },
    ]
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert written[1]["tools"] == [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT"}}]}]


def test_convert_says_each_warning_once_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "$schema": "x", "properties": {}}},
    }
    turns = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    source = tmp_path / "tools.jsonl"
    source.write_text("".join(json.dumps({"messages": turns, "tools": [tool]}) + "\n" for _ in range(3)))
    code, _, err = tunedrop(capsys, "convert", str(source), str(tmp_path / "out.jsonl"))
    assert code == 0
    (warning,) = [line for line in err.splitlines() if ": warning: " in line]
    assert warning.startswith(f"{source}:1: warning: ") and "$schema" in warning and "2 more lines" in warning
