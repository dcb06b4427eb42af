"""Streaming dataset validation: read each line once, check it, keep numbers, move on.

Memory stays bounded whatever the file size or the shape of its lines: at most max_line_bytes of
one line (a longer line is read to its end in chunks and refused unread), at most max_json_values
decoded values per line, the first 100 issues of each code, a 64-bit hash per training example (for
duplicates), fixed-size histograms and a sample of at most SAMPLE_SIZE small examples for the cost
estimate.
"""

from __future__ import annotations

import bisect
import functools
import io
import json
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any, Literal, NamedTuple

import msgspec

from shared.validation.cost import cost_estimate
from shared.validation.diagnosis import diagnosing
from shared.validation.hyperparams import check_hyper_parameters
from shared.validation.registry import DEFAULT_MODEL, ModelSpec, ModelStatus, get_model, registry
from shared.validation.report import Issue, ValidationReport, plural
from shared.validation.schema import (
    BYTES_PER_TOKEN_BOUND,
    FAST_DECODER,
    LINE_SLACK_BYTES,
    MESSAGES_DECODER,
    TEXT_DECODER,
    VALUES_PER_TOKEN_BOUND,
    ExampleChecker,
    LineError,
    MessagesExample,
    Shape,
    TextExample,
    decode_line,
    fast_check,
    json_values,
    max_json_values,
    max_line_bytes,
    messages_chars,
    text_bound,
    text_chars,
    to_request,
)
from shared.validation.stats import LogHistogram, RatioEstimate, Reservoir, quantiles, ratio_estimate
from shared.validation.tokens import (
    CountingIncomplete,
    SentencePieceTokenCounter,
    TokenCounter,
    TokenCountRetryable,
    TokenCountUnavailable,
)
from shared.validation.uris import UriChecker, check_all

SAMPLE_SIZE = 64
SAMPLE_MAX_LINE_BYTES = 256 * 1024  # larger examples are counted only when they near the limit
MAX_TRACKED_URIS = 1_000_000
# Calls to a remote token counter (Vertex AI CountTokens) for over-bound examples, per run; a local
# tokenizer (--tokenizer) costs no quota and keeps counting past it.
MAX_EXACT_COUNTS = 2_000
# How long one count may keep retrying quota and availability errors (jittered exponential backoff)
# before its counter is given up for the run; validate_dataset's count_deadline.
COUNT_DEADLINE_SECONDS = 180.0
# What is still read of a file known to be over the size limit, for its line errors and statistics;
# validate_dataset's oversized_scan_bytes.
OVERSIZED_SCAN_BYTES = 8 * 1024 * 1024
_REST_CHUNK_BYTES = 1 << 20  # a line over max_line_bytes is read to its end in pieces of this size
CHARS_PER_TOKEN = 4.0  # rule of thumb when nothing can count exactly
PROGRESS_BYTES = 8 * 1024 * 1024
_COUNT_WORKERS = 8
# msgspec.ValidationError is a DecodeError; msgspec raises RecursionError on deep nesting (a free-form
# functionCall "args" value can nest anything): the precise path reports it.
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
# Caps of the per-value count lists in _Validation.scan (list lengths, so memory stays under a megabyte).
_LISTED_UNITS = 1 << 16
_LISTED_TURNS = 1 << 10
_SETTLE_BYTES = 1 << 20  # clean lines are checked for repeats in runs of about this size (see _settle)
# The two fast tiers (the typed text-only decode in _Validation.scan, schema.fast_check in _other_line) only
# ever answer "clean, with these numbers" for lines the precise path would pass alike. False sends every
# line to the precise path: what the benchmark's "precise tier only" case measures against (tests/bench/
# validator.py) and what tests compare reports with. Read when a validation starts.
FAST_TIERS = True

Progress = Callable[[int], None]
# What validate_dataset does with an example whose upper bound is over the token limit when no exact
# count settles it: "warn" reports it as a warning (the CLI); "raise" raises CountingIncomplete when a
# counter could not count it (the upload service, so that Pub/Sub redelivers).
UnverifiedLength = Literal["raise", "warn"]


# What to do with a media file over its size limit, per media kind (the video page's own workarounds:
# chunk the video, or lower its resolution).
_SHRINK_ADVICE = {
    "video": "split the video into shorter clips (adjusting any timestamps) or compress it to a lower resolution",
    "image": "resize or compress the image",
    "document": "split the PDF into smaller files or compress it",
    "audio": "split the audio into shorter files or compress it to a lower bitrate",
}


def _megabytes(size: int) -> str:
    """A size in MB as the tuning pages write their limits (20MB is the registry's 20 * 2**20 bytes)."""
    return f"{size / 2**20:,.1f}".removesuffix(".0") + " MB"


class _Count(NamedTuple):
    tokens: int  # with the media estimate when the counter counts text only
    counter: str
    estimated: int  # the media estimate included in tokens (0 when the counter counted the media)


