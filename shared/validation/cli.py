"""`tunedrop validate`: check a dataset on your machine (or in a bucket) before uploading it.

Exit status: 0 valid, 1 invalid, 2 usage error (bad arguments, unreadable file).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import IO, Any, TextIO

from shared.config import setting_default
from shared.validation.engine import validate_dataset
from shared.validation.markdown import render_markdown
from shared.validation.registry import DEFAULT_MODEL, registry
from shared.validation.tokens import SentencePieceTokenCounter, TokenCounter, TokenCountUnavailable, VertexTokenCounter
from shared.validation.uris import GcsUriChecker

# Same read sizes as the upload service's blob reader (shared/adapters/gcs_blobs.py).
GCS_CHUNK_BYTES = 16 * 1024 * 1024
GCS_BUFFER_BYTES = 1024 * 1024
LOCAL_BUFFER_BYTES = 1024 * 1024
PROGRESS_MIN_BYTES = 32 * 1024 * 1024  # smaller files finish before a bar is worth drawing


class UsageError(Exception):
    """Bad arguments or an unreadable input: exit status 2."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `validate` on the `tunedrop` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate",
        help="check a JSONL tuning dataset (local file or gs:// URI) before uploading it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("train", metavar="TRAIN.jsonl", help="training dataset: a local path or gs://bucket/object")
    parser.add_argument("--validation", metavar="VAL.jsonl", help="validation dataset (local path or gs:// URI)")
    parser.add_argument(
        "--model",
        default=os.environ.get("TUNEDROP_BASE_MODEL") or DEFAULT_MODEL,
        help=f"base model to check against (default: $TUNEDROP_BASE_MODEL or {DEFAULT_MODEL}); "
        f"one of {', '.join(registry().names())} or an alias",
    )
    parser.add_argument("--epochs", type=int, help="epoch count you will tune with")
    parser.add_argument("--adapter-size", type=int, help="adapter size you will tune with")
    parser.add_argument("--learning-rate-multiplier", type=float, help="learning-rate multiplier you will tune with")
    parser.add_argument("--region", help="region the tuning job will run in, e.g. us-central1")
    parser.add_argument(
        "--on",
        type=parse_day,
        metavar="YYYY-MM-DD",
        help="check the model's lifecycle as of this day (default: today, UTC)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON report on stdout")
    parser.add_argument("--tokenizer", metavar="MODEL.spm", help="count tokens with this SentencePiece model file")
    parser.add_argument(
        "--count-tokens",
        action="store_true",
        help="count tokens with Vertex AI CountTokens ($GOOGLE_CLOUD_PROJECT, $TUNEDROP_REGION; "
        "$TUNEDROP_VERTEX_EMULATOR_HOST for the local emulator)",
    )
    parser.add_argument(
        "--check-files", action="store_true", help="check that every gs:// fileUri the examples reference exists"
    )
    parser.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    parser.set_defaults(func=run)
    return parser


@contextlib.contextmanager
def _open(location: str) -> Iterator[tuple[IO[bytes], int]]:
    """(binary reader, size in bytes) of a local file or a gs:// object."""
    if location.startswith("gs://"):
        from google.api_core import exceptions as gexc
        from google.cloud import storage

        bucket, _, name = location.removeprefix("gs://").partition("/")
        if not bucket or not name:
            raise UsageError(f"{location} is not a gs://bucket/object URI")
        blob = storage.Client().bucket(bucket).blob(name)
        try:
            blob.reload()
        except gexc.NotFound:
            raise UsageError(f"{location} does not exist") from None
        # Plain line iteration over blob.open() is slow; a BufferedReader on top reads fast.
        reader = io.BufferedReader(blob.open("rb", chunk_size=GCS_CHUNK_BYTES), buffer_size=GCS_BUFFER_BYTES)
        with reader:
            yield reader, int(blob.size or 0)
        return
    try:
        handle = open(location, "rb", buffering=LOCAL_BUFFER_BYTES)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise UsageError(f"cannot read {location}: {exc.strerror or exc}") from None
    with handle:
        yield handle, os.fstat(handle.fileno()).st_size


