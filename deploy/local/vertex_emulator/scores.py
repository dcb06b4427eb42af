"""The emulator's own computation-based metrics and its pairwise "autorater": pure, deterministic, shared with
the in-memory fakes.

The real service's implementations are not published; these are simple textbook versions (each in [0, 1]):

* **exact match**: 1.0 when prediction and reference are equal once surrounding whitespace is stripped,
  else 0.0.
* **BLEU** (sentence level, up to 4-grams, uniform weights, brevity penalty): tokens are runs of word
  characters and single punctuation marks, case kept; clipped n-gram precisions, add-one smoothed for
  n >= 2 (Lin and Och's smoothing 2). An order the prediction is too short for makes the score 0, unless
  ``use_effective_order`` leaves such orders out. An empty prediction or reference scores 0.
* **ROUGE** (F1 of precision and recall): tokens are lowercased runs of word characters, optionally
  stemmed by stripping a plain English suffix (-ing, -ed, -es, -s). ``rouge1`` to ``rouge9`` count n-gram
  overlaps, ``rougeL`` uses the longest common subsequence, ``rougeLsum`` the union of the longest common
  subsequences of each reference line with every prediction line (lines split on newlines, and with
  ``split_summaries`` also after sentence-ending punctuation).
* **pairwise**: the response whose words overlap the reference more (ROUGE-1 F1) wins; equal overlaps tie.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Final

ROUGE_TYPE_RE: Final = re.compile(r"rouge([1-9]|L|Lsum)")
DEFAULT_ROUGE_TYPE: Final = "rougeL"
MAX_BLEU_ORDER: Final = 4
_BLEU_TOKEN_RE: Final = re.compile(r"\w+|[^\w\s]")
_ROUGE_TOKEN_RE: Final = re.compile(r"\w+")
_SENTENCE_END_RE: Final = re.compile(r"(?<=[.!?])\s+")
_SUFFIXES: Final = ("ing", "ed", "es", "s")
MIN_STEM: Final = 3
# Scores are rounded so that a pairwise comparison of equal overlaps is a tie, not a float accident.
DIGITS: Final = 6


def exact_match(prediction: str, reference: str) -> float:
    return 1.0 if prediction.strip() == reference.strip() else 0.0


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _overlap(prediction: Sequence[str], reference: Sequence[str], n: int) -> tuple[int, int, int]:
    """(clipped matches, prediction n-grams, reference n-grams)."""
    predicted, expected = _ngrams(prediction, n), _ngrams(reference, n)
    matches = sum(min(count, expected[gram]) for gram, count in predicted.items())
    return matches, sum(predicted.values()), sum(expected.values())


def bleu(prediction: str, reference: str, use_effective_order: bool = False) -> float:
    predicted, expected = _BLEU_TOKEN_RE.findall(prediction), _BLEU_TOKEN_RE.findall(reference)
    if not predicted or not expected:
        return 0.0
    logs: list[float] = []
    for n in range(1, MAX_BLEU_ORDER + 1):
        matches, total, _ = _overlap(predicted, expected, n)
        if total == 0:
            if use_effective_order:
                continue
            return 0.0
        precision = matches / total if n == 1 else (matches + 1) / (total + 1)
        if precision == 0:
            return 0.0
        logs.append(math.log(precision))
    brevity = 1.0 if len(predicted) > len(expected) else math.exp(1 - len(expected) / len(predicted))
    return round(brevity * math.exp(sum(logs) / len(logs)), DIGITS)


def _stem(token: str) -> str:
    for suffix in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= MIN_STEM:
            return token[: -len(suffix)]
    return token


def _rouge_tokens(text: str, use_stemmer: bool) -> list[str]:
    tokens = [token.lower() for token in _ROUGE_TOKEN_RE.findall(text)]
    return [_stem(token) for token in tokens] if use_stemmer else tokens


def _f1(hits: int, predicted: int, expected: int) -> float:
    if hits == 0 or predicted == 0 or expected == 0:
        return 0.0
    precision, recall = hits / predicted, hits / expected
    return round(2 * precision * recall / (precision + recall), DIGITS)


def _lcs_positions(reference: Sequence[str], prediction: Sequence[str]) -> set[int]:
    """The indices of ``reference`` tokens on one longest common subsequence with ``prediction``."""
    rows, cols = len(reference), len(prediction)
    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            if reference[i] == prediction[j]:
                table[i][j] = table[i + 1][j + 1] + 1
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    positions: set[int] = set()
    i = j = 0
    while i < rows and j < cols:
        if reference[i] == prediction[j]:
            positions.add(i)
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return positions


def _lines(text: str, split_summaries: bool) -> list[str]:
    lines = [line for line in text.split("\n") if line.strip()]
    if split_summaries:
        lines = [sentence for line in lines for sentence in _SENTENCE_END_RE.split(line) if sentence.strip()]
    return lines


def _rouge_lsum(prediction: str, reference: str, use_stemmer: bool, split_summaries: bool) -> float:
    predicted = [_rouge_tokens(line, use_stemmer) for line in _lines(prediction, split_summaries)]
    expected = [_rouge_tokens(line, use_stemmer) for line in _lines(reference, split_summaries)]
    hits = 0
    for line in expected:
        union: set[int] = set()
        for candidate in predicted:
            union |= _lcs_positions(line, candidate)
        hits += len(union)
    return _f1(hits, sum(map(len, predicted)), sum(map(len, expected)))


def rouge(
    prediction: str,
    reference: str,
    rouge_type: str = DEFAULT_ROUGE_TYPE,
    *,
    use_stemmer: bool = False,
    split_summaries: bool = False,
) -> float:
    """ROUGE F1 of ``rouge_type`` (rouge1 to rouge9, rougeL, rougeLsum; see the module's notes)."""
    if not ROUGE_TYPE_RE.fullmatch(rouge_type):
        raise ValueError(f"unsupported rouge_type {rouge_type!r}")
    if rouge_type == "rougeLsum":
        return _rouge_lsum(prediction, reference, use_stemmer, split_summaries)
    predicted, expected = _rouge_tokens(prediction, use_stemmer), _rouge_tokens(reference, use_stemmer)
    if rouge_type == "rougeL":
        return _f1(len(_lcs_positions(expected, predicted)), len(predicted), len(expected))
    n = int(rouge_type.removeprefix("rouge"))
    matches, predicted_grams, expected_grams = _overlap(predicted, expected, n)
    return _f1(matches, predicted_grams, expected_grams)


def pairwise(candidate: str, baseline: str, reference: str) -> tuple[str, str]:
    """(CANDIDATE, BASELINE or TIE, an explanation): the response closer to ``reference`` wins."""
    candidate_score, baseline_score = rouge(candidate, reference, "rouge1"), rouge(baseline, reference, "rouge1")
    scores = (
        f"word overlap with the reference (ROUGE-1 F1): candidate {candidate_score:.3f}, baseline {baseline_score:.3f}"
    )
    if candidate_score > baseline_score:
        return "CANDIDATE", f"The candidate response is closer to the reference; {scores}."
    if baseline_score > candidate_score:
        return "BASELINE", f"The baseline response is closer to the reference; {scores}."
    return "TIE", f"Both responses are as close to the reference; {scores}."