class _Counting:
    """Tries each token counter in order.

    A counter out of quota or briefly unavailable (TokenCountRetryable) is asked again with jittered
    exponential backoff for up to ``deadline`` seconds; one that fails past it (``gave_up``) or fails
    for good (``failures``) is not asked again during the run, so the run waits one deadline at most.
    """

    def __init__(self, counters: Sequence[TokenCounter], model: str, deadline: float = COUNT_DEADLINE_SECONDS) -> None:
        self.counters = list(counters)
        self.model = model
        self.deadline = deadline
        self.failures: dict[str, str] = {}
        self.gave_up: dict[str, str] = {}
        self.used: set[str] = set()
        self.calls = 0
        self.retries = 0
        self._lock = threading.Lock()
        self._retry: Callable[[Callable[..., int]], Callable[..., int]] | None = None
        if self.counters:  # api_core loads grpc: only when there is something to count with
            from google.api_core import retry as gretry

            # Full jitter (api_core draws each pause from 0 to the current delay) so that the sample's
            # concurrent counts do not retry in step; the pauses scale with the deadline for short ones.
            self._retry = gretry.Retry(
                predicate=gretry.if_exception_type(TokenCountRetryable),
                initial=min(1.0, deadline / 16),
                maximum=min(30.0, deadline / 4),
                multiplier=2.0,
                timeout=deadline,
                on_error=self._on_retry,
            )

    @property
    def available(self) -> bool:
        return any(self._usable(c) for c in self.counters)

    @property
    def broken(self) -> bool:
        """Whether a counter could not answer during the run (so an exact count may come later)."""
        return bool(self.failures or self.gave_up)

    def _usable(self, counter: TokenCounter) -> bool:
        return counter.name not in self.failures and counter.name not in self.gave_up

    def _on_retry(self, exc: Exception) -> None:
        with self._lock:
            self.retries += 1

    def count(self, request: Mapping[str, Any], media_tokens: int, *, remote: bool = True) -> _Count | None:
        """The first answer of a usable counter; only local ones unless ``remote`` (the budget is spent)."""
        if self._retry is None:
            return None
        from google.api_core import exceptions as gexc

        for counter in self.counters:
            local = _is_local(counter)
            if not self._usable(counter) or not (remote or local):
                continue
            try:
                tokens = self._retry(counter.count)(request, self.model)
            except gexc.RetryError as exc:  # still out of quota or unavailable at the deadline
                with self._lock:
                    self.gave_up.setdefault(
                        counter.name, f"{exc.cause or exc} (still failing after {self.deadline:g} s)"
                    )
                continue
            except TokenCountUnavailable as exc:
                with self._lock:
                    self.failures.setdefault(counter.name, str(exc))
                continue
            with self._lock:
                self.calls += not local
                self.used.add(counter.name)
            estimated = 0 if counter.counts_media else media_tokens
            return _Count(tokens + estimated, counter.name, estimated)
        return None


def _is_local(counter: TokenCounter) -> bool:
    """Whether a counter runs on this machine (no quota, no budget): the SentencePiece tokenizer."""
    return isinstance(counter, SentencePieceTokenCounter)


