"""`tunedrop`: the operators' command line.

Against a real project it reads the usual settings from the environment; against the local
stack it reads `.tunedrop/local.env` when GOOGLE_CLOUD_PROJECT is not set.

Every command that prints data takes `--json` and then prints only JSON on stdout; notes,
warnings, progress bars and logs go to stderr.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared import dlq
from shared.aliases import Alias, Champion, alias_document
from shared.config import CommonSettings
from shared.errors import ConfigError, TunedropError
from shared.evaluation import named_results
from shared.jobs import Job, JobState
from shared.logs import configure_logging
from shared.text import printable
from shared.validation import cli as validate_cli
from shared.validation.cli import parse_day
from shared.validation.convert import Conversion
from shared.validation.convert import Source as ConvertSource
from shared.validation.report import plural

if TYPE_CHECKING:
    from shared.bootstrap import App
    from shared.policy import Policies
    from shared.ports import PolicyRecord
    from shared.services.fairness import TeamShare
    from shared.services.operations import OperatorRequest

app = typer.Typer(
    name="tunedrop",
    help=__doc__,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are the docstrings: Markdown reflows their paragraphs to the terminal's width.
    rich_markup_mode="markdown",
)
dlq_app = typer.Typer(help="dead-lettered messages", no_args_is_help=True, rich_markup_mode="markdown")
app.add_typer(dlq_app, name="dlq")
policy_app = typer.Typer(
    help="the team policies the functions run with, and their history",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(policy_app, name="policy")

P = ParamSpec("P")
JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON on stdout instead of text")]
# Wide enough for the usual gs:// URI; one very long name must not push every other column away.
_TABLE_CELL_LIMIT = 100
# Tables written to a pipe or a file are never wrapped or cut to a terminal's width.
_UNWRAPPED_WIDTH = 100_000


def _command(
    name: str, short_help: str, *, help: str | None = None, group: typer.Typer = app
) -> Callable[[Callable[P, int]], Callable[P, int]]:
    """Register a function returning the exit status as a command of `group` (typer's commands exit 0)."""

    def register(function: Callable[P, int]) -> Callable[P, int]:
        @functools.wraps(function)
        def command(*args: P.args, **kwargs: P.kwargs) -> None:
            raise typer.Exit(function(*args, **kwargs))

        group.command(name, help=help, short_help=short_help)(command)
        return function

    return register


_command(
    "validate", "check a JSONL tuning dataset (local file or gs:// URI) before uploading it", help=validate_cli.__doc__
)(validate_cli.validate_command)


@_command("convert", "rewrite an OpenAI chat, messages or prompt/completion dataset in Gemini's format")
def convert_command(
    source_location: Annotated[
        str, typer.Argument(metavar="IN", help="dataset to convert: a local path or gs://bucket/object")
    ],
    target_location: Annotated[
        str, typer.Argument(metavar="OUT", help="where to write the Gemini dataset (must not exist yet)")
    ],
    source: Annotated[
        ConvertSource,
        typer.Option("--from", case_sensitive=False, help="format of IN (auto: each example's own)"),
    ] = ConvertSource.AUTO,
    json_output: Annotated[
        bool, typer.Option("--json", help="print what was converted, and each line that was not, as JSON")
    ] = False,
) -> int:
    """Rewrite a dataset from OpenAI's chat format (tool calls included), the legacy gemini-1.0-pro-002
    `messages` format, or `prompt`/`completion` and `input`/`output` pairs into Gemini's `contents`
    format, one example per line (a pretty-printed JSON file is read too). Lines already in Gemini's format
    are copied. Each line that cannot be converted is left out and reported with its number on stderr.

    Exit status: 0 every example converted, 1 some were not, 2 usage error (an unreadable IN, an OUT that
    exists: nothing is ever overwritten)."""
    from shared.validation.convert import ConvertUsageError, convert_file

    try:
        result = convert_file(source_location, target_location, source)
    except ConvertUsageError as exc:
        print(f"tunedrop convert: {printable(str(exc))}", file=sys.stderr)
        return 2
    for failure in result.failures:
        print(
            f"{printable(source_location)}:{failure.line}: not converted: {printable(failure.reason)}", file=sys.stderr
        )
    if result.failure_count > len(result.failures):
        print(
            f"... and {plural(result.failure_count - len(result.failures), 'more line')} not converted", file=sys.stderr
        )
    for warning in result.warnings.values():
        more = f" (and {plural(warning.lines - 1, 'more line')})" if warning.lines > 1 else ""
        print(
            f"{printable(source_location)}:{warning.line}: warning: {printable(warning.message)}{more}", file=sys.stderr
        )
    if json_output:
        _print_json({"input": source_location, "output": target_location, "from": source.value, **result.to_dict()})
    else:
        print(_conversion_summary(result, target_location))
    return 0 if result.complete else 1


def _conversion_summary(result: Conversion, target_location: str) -> str:
    formats = ", ".join(f"{count:,} {kind}" for kind, count in sorted(result.formats.items())) or "none"
    written = result.converted + result.copied
    return (
        f"{written:,} of {plural(result.examples, 'example')} written to {printable(target_location)} "
        f"({result.converted:,} converted, {result.copied:,} already in Gemini's format; formats read: {formats}); "
        f"{plural(result.failure_count, 'line')} not converted."
    )


# ------------------------------------------------------------------------------------ output


def _print_json(value: Any, indent: int | None = 2) -> None:
    # ASCII only (json.dumps' default): user text in a document cannot carry a raw control to the terminal.
    print(json.dumps(value, default=str, indent=indent))


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    """Aligned columns, no borders; cells are Text, so rich reads no markup in user text."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for title in header:
        table.add_column(title)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def table_lines(table: Table) -> list[str]:
    """The table as plain lines, never wrapped, without trailing blanks."""
    console = Console(file=io.StringIO(), width=_UNWRAPPED_WIDTH, color_system=None, highlight=False)
    with console.capture() as captured:
        console.print(table)
    return [line.rstrip() for line in captured.get().splitlines()]


def _show_table(table: Table) -> None:
    """On a terminal, rich's table (bold header, fitted to the width); elsewhere, plain aligned lines."""
    if sys.stdout.isatty():
        Console(highlight=False).print(table)
    else:
        print("\n".join(table_lines(table)))


def jobs_table(jobs: Sequence[Job]) -> list[str]:
    """`tunedrop jobs` as lines: a header and one row per job, with user text made printable."""
    return table_lines(_jobs_table(jobs))


def _jobs_table(jobs: Sequence[Job]) -> Table:
    header = ("JOB ID", "STATE", "PRIORITY", "BASE MODEL", "CREATED", "DATASET")
    rows = (
        tuple(
            printable(str(value), _TABLE_CELL_LIMIT)
            for value in (
                j.job_id,
                j.state.value,
                j.priority,
                j.base_model,
                j.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                j.dataset_uri,
            )
        )
        for j in jobs
    )
    return _table(header, rows)


def job_details(job: Job) -> list[str]:
    """`tunedrop job JOB_ID` as lines: the job's fields and its history (with the operator of each operator
    action), with user text made printable."""
    lines = [f"{printable(job.job_id)}  {job.state.value}  (attempt {job.attempt})"]
    for label, value in (
        ("dataset", job.dataset_uri),
        ("base model", job.base_model),
        ("report", job.report_uri),
        ("vertex job", job.vertex_job_name),
        ("vertex detail", vertex_detail(job)),
        ("console", console_url(job.vertex_job_name)),
        ("tuned model", job.tuned_model),
        ("endpoint", job.endpoint),
        ("error", json.dumps(job.error) if job.error else ""),
        ("waiting", _waiting(job)),
        ("asked by", _asked(job.requested_by, job.request_reason)),
        ("cancel asked", _asked(job.cancel_requested_by, job.cancel_reason) if job.cancel_requested else ""),
        ("gate", _gate_line(job)),
    ):
        if value:
            lines.append(f"  {label:<12} {printable(value)}")
    lines += _checkpoint_lines(job)
    lines.append("  history:")
    for entry in job.history:
        moved_from = printable(entry.from_state or "-")
        by = f"  (by {printable(entry.actor)})" if entry.actor else ""
        lines.append(
            f"    {entry.at:%Y-%m-%d %H:%M:%S}  {moved_from:>10} -> {printable(entry.to_state):<10}  "
            f"{printable(entry.reason)}{by}"
        )
    return lines


# The Cloud console's page of a tuning job, as the Vertex AI SDK builds it (vertexai tuning module's dashboard
# URL: .../vertex-ai/generative/language/locations/{location}/tuning/tuningJob/{id}?project={project}).
_TUNING_JOB_NAME = re.compile(r"\Aprojects/([^/]+)/locations/([^/]+)/tuningJobs/([^/]+)\Z")


def console_url(vertex_job_name: str) -> str:
    """The console page of a tuning job ("" for no or another kind of name)."""
    match = _TUNING_JOB_NAME.match(vertex_job_name)
    if match is None:
        return ""
    project, location, job = match.groups()
    return (
        f"https://console.cloud.google.com/vertex-ai/generative/language/locations/{location}/tuning/tuningJob/"
        f"{job}?project={project}"
    )


def _checkpoint_lines(job: Job) -> list[str]:
    """Each checkpoint (epoch, step) with the metrics Vertex AI's evaluation during tuning gave it."""
    if not job.checkpoints and not job.evaluations:
        return []
    # Named after the manifest's metrics, as in the completion event: two of one kind would otherwise read alike.
    runs = {str(run.get("checkpoint_id")): run for run in named_results(job.evaluations, job.evaluation)}
    lines = ["  checkpoints:"]
    for checkpoint in job.checkpoints or [{"checkpoint_id": key} for key in runs]:
        key = str(checkpoint.get("checkpoint_id", ""))
        where = f"epoch {checkpoint['epoch']}, step {checkpoint['step']}" if "epoch" in checkpoint else ""
        run = runs.get(key, {})
        metrics = ", ".join(
            f"{_metric_label(m)} {str(m.get('aggregation', '')).lower()} {m.get('value')}"
            for m in run.get("metrics", [])
        )
        failed = f"evaluation failed: {run['error'].get('message', '')}" if run.get("error") else ""
        detail = "; ".join(part for part in (where, metrics, failed) if part)
        lines.append(f"    {printable(key):>4}  {printable(detail)}")
    return lines


def _metric_label(result: Mapping[str, Any]) -> str:
    """A metric result as `tunedrop job` shows it: the manifest's name and the kind, or the kind alone."""
    return f"{result['name']} ({result.get('metric')})" if result.get("name") else str(result.get("metric"))


def vertex_detail(job: Job) -> str:
    """Vertex AI's detail state of the job and since when, saying when Tunedrop inferred it ("" when unknown)."""
    if not job.detail_state:
        return ""
    from shared.services.poll import inferred_wait

    since = f" since {job.detail_since.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if job.detail_since else ""
    inferred = ""
    if inferred_wait(job):
        held = job.vertex_state.removeprefix("JOB_STATE_")
        inferred = (
            f" (inferred: Vertex AI holds it {held}, not started, while another job of the project runs; "
            "the client library cannot read the service's own detail state)"
        )
    return f"{job.detail_state}{since}{inferred}"


def _gate_line(job: Job) -> str:
    """The evaluation gate's state for the job: pending, or its verdict and why."""
    if not job.promote_as:
        return ""
    verdict = job.verdict
    if verdict is None:
        pending = "pending" if job.state is JobState.SUCCEEDED else "not evaluated"
        return f"promote as {job.promote_as}: {pending}"
    report = f" (report {verdict['report_uri']})" if verdict.get("report_uri") else ""
    return f"promote as {job.promote_as}: {verdict.get('verdict')}: {verdict.get('reason', '')}{report}"


def _waiting(job: Job) -> str:
    """Why a QUEUED job is held back although slots may be free."""
    if job.state is not JobState.QUEUED or not job.waiting_reason:
        return ""
    if job.waiting_reason == "over_budget":
        return "over_budget: its team's monthly budget holds it back (`tunedrop quota` shows the spend)"
    return job.waiting_reason


def _asked(actor: str, reason: str) -> str:
    return f"{actor}: {reason}" if actor else ""


# ------------------------------------------------------------------------------------ the services


def _load_local_env() -> None:
    """Point the CLI at the local stack when no project is configured."""
    if CommonSettings.from_env().project:
        return
    from tunedrop_local.stack import default_state_dir, read_env_file

    env_file = default_state_dir() / "local.env"
    if env_file.exists():
        # Into the environment, where the services' settings (and the client libraries) read them.
        for key, value in read_env_file(env_file).items():
            os.environ.setdefault(key, value)
        print(f"(using the local stack: {env_file})", file=sys.stderr)


def _services() -> App:
    """The services, on the local stack when no project is configured."""
    from shared.bootstrap import get_app

    _load_local_env()
    return get_app()


# ------------------------------------------------------------------------------------ local stack and demo


class LocalAction(StrEnum):
    UP = "up"
    DOWN = "down"
    STATUS = "status"


@_command("local", "start, stop or inspect the local stack of emulators")
def local_command(
    action: Annotated[LocalAction, typer.Argument(help="up, down or status")],
    state_dir: Annotated[
        Path | None, typer.Option(help="where pids, logs and local.env live (default: .tunedrop/)")
    ] = None,
    json_output: JsonFlag = False,
) -> int:
    """Start, stop or inspect the local stack of emulators (status exits 1 when it is not running)."""
    from tunedrop_local import stack

    if action is LocalAction.UP:
        stack.up(state_dir)
        return 0
    if action is LocalAction.DOWN:
        stack.down(state_dir)
        return 0
    current = stack.Stack(state_dir or stack.default_state_dir())
    running = stack.is_running(current)
    pids = stack.running_pids(current)
    if json_output:
        _print_json({"running": running, "processes": pids})
    else:
        print("running" if running else "not running")
        for name, pid in pids.items():
            print(f"  {name:<10} pid {pid}")
    return 0 if running else 1


@_command("demo", "run the whole pipeline locally on sample datasets")
def demo_command(
    timeout: Annotated[float, typer.Option(help="give up after this many seconds")] = 110.0,
) -> int:
    """Run the whole pipeline locally on sample datasets."""
    from tunedrop_local.demo import run_demo

    return int(run_demo(timeout=timeout))


# ------------------------------------------------------------------------------------ jobs


@_command("jobs", "list jobs")
def jobs_command(
    state: Annotated[
        JobState | None, typer.Option(case_sensitive=False, help="only jobs in this state, e.g. QUEUED")
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many jobs")] = 500,
    json_output: Annotated[bool, typer.Option("--json", help="a JSON list of the job documents")] = False,
) -> int:
    """List jobs, oldest first."""
    jobs = sorted(_services().store.list_jobs(state, limit), key=lambda j: j.created_at)
    if json_output:
        _print_json([j.to_document() for j in jobs])
    else:
        _show_table(_jobs_table(jobs))
    return 0


@_command("job", "one job's details and history")
def job_command(job_id: str, json_output: JsonFlag = False) -> int:
    """One job's details and its history of state changes."""
    found = _services().store.get(job_id)
    if found is None:
        print(f"tunedrop: no job {printable(job_id)}", file=sys.stderr)
        return 1
    job = found.value
    if json_output:
        _print_json(job.to_document())
    else:
        print("\n".join(job_details(job)))
    return 0


def _checked_reason(reason: str) -> str:
    from shared.services.operations import reason_problem

    problem = reason_problem(reason)
    if problem:
        raise typer.BadParameter(problem)
    return reason.strip()


ReasonOption = Annotated[
    str,
    typer.Option(
        "--reason",
        metavar="TEXT",
        callback=_checked_reason,
        show_default=False,
        help="why (required: recorded on the job's history with who you are; one line, at most 300 characters)",
    ),
]


def _operator_request(app: App, reason: str) -> OperatorRequest:
    """Who runs the command (refused with how to name yourself when nobody can be named) and why."""
    from shared.services.operations import OperatorRequest

    operator = app.operator_identity.current()
    print(f"(acting as {printable(operator.actor)}, named by {operator.source})", file=sys.stderr)
    return OperatorRequest(operator.actor, reason)


@_command("cancel", "cancel a job: dequeue it, or cancel its Vertex AI job")
def cancel_command(job_id: str, reason: ReasonOption, json_output: JsonFlag = False) -> int:
    """Cancel a job: a queued one is dequeued and reported CANCELLED, a running one cancelled on Vertex AI. The job's
    history records who you are and your reason."""
    app = _services()
    job = app.operations.cancel(job_id, _operator_request(app, reason))
    if json_output:
        _print_json(job.to_document())
    elif job.state.terminal:
        print(f"{printable(job.job_id)}: {job.state.value} (it had not been submitted)")
    else:
        job_name = printable(job.job_id)
        print(f"{job_name}: cancel requested on Vertex AI; `tunedrop job {job_name}` shows when it ends")
    return 0


@_command("retry", "re-queue a FAILED job as a new attempt")
def retry_command(job_id: str, reason: ReasonOption, json_output: JsonFlag = False) -> int:
    """Re-queue a FAILED job as a new attempt. The job's history records who you are and your reason."""
    app = _services()
    job = app.operations.retry(job_id, _operator_request(app, reason))
    if json_output:
        _print_json(job.to_document())
    else:
        print(f"{printable(job.job_id)}: QUEUED as attempt {job.attempt}")
    return 0


@_command("retune", "tune a finished job's datasets again on another base model")
def retune_command(
    job_id: str,
    reason: ReasonOption,
    model: Annotated[
        str | None, typer.Option(help="base model to tune on (default: the replacement of the job's model)")
    ] = None,
    json_output: JsonFlag = False,
) -> int:
    """A new job from a finished job's datasets and settings, on another base model; exit 1 if it is rejected. The
    new job records who you are and your reason."""
    app = _services()
    job = app.uploads.retune(job_id, model, _operator_request(app, reason))
    if json_output:
        _print_json(job.to_document())
    else:
        print(
            f"{printable(job.job_id)}: {job.state.value} on {printable(job.base_model)} "
            f"(retuned from {printable(job.retuned_from)})"
        )
        if job.error:
            print(f"  {printable(str(job.error.get('message', '')))}")
    return 0 if job.state is not JobState.REJECTED else 1


def _alias_document(alias: Alias) -> dict[str, Any]:
    """The alias as --json prints it: the record, with the champion's job id at the top for scripts."""
    document = alias_document(alias)
    document["champion_job_id"] = alias.champion.job_id if alias.champion else None
    return document


def _champion_cells(champion: Champion | None) -> list[str]:
    if champion is None:
        return ["(none)", "", "", ""]
    by = champion.actor or "the evaluation gate"
    return [champion.job_id, champion.endpoint, f"{champion.promoted_at:%Y-%m-%d %H:%M} UTC", by]


@_command("aliases", "the aliases and their champions")
def aliases_command(json_output: JsonFlag = False) -> int:
    """Every alias, its team and its champion (the tuned model the team's applications use)."""
    aliases = _services().store.list_aliases(1000)
    if json_output:
        _print_json([_alias_document(alias) for alias in aliases])
        return 0
    rows = [[alias.name, alias.team, *_champion_cells(alias.champion)] for alias in aliases]
    _show_table(_table(["ALIAS", "TEAM", "CHAMPION JOB", "ENDPOINT", "SINCE", "BY"], rows))
    return 0


@_command("alias", "one alias: its champion and history")
def alias_command(name: str, json_output: JsonFlag = False) -> int:
    """One alias: the champion and every earlier one, newest first (`--json`: the record, with champion_job_id)."""
    found = _services().store.read_alias(name)
    if found is None:
        print(f"tunedrop: no alias {printable(name)}", file=sys.stderr)
        return 1
    alias = found.value
    if json_output:
        _print_json(_alias_document(alias))
        return 0
    print(f"alias  {printable(alias.name)} (team {printable(alias.team)})")
    earlier = [(champion, "earlier") for champion in reversed(alias.history)]
    everyone = [(alias.champion, "champion")] if alias.champion else []
    rows = [[role, *_champion_cells(champion), champion.reason] for champion, role in [*everyone, *earlier]]
    _show_table(_table(["", "JOB", "ENDPOINT", "SINCE", "BY", "WHY"], rows))
    return 0


@_command("promote", "make a job's tuned model an alias's champion")
def promote_command(name: str, job_id: str, reason: ReasonOption, json_output: JsonFlag = False) -> int:
    """Make a SUCCEEDED job's tuned model the alias's champion, whatever the gate said; recorded on the alias with
    who you are and your reason, and announced (tunedrop.model.v1.promoted)."""
    app = _services()
    alias = app.aliases.promote(name, job_id, _operator_request(app, reason))
    if json_output:
        _print_json(_alias_document(alias))
        return 0
    champion = alias.champion.job_id if alias.champion else "(none)"
    print(f"{printable(name)}: champion is job {printable(champion)}")
    if champion != job_id:
        print(
            "  an earlier move of this alias had not been announced: it is now; run the command again", file=sys.stderr
        )
    return 0


@_command("rollback", "put an alias back on its previous champion")
def rollback_command(name: str, reason: ReasonOption, json_output: JsonFlag = False) -> int:
    """Put the alias back on the champion before the current one; recorded and announced like a promotion."""
    app = _services()
    alias = app.aliases.rollback(name, _operator_request(app, reason))
    if json_output:
        _print_json(_alias_document(alias))
    else:
        champion = alias.champion.job_id if alias.champion else "(none)"
        print(f"{printable(name)}: champion is job {printable(champion)} again")
    return 0


@_command("quota", "the concurrent tuning-job quota: limit, in use, queued")
def quota_command(json_output: JsonFlag = False) -> int:
    """The concurrent tuning-job quota: the limit, the slots in use (Tunedrop's and others'), the queue, and per
    team its running and queued jobs and its fair share."""
    from shared.services.budgets import BudgetBook
    from shared.services.fairness import FairShareBook, team_shares

    app = _services()
    status = app.operations.quota()
    policies = _deployed_policies(app)
    book = FairShareBook(app.store, policies, app.clock)
    spent = BudgetBook(app.store, policies, app.clock, app.settings.tuning_prices).spent
    teams = team_shares(book, app.ledger.holders(), max(0, status.limit - len(status.foreign)), spent)
    alone = {"", app.settings.default_team}
    if not policies.teams and all(row.team in alone for row in teams):
        teams = []  # the default team alone shares nothing: the output stays as before teams existed
    if json_output:
        paused_until = status.paused_until.isoformat() if status.paused_until else None
        document: dict[str, Any] = {
            "limit": status.limit,
            "in_use": status.in_use,
            "held": status.held,
            "foreign": status.foreign,
            "queued": status.queued,
            "paused_until": paused_until,
        }
        if teams:
            document["teams"] = _team_shares_json(teams)
        _print_json(document, indent=None)
        return 0
    print(f"limit   {status.limit} concurrent tuning jobs (TUNEDROP_QUOTA)")
    print(f"in use  {status.in_use}: {len(status.held)} by Tunedrop, {len(status.foreign)} by others")
    for name in status.held:
        print(f"          tunedrop  {printable(name)}")
    for name in status.foreign:
        print(f"          other     {printable(name)}")
    print(f"queued  {status.queued}")
    if status.paused_until:
        print(f"paused  until {status.paused_until:%H:%M:%S} after Vertex AI answered RESOURCE_EXHAUSTED")
    _print_team_shares(teams)
    return 0


def _deployed_policies(app: App) -> Policies:
    """The policies the functions run with (the newest kept record), not the caller's shell's; those only when
    none is kept yet."""
    from shared.policy import Policies

    current = app.policy_history.current()
    return app.policies if current is None else Policies.from_json(current.policies)


def _team_shares_json(teams: Sequence[TeamShare]) -> list[dict[str, Any]]:
    """The per-team rows of `quota --json`: spend_usd is this month's (UTC), budget_usd the policy's (None: none)."""
    return [
        {
            "team": row.team,
            "weight": row.weight,
            "max_slots": row.max_slots,
            "running": row.running,
            "queued": row.queued,
            "share": round(row.share, 3),
            "spend_usd": round(row.spend_usd, 2),
            "budget_usd": row.budget_usd,
        }
        for row in teams
    ]


def _print_team_shares(teams: Sequence[TeamShare]) -> None:
    """The per-team rows."""
    if not teams:
        return
    print("teams   (share: slots the team's weight entitles it to among the teams with work; spend: this month, UTC)")
    print(
        f"          {'team':<20} {'weight':>6} {'cap':>4} {'running':>7} {'queued':>6} {'share':>6}  spend this month"
    )
    for row in teams:
        name = printable(row.team) or "(default)"
        cap = "-" if row.max_slots is None else str(row.max_slots)
        budget = "" if row.budget_usd is None else f" of ${row.budget_usd:,.2f}"
        print(
            f"          {name:<20} {row.weight:>6} {cap:>4} {row.running:>7} {row.queued:>6} {row.share:>6.2f}  "
            f"${row.spend_usd:,.2f}{budget}"
        )


# ------------------------------------------------------------------------------------ team policies


def _policy_json(record: PolicyRecord) -> dict[str, Any]:
    return {
        "digest": record.digest,
        "changed_by": record.changed_by,
        "reason": record.reason,
        "seen_at": record.seen_at.isoformat(),
        "policies": json.loads(record.policies),
    }


@_command("history", "each deployment of the team policies: who applied it, why, when", group=policy_app)
def policy_history_command(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many versions")] = 50,
    json_output: Annotated[bool, typer.Option("--json", help="a JSON list of the versions, newest first")] = False,
) -> int:
    """Each version of the team policies the functions have run with, newest first: who changed it and why (as
    Terraform recorded them), when the functions first saw it, and its digest (sha256 of its canonical JSON)."""
    records = _services().policy_history.history(limit)
    if json_output:
        _print_json([_policy_json(record) for record in records])
        return 0
    if not records:
        print("no version of the team policies is kept yet (none configured, or no dispatch pass since)")
        return 0
    _show_table(_policy_history_table(records))
    return 0


def _policy_history_table(records: Sequence[PolicyRecord]) -> Table:
    """One row per version; a reason repeating the one before it is flagged (an apply that kept an old reason)."""
    rows = []
    for index, record in enumerate(records):
        older = records[index + 1] if index + 1 < len(records) else None
        repeated = older is not None and bool(record.reason) and record.reason == older.reason
        reason = (record.reason or "-") + (" (same reason as the version before)" if repeated else "")
        seen = record.seen_at.strftime("%Y-%m-%d %H:%M:%S")
        cells = (seen, record.digest[:12], record.changed_by or "-", reason)
        rows.append(tuple(printable(cell, _TABLE_CELL_LIMIT) for cell in cells))
    return _table(("SEEN", "DIGEST", "CHANGED BY", "REASON"), rows)


@_command("show", "the team policies the functions run with", group=policy_app)
def policy_show_command(
    json_output: Annotated[bool, typer.Option("--json", help="the version as JSON (null when none is kept)")] = False,
) -> int:
    """The newest version of the team policies the functions have run with: who changed it, why, when they first saw
    it, and every team's policy with each field spelled out."""
    record = _services().policy_history.current()
    if json_output:
        _print_json(_policy_json(record) if record else None)
        return 0
    if record is None:
        print("no version of the team policies is kept yet: every team gets Tunedrop's built-in limits")
        return 0
    print(f"digest      {record.digest}")
    print(f"changed by  {printable(record.changed_by) or '-'}")
    print(f"reason      {printable(record.reason) or '-'}")
    print(f"first seen  {record.seen_at:%Y-%m-%d %H:%M:%S}")
    _print_json(json.loads(record.policies))
    return 0


# ------------------------------------------------------------------------------------ models


class ModelsAction(StrEnum):
    CHECK = "check"


@_command("models", "the base models Tunedrop can tune, with their lifecycle and limits")
def models_command(
    action: Annotated[
        ModelsAction | None, typer.Argument(help="check: compare the registry with Google's pages")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="a JSON list of objects, one per model")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="the README's model table")] = False,
    on: Annotated[
        date | None,
        typer.Option(parser=parse_day, metavar="YYYY-MM-DD", help="status as of this day (default: today, UTC)"),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            metavar="URL-or-FILE",
            help="with check: a page to read (repeatable; default: Google's supervised-tuning, tuning reference "
            "and model-versions pages as .md.txt)",
        ),
    ] = None,
) -> int:
    """The base models Tunedrop can tune, with their lifecycle and limits; `models check` compares the
    registry with Google's pages (exit 1 on a difference, 2 when a page cannot be read)."""
    from shared.validation.registry import markdown_table, registry

    if action is ModelsAction.CHECK:
        from shared.validation.docs_check import run_check

        return run_check(source, on=on)
    if markdown:
        print(markdown_table(registry().models), end="")
        return 0
    today = on or datetime.now(UTC).date()
    rows = _model_rows(today)
    if json_output:
        _print_json(rows)
        return 0
    _show_table(_models_table(rows))
    print(f"(status as of {today}; registry checked {registry().checked})")
    return 0


