"""`tunedrop`: the operators' command line.

Against a real project it reads the usual settings from the environment; against the local
stack it reads `.tunedrop/local.env` when GOOGLE_CLOUD_PROJECT is not set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.errors import ConfigError, TunedropError
from shared.jobs import Job, JobState
from shared.text import printable
from shared.validation.cli import parse_day


def _load_local_env() -> None:
    """Point the CLI at the local stack when no project is configured."""
    if os.environ.get("GOOGLE_CLOUD_PROJECT"):
        return
    from tunedrop_local.stack import default_state_dir, read_env_file

    env_file = default_state_dir() / "local.env"
    if env_file.exists():
        for key, value in read_env_file(env_file).items():
            os.environ.setdefault(key, value)
        print(f"(using the local stack: {env_file})", file=sys.stderr)


def _cmd_local(args: argparse.Namespace) -> int:
    from tunedrop_local import stack

    state_dir = Path(args.state_dir) if args.state_dir else None
    if args.action == "up":
        stack.up(state_dir)
    elif args.action == "down":
        stack.down(state_dir)
    else:
        current = stack.Stack(state_dir or stack.default_state_dir())
        running = stack.is_running(current)
        print("running" if running else "not running")
        for name, pid in stack.running_pids(current).items():
            print(f"  {name:<10} pid {pid}")
        return 0 if running else 1
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from tunedrop_local.demo import run_demo

    return int(run_demo(timeout=args.timeout))


def _format_row(values: Sequence[Any], widths: Sequence[int]) -> str:
    return "  ".join(str(v).ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()


def _table_lines(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A header and rows as aligned columns."""
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    return [_format_row(row, widths) for row in (header, *rows)]


# Wide enough for the usual gs:// URI; one very long name must not push every other column away.
_TABLE_CELL_LIMIT = 100


def jobs_table(jobs: Sequence[Job]) -> list[str]:
    """`tunedrop jobs` as lines: a header and one row per job, with user text made printable."""
    header = ("JOB ID", "STATE", "PRIORITY", "BASE MODEL", "CREATED", "DATASET")
    rows = [
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
    ]
    return _table_lines(header, rows)


def job_details(job: Job) -> list[str]:
    """`tunedrop job JOB_ID` as lines: the job's fields and its history, with user text made printable."""
    lines = [f"{printable(job.job_id)}  {job.state.value}  (attempt {job.attempt})"]
    for label, value in (
        ("dataset", job.dataset_uri),
        ("base model", job.base_model),
        ("report", job.report_uri),
        ("vertex job", job.vertex_job_name),
        ("tuned model", job.tuned_model),
        ("endpoint", job.endpoint),
        ("error", json.dumps(job.error) if job.error else ""),
    ):
        if value:
            lines.append(f"  {label:<12} {printable(value)}")
    lines.append("  history:")
    for entry in job.history:
        moved_from = printable(entry.from_state or "-")
        lines.append(
            f"    {entry.at:%Y-%m-%d %H:%M:%S}  {moved_from:>10} -> {printable(entry.to_state):<10}  "
            f"{printable(entry.reason)}"
        )
    return lines


def _cmd_jobs(args: argparse.Namespace) -> int:
    from shared.adapters.firestore_store import FirestoreJobStore
    from shared.bootstrap import get_app

    _load_local_env()
    app = get_app()
    assert isinstance(app.store, FirestoreJobStore)
    state = JobState(args.state.upper()) if args.state else None
    jobs = sorted(app.store.all_jobs(state=state, limit=args.limit), key=lambda j: j.created_at)
    if args.json:
        print(json.dumps([j.to_document() for j in jobs], default=str, indent=2))
        return 0
    print("\n".join(jobs_table(jobs)))
    return 0


def _cmd_job(args: argparse.Namespace) -> int:
    from shared.bootstrap import get_app

    _load_local_env()
    found = get_app().store.get(args.job_id)
    if found is None:
        print(f"tunedrop: no job {printable(args.job_id)}", file=sys.stderr)
        return 1
    job = found.value
    if args.json:
        print(json.dumps(job.to_document(), default=str, indent=2))
        return 0
    print("\n".join(job_details(job)))
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    from shared.bootstrap import get_app

    _load_local_env()
    job = get_app().operations.cancel(args.job_id)
    if job.state.terminal:
        print(f"{job.job_id}: {job.state.value} (it had not been submitted)")
    else:
        print(f"{job.job_id}: cancel requested on Vertex AI; `tunedrop job {job.job_id}` shows when it ends")
    return 0


def _cmd_retry(args: argparse.Namespace) -> int:
    from shared.bootstrap import get_app

    _load_local_env()
    job = get_app().operations.retry(args.job_id)
    print(f"{job.job_id}: QUEUED as attempt {job.attempt}")
    return 0


