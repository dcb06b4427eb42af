"""`tunedrop validate`: check a dataset on your machine (or in a bucket) before uploading it.

Exit status: 0 valid, 1 invalid, 2 usage error (bad arguments, unreadable file).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TransferSpeedColumn

from shared.config import CommonSettings
from shared.validation.engine import validate_dataset
from shared.validation.hyperparams import HYPER_PARAMETERS
from shared.validation.markdown import render_markdown
from shared.validation.registry import DEFAULT_MODEL, registry
from shared.validation.tokens import SentencePieceTokenCounter, TokenCounter, TokenCountUnavailable
from shared.validation.uris import UriChecker, split_gs_uri

LOCAL_BUFFER_BYTES = 1024 * 1024
PROGRESS_MIN_BYTES = 32 * 1024 * 1024  # smaller files finish before a bar is worth drawing


class UsageError(Exception):
    """Bad arguments or an unreadable input: exit status 2."""


def parse_day(text: str) -> date:
    """A YYYY-MM-DD option value; a bad one is a usage error (exit status 2)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date like 2026-11-29") from None


@dataclass(frozen=True)
class ValidateRequest:
    """What `tunedrop validate` was asked to do, its options parsed."""

    train: str
    validation: str | None = None
    model: str | None = None
    epochs: int | None = None
    adapter_size: int | None = None
    learning_rate_multiplier: float | None = None
    region: str | None = None
    on: date | None = None
    json_output: bool = False
    tokenizer: str | None = None
    count_tokens: bool = False
    check_files: bool = False
    no_progress: bool = False
    strict: bool = False

    def hyper_parameters(self) -> dict[str, Any]:
        """The tuning job's hyper-parameters as Vertex AI names them, only those given."""
        # The options are named after the table's entries, so the table alone says which ones exist.
        given = {p.key: getattr(self, p.name) for p in HYPER_PARAMETERS}
        return {key: value for key, value in given.items() if value is not None}


def validate_command(
    train: Annotated[
        str, typer.Argument(metavar="TRAIN.jsonl", help="training dataset: a local path or gs://bucket/object")
    ],
    validation: Annotated[
        str | None, typer.Option(metavar="VAL.jsonl", help="validation dataset (local path or gs:// URI)")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help=f"base model to check against (default: $TUNEDROP_BASE_MODEL or {DEFAULT_MODEL}); "
            f"one of {', '.join(registry().names())} or an alias",
            show_default=False,
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="epoch count you will tune with")] = None,
    adapter_size: Annotated[int | None, typer.Option(help="adapter size you will tune with")] = None,
    learning_rate_multiplier: Annotated[
        float | None, typer.Option(help="learning-rate multiplier you will tune with")
    ] = None,
    region: Annotated[str | None, typer.Option(help="region the tuning job will run in, e.g. us-central1")] = None,
    on: Annotated[
        date | None,
        typer.Option(
            parser=parse_day,
            metavar="YYYY-MM-DD",
            help="check the model's lifecycle as of this day (default: today, UTC)",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON report on stdout")] = False,
    tokenizer: Annotated[
        str | None, typer.Option(metavar="MODEL.spm", help="count tokens with this SentencePiece model file")
    ] = None,
    count_tokens: Annotated[
        bool,
        typer.Option(
            "--count-tokens",
            help="count tokens with Vertex AI CountTokens ($GOOGLE_CLOUD_PROJECT, $TUNEDROP_REGION; "
            "$TUNEDROP_VERTEX_EMULATOR_HOST for the local emulator)",
        ),
    ] = False,
    check_files: Annotated[
        bool,
        typer.Option(
            "--check-files",
            help="check that every gs:// fileUri the examples reference exists and is within its kind's size limit",
        ),
    ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="never draw a progress bar")] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="make duplicate examples and train/validation overlap errors, not warnings "
            "(also $TUNEDROP_STRICT_VALIDATION)",
        ),
    ] = False,
) -> int:
    """The `validate` command's options, handed to run()."""
    return run(
        ValidateRequest(
            train=train,
            validation=validation,
            model=model,
            epochs=epochs,
            adapter_size=adapter_size,
            learning_rate_multiplier=learning_rate_multiplier,
            region=region,
            on=on,
            json_output=json_output,
            tokenizer=tokenizer,
            count_tokens=count_tokens,
            check_files=check_files,
            no_progress=no_progress,
            strict=strict,
        )
    )