class _ProgressBar:
    """A one-line bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = max(1, total)
        self.stream = stream
        self.started = time.monotonic()
        self.drawn = 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.drawn < 0.1 and done < self.total:
            return
        self.drawn = now
        share = min(1.0, done / self.total)
        width = 30
        filled = round(width * share)
        rate = done / max(1e-6, now - self.started) / 1e6
        self.stream.write(f"\rvalidating [{'#' * filled}{'.' * (width - filled)}] {share:6.1%} {rate:7.1f} MB/s")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * 70 + "\r")
        self.stream.flush()


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-29") from None


def _retiring_days() -> int:
    """TUNEDROP_MODEL_RETIRING_DAYS as the functions read it (shared/config.py), so a local check warns alike."""
    raw = os.environ.get("TUNEDROP_MODEL_RETIRING_DAYS", "").strip() or setting_default("TUNEDROP_MODEL_RETIRING_DAYS")
    if not raw.isascii() or not raw.isdigit():
        raise UsageError(f"TUNEDROP_MODEL_RETIRING_DAYS={raw!r} is not a whole number of days")
    return int(raw)


def _token_counters(args: argparse.Namespace) -> list[TokenCounter]:
    counters: list[TokenCounter] = []
    if args.count_tokens:
        project = os.environ.get("GOOGLE_CLOUD_PROJECT", "")
        if not project:
            raise UsageError("--count-tokens needs GOOGLE_CLOUD_PROJECT")
        host = os.environ.get("TUNEDROP_VERTEX_EMULATOR_HOST", "")
        counters.append(VertexTokenCounter(project, os.environ.get("TUNEDROP_REGION") or "us-central1", host=host))
    if args.tokenizer:
        try:
            counters.append(SentencePieceTokenCounter.load(args.tokenizer))
        except TokenCountUnavailable as exc:
            print(f"tunedrop: {exc}; tokens will be estimated", file=sys.stderr)
    return counters


def run(args: argparse.Namespace) -> int:
    """The `validate` command; returns the exit status."""
    try:
        return _run(args)
    except UsageError as exc:
        print(f"tunedrop validate: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    hyper: dict[str, Any] = {}
    if args.epochs is not None:
        hyper["epoch_count"] = args.epochs
    if args.adapter_size is not None:
        hyper["adapter_size"] = args.adapter_size
    if args.learning_rate_multiplier is not None:
        hyper["learning_rate_multiplier"] = args.learning_rate_multiplier
    counters = _token_counters(args)
    checker = GcsUriChecker() if args.check_files else None
    with contextlib.ExitStack() as stack:
        train, train_size = stack.enter_context(_open(args.train))
        validation = None
        validation_size = 0
        if args.validation:
            validation, validation_size = stack.enter_context(_open(args.validation))
        bar = None
        total = train_size + validation_size
        if not args.no_progress and sys.stderr.isatty() and total >= PROGRESS_MIN_BYTES:
            bar = _ProgressBar(total, sys.stderr)
        try:
            report = validate_dataset(
                train,
                file=args.train,
                model=args.model,
                validation=validation,
                validation_file=args.validation or "",
                hyper_parameters=hyper,
                file_size=train_size,
                validation_file_size=validation_size if validation is not None else None,
                token_counter=counters,
                uri_checker=checker,
                region=args.region,
                progress=bar,
                on=args.on or datetime.now(UTC).date(),
                retiring_days=_retiring_days(),
            )
        finally:
            if bar is not None:
                bar.close()
    if args.json:
        # ASCII only: a bidi override or a C1 control quoted from a dataset must not reach the terminal raw.
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=True))
    else:
        print(render_markdown(report), end="")
    return 0 if report.valid else 1