class _Validation:
    def __init__(
        self,
        spec: ModelSpec,
        report: ValidationReport,
        counting: _Counting,
        label_files: bool,
        unverified_length: UnverifiedLength = "warn",
    ) -> None:
        self.spec = spec
        self.report = report
        self.counting = counting
        self.label_files = label_files
        self.unverified_length = unverified_length
        self.checker = ExampleChecker(spec)
        self.fast_tiers = FAST_TIERS
        # scan tries the typed decode on lines up to the token limit (see text_bound); on none without fast tiers.
        self.typed_decode_limit = spec.max_tokens_per_example if self.fast_tiers else -1
        self.max_line = max_line_bytes(spec)
        self.max_values = max_json_values(spec)
        self.file = ""  # the file being scanned, for CountingIncomplete's message
        self.stopped_early = False  # whether the last scan stopped at stop_at before the end of its file
        self.lines_read = 0  # lines of the last scan
        self.train_hashes: set[int] = set()
        self.validation_hashes: set[int] = set()
        self.est_hist = LogHistogram()  # size units of examples not counted exactly
        self.exact_hist = LogHistogram()  # tokens of examples counted exactly
        self.turns_counts: dict[int, int] = {}
        self.est_units = 0
        self.exact_tokens = 0
        self.chars = 0
        self.media_parts = 0
        self.multimodal_examples = 0
        self.sample: Reservoir[tuple[bytes, int, int]] = Reservoir(SAMPLE_SIZE)
        # gs:// URI -> (file label, line number, JSON path, media kind) of its first reference
        self.uris: dict[str, tuple[str, int, str, str | None]] = {}
        self.uris_dropped = 0
        self.bytes_done = 0
        # Examples with errors, measured by the text they hold (_measure_loosely), kept apart from the clean
        # examples' figures above and added to them for the statistics only.
        self.loose_hist = LogHistogram()  # characters
        self.loose_turns: dict[int, int] = {}

    # ---- one file

    def scan(
        self,
        lines: Iterable[bytes],
        file: str,
        *,
        training: bool,
        progress: Progress | None,
        stop_at: float = math.inf,
    ) -> tuple[int, int]:
        """(examples, bytes) of one file; every issue goes into the report.

        This loop runs once per line. A clean text-only example shorter than the token limit (nearly
        every line of a real dataset) costs one typed decode, one pass over its turns and updates of
        local variables; every other line goes to _other_line. Everything used per line is bound to a
        local name first: attribute lookups add up here.

        Why one long function (radon E): splitting the loop into per-line calls costs a Python call and
        its argument passing on every line, the largest item left in the per-line budget. The figures
        are in ``python -m tests.bench validator`` (tests/bench/validator.py): the local-file case
        against the json.loads floor, and the fast tiers against the precise tier alone.

        Reading stops after the line that reaches ``stop_at`` bytes (``stopped_early`` tells).
        """
        self.file = file
        self.stopped_early = False
        label = file if self.label_files else ""
        legacy = self.spec.format == "messages"
        first_decode: Callable[[bytes], TextExample | MessagesExample] = (
            MESSAGES_DECODER if legacy else TEXT_DECODER
        ).decode
        first_chars: Callable[[Any], int] = messages_chars if legacy else text_chars
        limit = self.typed_decode_limit
        longest = self.max_line
        lines, rest_of_line = _bounded_lines(lines, longest)
        # Hashes of the clean lines since the last check for repeats: a run of consecutive lines,
        # checked against earlier lines in bulk every _SETTLE_BYTES and before any other line.
        pending: list[int] = []
        pending_add = pending.append
        sample = self.sample
        sample_max = SAMPLE_MAX_LINE_BYTES if training else -1  # only training examples are sampled
        sample_gap, sample_skipped = sample.gap(), 0  # counted down here rather than asking per line
        # Per-line statistics are plain counts in lists indexed by the value (unit_counts[units] and
        # turn_counts[turns]), folded into the histogram and self.turns_counts after the loop: an
        # increment costs far less than a logarithm, a dict update and min/max per line. The lists
        # grow on demand up to a cap; larger values go straight to the histogram and the dict.
        unit_counts: list[int] = []
        turn_counts: list[int] = []
        chars_total = 0
        examples = 0
        size_total = 0
        number = 0
        # Compared with this file's byte count; infinite without a callback, so one test covers both.
        next_progress: float = PROGRESS_BYTES if progress is not None else math.inf
        next_check = min(next_progress, _SETTLE_BYTES, stop_at)
        for raw in lines:
            number += 1
            size = len(raw)
            size_total += size
            if size <= limit:  # see text_bound: a shorter line cannot exceed the limit
                try:
                    ex = first_decode(raw)
                except _DECODE_ERRORS:
                    chars = -1
                else:
                    chars = first_chars(ex)
            else:
                chars = -1  # never on the fast path: not decoded here, whatever its size
            if chars >= 0:
                examples += 1
                pending_add(hash(raw))
                turns = len(ex.turns)
                try:
                    turn_counts[turns] += 1
                except IndexError:
                    if _grown(turn_counts, turns, _LISTED_TURNS):
                        turn_counts[turns] += 1
                    else:
                        self.turns_counts[turns] = self.turns_counts.get(turns, 0) + 1
                chars_total += chars
                units = chars
                media_tokens = 0
            else:
                if pending:  # first, so that issues are reported in line order
                    self._settle(pending, number - 1, label, training)
                if size > longest:
                    if rest_of_line is not None and not raw.endswith(b"\n"):
                        rest = rest_of_line()
                        size += rest
                        size_total += rest
                    raw = b""
                    self._too_long(size, number, label)
                    units = -1
                else:
                    example, units, media_tokens = self._other_line(raw, number, label, training)
                    examples += example
                if units < 0:  # counted exactly or not at all: nothing for the estimate
                    # The check at the end of the loop, here so that the fast path does not test units;
                    # pending is empty (settled above).
                    if size_total >= next_check:
                        next_progress, next_check = self._checkpoint(size_total, next_progress, stop_at, progress)
                        if self.stopped_early:
                            break
                    continue
            try:
                unit_counts[units] += 1
            except IndexError:
                if _grown(unit_counts, units, _LISTED_UNITS):
                    unit_counts[units] += 1
                else:
                    self.est_hist.add(units)
                    self.est_units += units
            if size <= sample_max:
                if sample_gap:
                    sample_gap -= 1
                    sample_skipped += 1
                else:
                    sample.skip(sample_skipped)
                    sample.offer((raw, units, media_tokens))
                    sample_skipped, sample_gap = 0, sample.gap()
            if size_total >= next_check:
                if pending:
                    self._settle(pending, number, label, training)
                next_progress, next_check = self._checkpoint(size_total, next_progress, stop_at, progress)
                if self.stopped_early:
                    break
        if pending:
            self._settle(pending, number, label, training)
        sample.skip(sample_skipped)
        for units, count in enumerate(unit_counts):
            if count:
                self.est_hist.add(units, count)
                self.est_units += units * count
        for turns, count in enumerate(turn_counts):
            if count:
                self.turns_counts[turns] = self.turns_counts.get(turns, 0) + count
        self.chars += chars_total
        self.bytes_done += size_total
        self.lines_read = number
        if progress is not None:
            progress(self.bytes_done)
        return examples, size_total

    def _checkpoint(
        self, size_total: int, next_progress: float, stop_at: float, progress: Progress | None
    ) -> tuple[float, float]:
        """scan's check every _SETTLE_BYTES or so (never per line): report progress when due and set
        stopped_early once ``stop_at`` is reached; (next progress, next check) in the file's bytes."""
        if size_total >= next_progress and progress is not None:
            progress(self.bytes_done + size_total)
            next_progress += PROGRESS_BYTES
        if size_total >= stop_at:
            self.stopped_early = True
        return next_progress, min(next_progress, size_total + _SETTLE_BYTES, stop_at)

    def _too_long(self, size: int, number: int, label: str) -> None:
        spec = self.spec
        self.report.add(
            Issue(
                number,
                "line_too_long",
                f"Line is {size:,} bytes; Tunedrop reads lines of up to {self.max_line:,} bytes for {spec.name} "
                f"({BYTES_PER_TOKEN_BOUND} for each of the {spec.max_tokens_per_example:,} tokens it accepts per "
                f"example, plus {LINE_SLACK_BYTES // 2**20} MiB for markup), so it was not read. Spaces between "
                "values count too, and so do fields Vertex AI ignores: remove the spaces, or shorten or split the "
                "example.",
                "",
                label,
            )
        )

    def _other_line(self, raw: bytes, number: int, label: str, training: bool) -> tuple[bool, int, int]:
        """Everything scan leaves to the general code: media, problems of any kind, lines over the limit.

        Returns (is an example, size units for the estimate or -1 when counted exactly or not at all,
        media tokens); scan counts the units.
        """
        spec = self.spec
        most = self.max_values
        # A line shorter than `most` bytes cannot hold more values; a longer one is measured before
        # any decoder builds its values.
        if len(raw) > most and (values := json_values(raw, most)) > most:
            self.report.add(
                Issue(
                    number,
                    "too_many_values",
                    f"Line holds about {values:,} JSON values (objects, arrays and the items in them); Tunedrop "
                    f"reads at most {most:,} for {spec.name} ({VALUES_PER_TOKEN_BOUND} for each of the "
                    f"{spec.max_tokens_per_example:,} tokens it accepts per example), so it was not read: merge "
                    "small parts and turns, or split the example.",
                    "",
                    label,
                )
            )
            return False, -1, 0
        shape: Shape | None = None
        obj: dict[str, Any] | None = None
        if self.fast_tiers:
            try:
                shape = fast_check(FAST_DECODER.decode(raw), spec)
            except _DECODE_ERRORS:
                shape = None
        if shape is None:
            precise = self._precise(raw, number, label)
            if precise is None:
                return False, -1, 0
            shape, obj, failed = precise
            if failed:  # an example, but with errors: measured loosely so that the statistics cover it
                self._measure_loosely(obj)
                return True, -1, 0

        self._check_repeat(hash(raw), number, label, training)

        media_tokens = shape.media_tokens
        units = shape.chars + int(CHARS_PER_TOKEN * media_tokens)
        exact: int | None = None
        if len(raw) + media_tokens > spec.max_tokens_per_example:
            exact = self._token_limit(raw, obj, media_tokens, number, label)
        if exact is not None:
            self.exact_hist.add(exact)
            self.exact_tokens += exact
        self.turns_counts[shape.turns] = self.turns_counts.get(shape.turns, 0) + 1
        self.chars += shape.chars
        if shape.media:
            self.media_parts += shape.media
            self.multimodal_examples += 1
            for uri, path, kind in shape.uris:
                if uri not in self.uris:
                    if len(self.uris) < MAX_TRACKED_URIS:
                        self.uris[uri] = (label, number, path, kind)
                    else:
                        self.uris_dropped += 1
        return True, (units if exact is None else -1), media_tokens

    def _settle(self, pending: list[int], last: int, label: str, training: bool) -> None:
        """Checks the line hashes in ``pending`` (lines ``last - len(pending) + 1`` to ``last``) for repeats.

        The usual case, no line seen before, takes three set operations in C for the whole run instead
        of several Python steps per line; otherwise the lines are checked one at a time, in order.
        Empties ``pending``.
        """
        seen = self.train_hashes if training else self.validation_hashes
        before = len(seen)
        if seen.isdisjoint(pending) and (training or self.train_hashes.isdisjoint(pending)):
            seen.update(pending)
            if len(seen) - before == len(pending):
                pending.clear()
                return
            seen.difference_update(pending)  # two lines of the run are the same: undo (all were new), then one by one
        for number, digest in enumerate(pending, start=last - len(pending) + 1):
            self._check_repeat(digest, number, label, training)
        pending.clear()

    def _check_repeat(self, digest: int, number: int, label: str, training: bool) -> None:
        """Records one line's hash; reports the line if it was seen before in this file (a duplicate) or,
        for a validation line, in the training file (an overlap)."""
        seen = self.train_hashes if training else self.validation_hashes
        before = len(seen)
        seen.add(digest)
        if len(seen) == before:
            message = "Example repeats an earlier line exactly: remove the copy."
            self.report.hygiene(Issue(number, "duplicate_example", message, file=label))
        elif not training and digest in self.train_hashes:
            # Vertex AI accepts such a dataset: a hygiene finding, an error only under strict validation.
            self.report.hygiene(
                Issue(
                    number,
                    "train_validation_overlap",
                    "Validation example is also in the training file: remove it from one of them, "
                    "or validation metrics will look better than they are.",
                    file=label,
                )
            )

    def _precise(self, raw: bytes, number: int, label: str) -> tuple[Shape, dict[str, Any], bool] | None:
        """Check a line the slow, exact way: None when it is not an example, else (its shape, the decoded
        object, whether it has errors)."""
        try:
            obj = decode_line(raw)
        except LineError as exc:
            self.report.add(Issue(number, exc.problem.code, exc.problem.message, exc.problem.path, label))
            return None
        problems, shape = self.checker.check(obj)
        failed = False
        for problem in problems:
            issue = Issue(number, problem.code, problem.message, problem.path, label)
            if problem.warning:
                self.report.warn(issue)
            else:
                failed = True
                self.report.add(issue)
        return shape, obj, failed

    def _measure_loosely(self, obj: dict[str, Any]) -> None:
        """Counts an example with errors in the statistics by the text it holds wherever it is (an OpenAI
        ``content``, a misspelt field), so that a file that is invalid as a whole still gets its numbers."""
        chars = loose_text_chars(obj)
        if not chars:  # nothing to train on or bill: it would only drag the figures towards zero
            return
        turns = next((len(v) for k in ("contents", "messages") if isinstance(v := obj.get(k), list)), 0)
        self.loose_hist.add(chars)
        self.loose_turns[turns] = self.loose_turns.get(turns, 0) + 1

    def _token_limit(
        self, raw: bytes, obj: dict[str, Any] | None, media_tokens: int, number: int, label: str
    ) -> int | None:
        """Check an example whose line is longer than the token limit; its exact count when one was made.

        Only an exact count over the limit rejects it (with a text-only counter, its text alone must be
        over). Without one, see _unverified.
        """
        spec = self.spec
        limit = spec.max_tokens_per_example
        request = to_request(obj if obj is not None else json.loads(raw), spec)
        bound = text_bound(request) + media_tokens
        if bound <= limit:
            return None
        counting = self.counting
        over_budget = counting.calls >= MAX_EXACT_COUNTS
        counted = counting.count(request, media_tokens, remote=not over_budget)
        if counted is None or counted.tokens > limit >= counted.tokens - counted.estimated:
            self._unverified(bound, media_tokens, counted, over_budget, number, label)
        elif counted.tokens > limit:
            media = f", {counted.estimated:,} of them estimated for its media" if counted.estimated else ""
            self.report.add(
                Issue(
                    number,
                    "too_many_tokens",
                    f"Example has {counted.tokens:,} tokens (counted with {counted.counter}{media}); {spec.name} "
                    f"accepts at most {limit:,} per example: shorten it or split the conversation into several "
                    "examples.",
                    "$",
                    label,
                )
            )
        return None if counted is None else counted.tokens

    def _unverified(
        self, bound: int, media_tokens: int, counted: _Count | None, over_budget: bool, number: int, label: str
    ) -> None:
        """An example whose upper bound is over the limit and that no exact count settled.

        Not rejected: its length was never measured. With unverified_length="raise" and a counter that
        could not answer (or none at all), CountingIncomplete asks for the upload to be validated again;
        otherwise, and whenever asking again cannot help, it is a warning.
        """
        spec = self.spec
        counting = self.counting
        limit = spec.max_tokens_per_example
        if counted is not None:
            reason = (
                f"{counted.counter} counted {counted.tokens - counted.estimated:,} tokens of its text, which the "
                f"{counted.estimated:,} estimated for its media may take over the limit"
            )
        elif over_budget:
            reason = f"Tunedrop counts at most {MAX_EXACT_COUNTS:,} long examples exactly per run"
        elif not counting.counters:
            reason = "no token counter was available to count it exactly"
        else:
            failed = "; ".join(f"{n}: {r}" for n, r in {**counting.failures, **counting.gave_up}.items())
            reason = f"no token counter was available to count it exactly ({failed})"
        retry_may_help = not over_budget and (counted is None or counting.broken)
        if self.unverified_length == "raise" and retry_may_help:
            where = f"line {number} of {self.file}" if self.file else f"line {number}"
            raise CountingIncomplete(
                f"Could not settle the length of {where}: its upper bound of {bound:,} tokens is over the {limit:,} "
                f"{spec.name} accepts and {reason}."
            )
        media = f" and {media_tokens:,} estimated for its media" if media_tokens else ""
        self.report.warn(
            Issue(
                number,
                "may_exceed_token_limit",
                f"Example may have more than the {limit:,} tokens {spec.name} accepts per example: its upper bound "
                f"is {bound:,} tokens (UTF-8 bytes of its text plus turn markers{media}) and {reason}. Vertex AI "
                "fails the tuning job if it does: shorten or split it, or validate with a token counter "
                "(--tokenizer or Vertex AI CountTokens).",
                "$",
                label,
            )
        )

    # ---- after both files

    def check_uris(self, checker: UriChecker) -> None:
        """Each gs:// URI once: missing objects are errors, and so are files over their media kind's size limit."""
        for uri, result in check_all(self.uris, checker).items():
            label, number, path, kind = self.uris[uri]
            if isinstance(result, Exception):
                self.report.warn(
                    Issue(
                        number,
                        "uri_check_failed",
                        f"Could not check that {uri} exists ({type(result).__name__}: {result}).",
                        path,
                        label,
                    )
                )
            elif result is None:
                self.report.add(
                    Issue(
                        number,
                        "missing_file",
                        f"{uri} does not exist or cannot be read: upload it, or fix the fileUri.",
                        path,
                        label,
                    )
                )
            else:
                self._check_media_size(uri, result.size_bytes, kind, (label, number, path))
        if self.uris_dropped:
            self.report.notes.append(
                f"Only the first {MAX_TRACKED_URIS:,} distinct gs:// URIs were checked; "
                f"{self.uris_dropped:,} more were not."
            )

    def _check_media_size(self, uri: str, size: int, kind: str | None, where: tuple[str, int, str]) -> None:
        """An error when the file is larger than the model's limit for its media kind (the tuning pages'
        "Maximum ... file size"; they do not say whether Vertex AI then fails the job or drops the example)."""
        spec = self.spec
        rule = spec.media.get(kind) if kind is not None else None
        limit = rule.max_file_bytes if rule is not None else None
        if limit is None or size <= limit:
            return
        label, number, path = where
        self.report.add(
            Issue(
                number,
                "media_file_too_large",
                f"{uri} is {_megabytes(size)} ({size:,} bytes); {spec.name} takes {kind} files of at most "
                f"{_megabytes(limit)} ({limit:,} bytes), the most Google's tuning pages allow (they do not say "
                "whether Vertex AI then fails the job or drops the example): "
                f"{_SHRINK_ADVICE.get(kind or '', 'make the file smaller or split it')}.",
                path,
                label,
            )
        )

    def statistics(self, report: ValidationReport, epochs: int | None) -> None:
        """The report's statistics and cost: the clean examples and, measured loosely, those with errors."""
        spec = self.spec
        estimate = self._sample_ratio()
        ratio, method = self._ratio(estimate)
        est_hist = self.est_hist.merged(self.loose_hist)
        est_units = self.est_units + round(self.loose_hist.total)
        total_tokens = self.exact_tokens + ratio * est_units
        tokens = {"method": method, **self._token_stats(est_hist, ratio, total_tokens)}
        if tokens.get("histogram") and self.media_parts:
            tokens["media_assumption"] = media_assumption(spec)
        turns_counts = dict(self.turns_counts)
        for turns, count in self.loose_turns.items():
            turns_counts[turns] = turns_counts.get(turns, 0) + count
        checked = sum(turns_counts.values())
        turns = sum(t * n for t, n in turns_counts.items())
        with_errors = self.loose_hist.count
        report.stats = {
            "examples": report.example_count,
            "examples_checked": checked,
            "examples_with_errors_measured": with_errors,
            "multimodal_examples": self.multimodal_examples,
            "media_parts": self.media_parts,
            "characters": self.chars + round(self.loose_hist.total),
            "turns": {
                "total": turns,
                "mean": round(turns / checked, 2) if checked else 0,
                "max": max(turns_counts, default=0),
            },
            "tokens_per_example": tokens,
            "training_tokens": round(total_tokens),
            "exactly_counted_examples": self.exact_hist.count,
            "token_counters": sorted(self.counting.used),
        }
        report.cost = cost_estimate(spec, total_tokens, estimate, est_units, epochs, method)
        if with_errors:
            one = with_errors == 1
            report.cost["scope_note"] = (
                f"includes {plural(with_errors, 'example')} with errors, measured by the text "
                f"{'it holds, as it' if one else 'they hold, as they'} would bill once fixed"
            )

    def _ratio(self, estimate: RatioEstimate | None) -> tuple[float, str]:
        """Tokens per size unit for the examples not counted exactly, and how it was found."""
        if estimate is None:
            return 1.0 / CHARS_PER_TOKEN, "rule of thumb: about 4 characters per token (no token counter was available)"
        counters = ", ".join(sorted(self.counting.used))
        return estimate.ratio, (
            f"exact counts ({counters}) of a uniform random sample of {estimate.sample_size} examples, "
            "scaled to the rest by text length"
        )

    def _token_stats(self, est_hist: LogHistogram, ratio: float, total_tokens: float) -> dict[str, Any]:
        """Tokens per example (min, median, p95, max, mean, histogram) of the exact counts and the estimates."""
        exact = self.exact_hist
        count = exact.count + est_hist.count
        if not count:
            return {}
        points = exact.weighted() + est_hist.weighted(ratio)
        low = min(exact.low if exact.count else math.inf, est_hist.low * ratio if est_hist.count else math.inf)
        high = max(exact.high if exact.count else -math.inf, est_hist.high * ratio if est_hist.count else -math.inf)
        median, p95 = quantiles(points, (0.5, 0.95))
        return {
            "min": round(low),
            "median": round(median),
            "p95": round(p95),
            "max": round(high),
            "mean": round(total_tokens / count, 1),
            "histogram": _histogram(points),
        }

    def _sample_ratio(self) -> RatioEstimate | None:
        items = self.sample.items
        if not items or not self.counting.available:
            return None

        def one(item: tuple[bytes, int, int]) -> tuple[float, float] | None:
            raw, units, media_tokens = item
            request = to_request(json.loads(raw), self.spec)
            counted = self.counting.count(request, media_tokens)
            return None if counted is None else (float(units), float(counted[0]))

        with ThreadPoolExecutor(max_workers=_COUNT_WORKERS, thread_name_prefix="count-tokens") as pool:
            pairs = [p for p in pool.map(one, items) if p is not None]
        if len(pairs) < 2:
            return None
        return ratio_estimate(pairs, self.sample.seen)