def run(request: ValidateRequest) -> int:
    """The `validate` command; returns the exit status."""
    try:
        return _run(request)
    except UsageError as exc:
        print(f"tunedrop validate: {exc}", file=sys.stderr)
        return 2


def _run(request: ValidateRequest) -> int:
    # The settings a laptop may have: the functions' defaults apply, so a local check judges alike.
    settings = CommonSettings.from_env()
    counters = _token_counters(request, settings)
    checker = _uri_checker() if request.check_files else None
    with contextlib.ExitStack() as stack:
        train, train_size = stack.enter_context(_open(request.train))
        validation, validation_size = (None, 0)
        if request.validation:
            validation, validation_size = stack.enter_context(_open(request.validation))
        progress = stack.enter_context(progress_bar(train_size + validation_size, _progress_console(request)))
        report = validate_dataset(
            train,
            file=request.train,
            model=request.model or settings.base_model,
            validation=validation,
            validation_file=request.validation or "",
            hyper_parameters=request.hyper_parameters(),
            file_size=train_size,
            validation_file_size=validation_size if validation is not None else None,
            token_counter=counters,
            uri_checker=checker,
            region=request.region,
            progress=progress,
            on=request.on or datetime.now(UTC).date(),
            retiring_days=settings.model_retiring_days,
            strict=request.strict or settings.strict_validation,
        )
    if request.json_output:
        # ASCII only: a bidi override or a C1 control quoted from a dataset must not reach the terminal raw.
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=True))
    else:
        print(render_markdown(report), end="")
    return 0 if report.valid else 1


@contextlib.contextmanager
def _open(location: str) -> Iterator[tuple[IO[bytes], int]]:
    """(binary reader, size in bytes) of a local file or a gs:// object."""
    reader, size = _open_gcs(location) if location.startswith("gs://") else _open_local(location)
    with reader:
        yield reader, size


def _open_gcs(location: str) -> tuple[IO[bytes], int]:
    """The upload service's buffered blob reader, so both read a bucket the same way."""
    try:
        bucket, name = split_gs_uri(location)
    except ValueError:
        raise UsageError(f"{location} is not a gs://bucket/object URI") from None
    from google.cloud import storage

    from shared.adapters.gcs_blobs import GcsBlobStore
    from shared.ports import ObjectMissing

    blobs = GcsBlobStore(storage.Client())
    try:
        size = blobs.describe(bucket, name).size
        return blobs.open(bucket, name), size
    except ObjectMissing:
        raise UsageError(f"{location} does not exist") from None


def _open_local(location: str) -> tuple[IO[bytes], int]:
    try:
        handle = open(location, "rb", buffering=LOCAL_BUFFER_BYTES)  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise UsageError(f"cannot read {location}: {exc.strerror or exc}") from None
    return handle, os.fstat(handle.fileno()).st_size


def _progress_console(request: ValidateRequest) -> Console | None:
    """stderr, when a bar is wanted there: a terminal, no --no-progress (stdout stays the report's)."""
    if request.no_progress or not sys.stderr.isatty():
        return None
    return Console(stderr=True)


@contextlib.contextmanager
def progress_bar(total: int, console: Console | None) -> Iterator[Callable[[int], None] | None]:
    """A progress callback drawing a bar on `console`, or None without a console or for a small input.

    The bar is transient: it disappears once the input is read, leaving only the report."""
    if console is None or total < PROGRESS_MIN_BYTES:
        yield None
        return
    columns = (TextColumn("validating"), BarColumn(), TaskProgressColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("validating", total=total)
        yield lambda done: progress.update(task, completed=done)


def _token_counters(request: ValidateRequest, settings: CommonSettings) -> list[TokenCounter]:
    counters: list[TokenCounter] = []
    if request.count_tokens:
        if not settings.project:
            raise UsageError("--count-tokens needs GOOGLE_CLOUD_PROJECT")
        from shared.adapters.vertex_tokens import VertexTokenCounter

        counters.append(VertexTokenCounter(settings.project, settings.region, host=settings.vertex_emulator_host))
    if request.tokenizer:
        try:
            counters.append(SentencePieceTokenCounter.load(request.tokenizer))
        except TokenCountUnavailable as exc:
            print(f"tunedrop: {exc}; tokens will be estimated", file=sys.stderr)
    return counters


def _uri_checker() -> UriChecker:
    from shared.adapters.gcs_uris import GcsUriChecker

    return GcsUriChecker()