def _model_rows(today: date) -> list[dict[str, Any]]:
    """One summary per model, newest release first (what `models --json` prints)."""
    from shared.validation.registry import model_summary, registry

    rows = [model_summary(spec, today) for spec in registry().models.values()]
    rows.sort(key=lambda row: (row["released"] or "", row["id"]), reverse=True)
    return rows


def _models_table(rows: Sequence[dict[str, Any]]) -> Table:
    header = ("MODEL", "STATUS", "STAGE", "RELEASED", "TUNING CLOSES", "RETIRES", "REPLACEMENT", "TOKENS", "MODALITIES")
    return _table(
        header,
        (
            (
                r["id"],
                r["status"],
                "preview" if r["preview"] else "GA",
                r["released"] or "-",
                r["tuning_closes"] or "-",
                r["retires"] or "-",
                r["replacement"] or "-",
                f"{r['max_tokens_per_example']:,}",
                ",".join(r["modalities"]),
            )
            for r in rows
        ),
    )


# ------------------------------------------------------------------------------------ dead letters


@_command("replay", "republish dead-lettered messages to their original topic", help=dlq.__doc__, group=dlq_app)
def dlq_replay_command(
    subscription: Annotated[
        str, typer.Option(help="dead-letter subscription (id or projects/P/subscriptions/S)", show_default=False)
    ],
    topic: Annotated[str, typer.Option(help="topic the messages came from (id or projects/P/topics/T)")],
    max_messages: Annotated[
        int, typer.Option("--max", min=1, metavar="N", help="at most this many messages")
    ] = dlq.DEFAULT_MAX,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list the messages, publish and acknowledge nothing")
    ] = False,
    project: Annotated[
        str | None, typer.Option(help="project of ids given without one (default: GOOGLE_CLOUD_PROJECT)")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="print the report as JSON on stdout (each message's line on stderr)")
    ] = False,
) -> int:
    project_id = project or CommonSettings.from_env().project
    subscription_path = dlq.resource_path("subscriptions", subscription, project_id)
    topic_path = dlq.resource_path("topics", topic, project_id)

    from shared.adapters.pubsub_dead_letters import connect

    source, target = connect(subscription_path, topic_path)
    # With --json, stdout is the report's alone; the running commentary goes to stderr.
    say = _printer(sys.stderr if json_output else sys.stdout)
    mode = "dry run: nothing is published or acknowledged" if dry_run else f"replaying into {topic_path}"
    say(f"{subscription_path} ({mode}, at most {max_messages} messages)")
    report = dlq.replay(source, target, max_messages=max_messages, dry_run=dry_run, say=say)
    if json_output:
        _print_json({"subscription": subscription_path, "topic": topic_path, "dry_run": dry_run, **report.to_dict()})
    else:
        done = len(report.listed) if dry_run else len(report.replayed)
        say(f"{done} message(s) {'would be replayed' if dry_run else 'replayed'} into {topic_path}.")
    _warn_about(report)
    return 0 if report.ok else 1