def _bounded_lines(lines: Iterable[bytes], longest: int) -> tuple[Iterable[bytes], Callable[[], int] | None]:
    """The lines of ``lines``, none longer than ``longest + 1`` bytes, and a function that reads the rest
    of a line cut there in chunks and returns its byte count (None when ``lines`` is not a reader).

    Iterating a reader builds each whole line, however long; readline(size) stops at size bytes and
    runs as fast. Any other iterable gives its lines as they come.
    """
    if not isinstance(lines, io.IOBase):
        return lines, None
    readline: Callable[[int], bytes] = lines.readline

    def rest_of_line() -> int:
        total = 0
        while True:
            chunk = readline(_REST_CHUNK_BYTES)
            total += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                return total

    return iter(functools.partial(readline, longest + 1), b""), rest_of_line


# What the token estimate assumes of one media part of each kind (shared/models.json, token_estimate_note):
# the validator never sees a file's duration, pages or pixels.
_MEDIA_ASSUMED = {
    "image": "each image one tile of up to 384x384 px",
    "audio": "each audio part one minute long",
    "video": "each video part one minute long",
    "document": "each document one page",
}


def media_assumption(spec: ModelSpec) -> str:
    """The report's sentence on how media parts are counted for ``spec``, naming each kind's assumption."""
    kinds = [
        f"{_MEDIA_ASSUMED.get(kind, f'each {kind} part')} ({rule.token_estimate:,} tokens)"
        for kind, rule in sorted(spec.media.items())
    ]
    return (
        "estimated, not measured, unless Vertex AI CountTokens counted the example: "
        + "; ".join(kinds)
        + ". Longer media, more pages or larger images count more."
    )


