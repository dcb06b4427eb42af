"""Streaming statistics in bounded memory: a log-bucket histogram, a reservoir sample and a ratio estimate."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

# Buckets 2% wide: quantiles read from the histogram are within 2% of the true value.
HISTOGRAM_GROWTH = 1.02
_GROWTH = HISTOGRAM_GROWTH
_LOG_GROWTH = math.log(_GROWTH)


def _bucket(value: float) -> int:
    return -1 if value < 1 else int(math.log(value) / _LOG_GROWTH)


def _bucket_value(index: int) -> float:
    # Geometric middle of the bucket [g^i, g^(i+1)).
    return 0.0 if index < 0 else _GROWTH ** (index + 0.5)


@dataclass
class LogHistogram:
    """Counts of non-negative values in buckets 2% wide; exact count, total, min and max."""

    buckets: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float, count: int = 1) -> None:
        """Add ``count`` occurrences of ``value``."""
        index = _bucket(value)
        self.buckets[index] = self.buckets.get(index, 0) + count
        self.count += count
        self.total += value * count
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def merged(self, other: LogHistogram) -> LogHistogram:
        """A new histogram holding the values of both."""
        buckets = dict(self.buckets)
        for index, count in other.buckets.items():
            buckets[index] = buckets.get(index, 0) + count
        return LogHistogram(
            buckets,
            self.count + other.count,
            self.total + other.total,
            min(self.low, other.low),
            max(self.high, other.high),
        )

    def weighted(self, scale: float = 1.0) -> list[tuple[float, int]]:
        """(representative value x scale, count) per bucket, clamped to the exact min and max."""
        return [(min(max(_bucket_value(i), self.low), self.high) * scale, n) for i, n in sorted(self.buckets.items())]


def quantiles(points: Iterable[tuple[float, int]], qs: Iterable[float]) -> list[float]:
    """Quantiles (nearest rank) of weighted points."""
    ordered = sorted(points)
    total = sum(n for _, n in ordered)
    out = []
    for q in qs:
        if total == 0:
            out.append(0.0)
            continue
        rank = max(1, math.ceil(q * total))
        seen = 0
        for value, n in ordered:
            seen += n
            if seen >= rank:
                out.append(value)
                break
    return out


class Reservoir(Generic[T]):
    """A uniform random sample of ``size`` items from a stream of unknown length (Li's Algorithm L).

    It draws random numbers only when it replaces an item, so offering an item costs one comparison.
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.items: list[T] = []
        self.seen = 0
        self._rng = random.Random(seed)
        self._w = 1.0
        self._next = size

    def wants(self) -> bool:
        """Whether the next offered item would be kept (so the caller can skip building it)."""
        return self.seen < self.size or self.seen == self._next

    def offer(self, item: T) -> None:
        index = self.seen
        self.seen += 1
        if index < self.size:
            self.items.append(item)
            if index == self.size - 1:
                self._advance()
            return
        if index == self._next:
            self.items[self._rng.randrange(self.size)] = item
            self._advance()

    def skip(self, count: int = 1) -> None:
        """Count ``count`` items that are not kept (at most ``gap()`` of them)."""
        self.seen += count

    def gap(self) -> int:
        """How many items will be skipped before the next one is kept.

        A caller offering millions of items can count these down itself instead of asking
        ``wants()`` for each, then ``skip(gap)`` and ``offer`` the next one.
        """
        return 0 if self.seen < self.size else self._next - self.seen

    def _advance(self) -> None:
        rng = self._rng
        self._w *= math.exp(math.log(1.0 - rng.random()) / self.size)
        step = math.floor(math.log(1.0 - rng.random()) / math.log(1.0 - self._w)) if self._w < 1.0 else 0
        self._next = self.seen + step


@dataclass(frozen=True)
class RatioEstimate:
    """Tokens per size unit from a sample, with the standard error of a ratio estimator."""

    ratio: float
    standard_error: float
    sample_size: int


def ratio_estimate(pairs: list[tuple[float, float]], population: int) -> RatioEstimate | None:
    """(size, tokens) pairs of a simple random sample -> tokens/size and its standard error."""
    pairs = [(x, y) for x, y in pairs if x > 0]
    n = len(pairs)
    if n == 0:
        return None
    sum_x = sum(x for x, _ in pairs)
    ratio = sum(y for _, y in pairs) / sum_x
    if n < 2:
        return RatioEstimate(ratio, math.inf, n)
    mean_x = sum_x / n
    residual = sum((y - ratio * x) ** 2 for x, y in pairs) / (n - 1)
    fpc = max(0.0, 1.0 - n / population) if population else 1.0
    se = math.sqrt(fpc * residual / n) / mean_x
    return RatioEstimate(ratio, se, n)