def _printer(stream: Any) -> Callable[[str], None]:
    """print() to `stream`, user text made printable: dead letters carry object names from uploads."""

    def say(line: str) -> None:
        print(printable(line), file=stream)

    return say


def _warn_about(report: dlq.ReplayReport) -> None:
    if report.failed is not None:
        message, error = report.failed
        print(
            f"tunedrop: publishing {printable(message.message_id)} failed ({printable(error)}); "
            "it and the rest stay dead-lettered.",
            file=sys.stderr,
        )
    for message_id, error in report.unacked:
        print(
            f"tunedrop: {printable(message_id)} was replayed but not acknowledged ({printable(error)}); "
            "it may be replayed again.",
            file=sys.stderr,
        )


# ------------------------------------------------------------------------------------ entry point


def main(argv: Sequence[str] | None = None) -> None:
    """`tunedrop`: run the command in argv (default: the process's arguments) and exit with its status.

    0 done, 1 failed, 2 bad usage or configuration, 130 interrupted."""
    code = 0
    try:
        with _logs_on_stderr():
            # typer's standalone mode: usage errors and --help print and exit as typer does (2 and 0).
            typer.main.get_command(app).main(args=None if argv is None else list(argv), prog_name="tunedrop")
    except ConfigError as exc:
        print(f"tunedrop: {printable(str(exc))}", file=sys.stderr)
        code = 2
    except (TunedropError, RuntimeError) as exc:
        # Errors quote job fields, and so text from uploads.
        print(f"tunedrop: {printable(str(exc))}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


@contextlib.contextmanager
def _logs_on_stderr() -> Iterator[None]:
    """JSON logs on stderr while a command runs, so stdout carries only its output (JSON with --json).

    The root logger is handed back as it was: a caller in the same process (a test) keeps its logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging(stream=sys.stderr)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