# Fields whose strings name or label something rather than hold text the model reads (loose_text_chars).
_LABEL_FIELDS = frozenset(
    {"role", "type", "id", "tool_call_id", "mimeType", "mime_type", "fileUri", "file_uri", "name", "weight"}
)


def loose_text_chars(value: Any) -> int:
    """Characters of the strings in a decoded JSON value, wherever they are, except keys and label fields:
    the text of an example that does not have the shape of one (whose shape says where its text is)."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(v for k, v in item.items() if k not in _LABEL_FIELDS)
        elif isinstance(item, list):
            stack.extend(item)
    return total


def _grown(counts: list[int], index: int, cap: int) -> bool:
    """Lengthen ``counts`` to hold ``index`` when that stays under ``cap``; whether it now does."""
    if index >= cap:
        return False
    counts.extend([0] * (index + 1 - len(counts)))
    return True


def _histogram(points: list[tuple[float, int]], bins: int = 12) -> list[dict[str, Any]]:
    """Log-spaced bins of whole numbers over the points' values: [{"from", "to", "count"}], "to" inclusive.

    The ranges are distinct (each bin starts one above the last one's "to"), the first holds the smallest
    point and the last the largest, so neither edge is empty; a narrow range gets fewer bins. A point is a
    LogHistogram bucket (2% wide), so an edge may differ from the exact min or max by up to 2%."""
    if not points:
        return []
    first = max(0, round(min(value for value, _ in points)))
    last = max(first, round(max(value for value, _ in points)))
    starts = _bin_starts(first, last, bins)
    counts = [0] * len(starts)
    for value, count in points:
        counts[max(0, bisect.bisect_right(starts, round(value)) - 1)] += count
    ends = [start - 1 for start in starts[1:]] + [last]
    return [{"from": s, "to": e, "count": n} for s, e, n in zip(starts, ends, counts, strict=True)]


def _bin_starts(first: int, last: int, bins: int) -> list[int]:
    """The first value of each bin: every value when there are no more than ``bins``, otherwise
    log-spaced whole numbers, strictly increasing (a bin too narrow to hold a whole number is merged)."""
    if last - first < bins:
        return list(range(first, last + 1))
    base = max(1, first)
    step = (math.log(last + 1) - math.log(base)) / bins
    starts = [first]
    for index in range(1, bins):
        start = round(base * math.exp(index * step))
        if starts[-1] < start <= last:
            starts.append(start)
    return starts


def _counters(token_counter: TokenCounter | Sequence[TokenCounter] | None) -> list[TokenCounter]:
    if token_counter is None:
        return []
    if isinstance(token_counter, TokenCounter):
        return [token_counter]
    return list(token_counter)


def validate_dataset(
    train: Iterable[bytes],
    *,
    file: str,
    model: str | ModelSpec | None = None,
    validation: Iterable[bytes] | None = None,
    validation_file: str = "",
    hyper_parameters: Mapping[str, Any] | None = None,
    file_size: int | None = None,
    validation_file_size: int | None = None,
    token_counter: TokenCounter | Sequence[TokenCounter] | None = None,
    uri_checker: UriChecker | None = None,
    region: str | None = None,
    progress: Progress | None = None,
    on: date | None = None,
    retiring_days: int = 30,
    unverified_length: UnverifiedLength = "warn",
    count_deadline: float = COUNT_DEADLINE_SECONDS,
    oversized_scan_bytes: int = OVERSIZED_SCAN_BYTES,
    strict: bool = False,
    example_hashes: set[int] | None = None,
) -> ValidationReport:
    """Validate a training file (and optionally a validation file) for one base model.

    ``model`` is a name or alias from the registry (default DEFAULT_MODEL), or a ModelSpec.
    ``on`` is the day the job would be tuned: a model that cannot be tuned that day is an error, one
    whose tuning closes within ``retiring_days`` a warning. Without it, lifecycle is not checked.

    ``train`` and ``validation`` are binary line iterables: an open file or a BufferedReader on a blob,
    read with bounded memory however long a line is, or any iterable of lines. Nothing is raised for a
    bad dataset: every problem is in the report.

    A file whose ``file_size`` (or ``validation_file_size``) is over the model's limit is reported at
    once and only its first ``oversized_scan_bytes`` are checked (0: none); one of unknown size is read
    up to the limit at most.

    An example is rejected for its length only on an exact count over the limit. A token counter out
    of quota or unavailable is retried for up to ``count_deadline`` seconds. An example whose upper
    bound is over the limit but that could not be counted is a warning with ``unverified_length="warn"``;
    with "raise", CountingIncomplete (a TransientError) is raised instead when a counter failed or none
    was given, so that the upload is validated again rather than rejected on a guess.

    Hygiene findings (duplicate examples, train/validation overlap: shared.validation.codes) are warnings,
    and errors with ``strict``. ``example_hashes``, when given, receives a hash of each training example's line
    (Python's hash: comparable within one process only).
    """
    report = ValidationReport(
        file=file, validation_file=validation_file if validation is not None else "", strict=strict
    )
    spec = _resolve_model(report, model, on, retiring_days)
    if hyper_parameters:
        report.hyper_parameters = dict(hyper_parameters)
    epochs = check_hyper_parameters(hyper_parameters or {}, spec, report)
    _check_region(report, spec, region)
    counting = _Counting(_counters(token_counter), spec.name, count_deadline)
    run = _Validation(spec, report, counting, label_files=validation is not None, unverified_length=unverified_length)

    report.example_count, report.byte_count, partial = _scan_file(
        run, report, spec, train, file, file_size, oversized_scan_bytes, progress, training=True
    )
    if example_hashes is not None:  # the caller compares another file with this one (a held-out set)
        example_hashes.update(run.train_hashes)
    # The counts of a file read in part say nothing of the whole file.
    if not partial:
        _check_training_count(report, spec, multimodal=run.multimodal_examples > 0)

    if validation is not None:
        count, report.validation_byte_count, partial_validation = _scan_file(
            run,
            report,
            spec,
            validation,
            validation_file,
            validation_file_size,
            oversized_scan_bytes,
            progress,
            training=False,
        )
        report.validation_example_count = count
        partial = partial or partial_validation
        if not partial_validation:  # as for the training file: the counts of a part say nothing of the whole
            _check_validation_count(report, spec, count, validation_file)

    # Dataset-wide rules of the example checker (RULES hook: schema.ExampleChecker.dataset_problems).
    for problem in run.checker.dataset_problems(report.example_count + report.validation_example_count):
        (report.warn if problem.warning else report.add)(Issue(0, problem.code, problem.message, problem.path))
    if uri_checker is not None and run.uris:
        run.check_uris(uri_checker)
    run.statistics(report, epochs)
    if partial:
        report.cost = {}  # a fraction of a file that cannot be tuned as it is: no figure to plan with
    _note_counting(report, counting)
    return report


def _resolve_model(
    report: ValidationReport, model: str | ModelSpec | None, on: date | None, retiring_days: int
) -> ModelSpec:
    """The spec to check against; an unknown name is reported and checked with DEFAULT_MODEL's rules."""
    spec: ModelSpec | None
    if isinstance(model, ModelSpec):
        name, spec = model.name, model
    else:
        name = (model or DEFAULT_MODEL).strip()
        spec = get_model(name)
    if spec is not None:
        report.model = spec.name
        if name != spec.name:  # an alias or another spelling: the header names both
            report.requested_model = name
        if on is not None:
            _check_lifecycle(report, spec, on, retiring_days)
        return spec
    known = ", ".join(registry().names())
    report.add(
        Issue(0, "unknown_model", f'Base model "{name}" cannot be tuned by Tunedrop: use one of {known}.', "model")
    )
    fallback = get_model(DEFAULT_MODEL)
    assert fallback is not None, "the registry must hold the default model"
    report.notes.append(
        f"{name} is not in the registry: the examples were checked against the rules of {fallback.name}."
    )
    report.model = name
    return fallback


def _check_region(report: ValidationReport, spec: ModelSpec, region: str | None) -> None:
    if region and region not in spec.regions:
        report.add(
            Issue(
                0,
                "unsupported_region",
                f"{spec.name} cannot be tuned in {region}: use one of {', '.join(sorted(spec.regions))}.",
                "region",
            )
        )


def _check_training_count(report: ValidationReport, spec: ModelSpec, *, multimodal: bool) -> None:
    """The training file read whole: empty, too few or too many examples."""
    if report.example_count == 0 and report.error_count == 0:
        report.add(Issue(0, "empty_dataset", "The file holds no examples: upload at least one."))
    elif 0 < report.example_count < spec.min_examples:
        report.add(
            Issue(
                0,
                "too_few_examples",
                f"The training file has {plural(report.example_count, 'example')}; {spec.name} needs at least "
                f"{spec.min_examples}.",
            )
        )
    check_example_count(report, spec, report.example_count, multimodal=multimodal)


def _check_validation_count(report: ValidationReport, spec: ModelSpec, count: int, validation_file: str) -> None:
    """The validation file read whole: empty, or over the model's count or share of the training examples."""
    share = spec.max_validation_share
    if count > spec.max_validation_examples:
        report.add(
            Issue(
                0,
                "validation_too_large",
                f"The validation file has {count:,} examples; {spec.name} accepts at most "
                f"{spec.max_validation_examples:,}: keep a random subset.",
                file=validation_file,
            )
        )
    elif (
        share is not None
        and spec.validation_share_above is not None
        and count > spec.validation_share_above
        and count > share * report.example_count
    ):
        report.add(
            Issue(
                0,
                "validation_too_large",
                f"The validation file has {count:,} examples; above {spec.validation_share_above:,}, {spec.name} "
                f"accepts at most {share:.0%} of the training examples "
                f"({int(share * report.example_count):,} for {report.example_count:,}): "
                "keep a random subset, or move examples to the training file.",
                file=validation_file,
            )
        )
    elif count == 0:
        report.add(Issue(0, "empty_dataset", "The validation file holds no examples.", file=validation_file))


def _note_counting(report: ValidationReport, counting: _Counting) -> None:
    """Notes on the token counters that failed or were retried during the run."""
    for counter_name, reason in counting.failures.items():
        report.notes.append(f"Token counter {counter_name} was unavailable: {reason}")
    for counter_name, reason in counting.gave_up.items():
        report.notes.append(f"Token counter {counter_name} was out of quota or unavailable: {reason}")
    if counting.retries:
        report.notes.append(
            f"Token counting was retried {counting.retries:,} time(s) after quota or availability errors."
        )


def _scan_file(
    run: _Validation,
    report: ValidationReport,
    spec: ModelSpec,
    lines: Iterable[bytes],
    file: str,
    size: int | None,
    oversized_scan_bytes: int,
    progress: Progress | None,
    *,
    training: bool,
) -> tuple[int, int, bool]:
    """Scans one file and checks its size: (examples, bytes read, whether it was read only in part
    because it is over the size limit).

    A known size over the limit is reported before reading, and only a prefix is read; a file of
    unknown size is read until it passes the limit.
    """
    most = spec.max_file_bytes
    known_over = size is not None and size > most
    if known_over:
        assert size is not None
        _check_file_size(report, spec, file, size)
    stop_at = oversized_scan_bytes if known_over else most + 1
    if stop_at > 0:
        # A file in another tool's format gets one file-level diagnosis instead of one error per line.
        with diagnosing(run, lines, file) as lines:
            examples, read = run.scan(lines, file, training=training, progress=progress, stop_at=stop_at)
        lines_read, partial = run.lines_read, run.stopped_early
    else:
        examples = read = lines_read = 0
        partial = True
    if not known_over:
        if partial:
            _check_file_size(report, spec, file, read, read_to_end=False)
        else:
            _check_file_size(report, spec, file, size if size is not None else read)
    if partial:
        report.notes.append(
            f"{file} is over the size limit: Tunedrop checked only its first {plural(lines_read, 'line')} "
            f"({read / 2**20:,.1f} MiB), and the statistics cover only those."
        )
    return examples, read, partial


def check_example_count(report: ValidationReport, spec: ModelSpec, count: int, *, multimodal: bool) -> None:
    """The training set's size against the model's limit for text-only or multimodal datasets."""
    most = spec.max_examples_multimodal if multimodal else spec.max_examples_text
    if most is not None and count > most:
        kind = "multimodal" if multimodal else "text-only"
        report.add(
            Issue(
                0,
                "too_many_examples",
                f"The training file has {count:,} examples; {spec.name} accepts at most {most:,} "
                f"{kind} examples: sample or split the dataset.",
            )
        )


def _check_lifecycle(report: ValidationReport, spec: ModelSpec, on: date, retiring_days: int) -> None:
    """A model that cannot be tuned on ``on`` is an error; one whose tuning closes soon, a warning.

    The data is still checked against the model's rules either way, so the report stays useful."""
    status = spec.status(on)
    if status is not ModelStatus.AVAILABLE:
        report.add(Issue(0, status.error_code, spec.closed_message(on), "model"))
        return
    life = spec.lifecycle
    days = life.days_until_tuning_closes(on)
    if days is not None and days <= retiring_days:
        successor = registry().successor(spec, on)
        instead = f"; move to {successor.name}" if successor else ""
        report.warn(
            Issue(
                0,
                "model_retiring",
                f"New tuning of {spec.name} closes on {life.tuning_closes} (in {days} days) and the model retires on "
                f"{life.retires}, when models tuned from it stop serving too{instead}.",
                "model",
            )
        )


def _check_file_size(
    report: ValidationReport, spec: ModelSpec, file: str, size: int, *, read_to_end: bool = True
) -> None:
    """``size`` is the file's size, or with ``read_to_end=False`` what was read before stopping."""
    if size > spec.max_file_bytes:
        how_big = (
            f"is {size / 2**30:.2f} GiB" if read_to_end else f"is over {size / 2**30:.2f} GiB (reading stopped there)"
        )
        report.add(
            Issue(
                0,
                "file_too_large",
                f"{file} {how_big}; {spec.name} accepts JSONL files up to "
                f"{spec.max_file_bytes / 2**30:.0f} GiB: split or sample the dataset.",
                file=file if report.validation_file else "",
            )
        )