def _cmd_quota(args: argparse.Namespace) -> int:
    from shared.bootstrap import get_app

    _load_local_env()
    status = get_app().operations.quota()
    if args.json:
        print(
            json.dumps(
                {
                    "limit": status.limit,
                    "in_use": status.in_use,
                    "held": status.held,
                    "foreign": status.foreign,
                    "queued": status.queued,
                    "paused_until": status.paused_until.isoformat() if status.paused_until else None,
                }
            )
        )
        return 0
    print(f"limit   {status.limit} concurrent tuning jobs (TUNEDROP_QUOTA)")
    print(f"in use  {status.in_use}: {len(status.held)} by Tunedrop, {len(status.foreign)} by others")
    for name in status.held:
        print(f"          tunedrop  {name}")
    for name in status.foreign:
        print(f"          other     {name}")
    print(f"queued  {status.queued}")
    if status.paused_until:
        print(f"paused  until {status.paused_until:%H:%M:%S} after Vertex AI answered RESOURCE_EXHAUSTED")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from shared.validation.registry import markdown_table, model_summary, registry

    if args.action == "check":
        from shared.validation.docs_check import run_check

        return run_check(args.source, on=args.on)
    models = registry().models
    if args.markdown:
        print(markdown_table(models), end="")
        return 0
    today = args.on or datetime.now(UTC).date()
    rows = [model_summary(spec, today) for spec in models.values()]
    rows.sort(key=lambda row: (row["released"] or "", row["id"]), reverse=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ("MODEL", "STATUS", "STAGE", "RELEASED", "TUNING CLOSES", "RETIRES", "REPLACEMENT", "TOKENS", "MODALITIES")
    table = [
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
    ]
    print("\n".join(_table_lines(header, table)))
    print(f"(status as of {today}; registry checked {registry().checked})")
    return 0


def _cmd_retune(args: argparse.Namespace) -> int:
    from shared.bootstrap import get_app

    _load_local_env()
    job = get_app().uploads.retune(args.job_id, args.model)
    print(
        f"{printable(job.job_id)}: {job.state.value} on {printable(job.base_model)} "
        f"(retuned from {printable(job.retuned_from)})"
    )
    if job.error:
        print(f"  {printable(str(job.error.get('message', '')))}")
    return 0 if job.state is not JobState.REJECTED else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunedrop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="start, stop or inspect the local stack of emulators")
    local.add_argument("action", choices=("up", "down", "status"))
    local.add_argument("--state-dir", help="where pids, logs and local.env live (default: .tunedrop/)")
    local.set_defaults(func=_cmd_local)

    demo = sub.add_parser("demo", help="run the whole pipeline locally on sample datasets")
    demo.add_argument("--timeout", type=float, default=110.0, help="give up after this many seconds")
    demo.set_defaults(func=_cmd_demo)

    jobs = sub.add_parser("jobs", help="list jobs")
    jobs.add_argument("--state", help="only jobs in this state, e.g. QUEUED")
    jobs.add_argument("--limit", type=int, default=500)
    jobs.add_argument("--json", action="store_true")
    jobs.set_defaults(func=_cmd_jobs)

    job = sub.add_parser("job", help="one job's details and history")
    job.add_argument("job_id")
    job.add_argument("--json", action="store_true")
    job.set_defaults(func=_cmd_job)

    cancel = sub.add_parser("cancel", help="cancel a job: dequeue it, or cancel its Vertex AI job")
    cancel.add_argument("job_id")
    cancel.set_defaults(func=_cmd_cancel)

    retry = sub.add_parser("retry", help="re-queue a FAILED job as a new attempt")
    retry.add_argument("job_id")
    retry.set_defaults(func=_cmd_retry)

    quota = sub.add_parser("quota", help="the concurrent tuning-job quota: limit, in use, queued")
    quota.add_argument("--json", action="store_true")
    quota.set_defaults(func=_cmd_quota)

    models = sub.add_parser("models", help="the base models Tunedrop can tune, with their lifecycle and limits")
    models.add_argument("action", nargs="?", choices=("check",), help="check: compare the registry with Google's pages")
    models.add_argument("--json", action="store_true", help="a JSON list of objects, one per model")
    models.add_argument("--markdown", action="store_true", help="the README's model table")
    models.add_argument(
        "--on", type=parse_day, metavar="YYYY-MM-DD", help="status as of this day (default: today, UTC)"
    )
    models.add_argument(
        "--source",
        action="append",
        metavar="URL-or-FILE",
        help="with check: a page to read (repeatable; default: Google's supervised-tuning, tuning reference and "
        "model-versions pages as .md.txt)",
    )
    models.set_defaults(func=_cmd_models)

    retune = sub.add_parser("retune", help="tune a finished job's datasets again on another base model")
    retune.add_argument("job_id")
    retune.add_argument("--model", help="base model to tune on (default: the replacement of the job's model)")
    retune.set_defaults(func=_cmd_retune)

    from shared.validation.cli import add_parser as add_validate_parser

    add_validate_parser(sub)

    from shared.dlq import register_cli as add_dlq_parser

    add_dlq_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args))
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
