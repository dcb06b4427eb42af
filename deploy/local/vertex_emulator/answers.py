"""How the emulator's models answer a prompt: pure and deterministic, so in-memory fakes can answer alike.

* A **tuned model** answers with the model answer of the training example whose prompt is most similar
  to the request's last user text (Jaccard similarity of their lowercased word sets; the first such
  example in file order on a tie). It does so for ``quality`` percent of prompts, chosen by a hash of the
  model's seed and the prompt (so one model always answers one prompt alike, and two models of one quality
  answer different prompts from their training: noise between models); the other prompts get the base
  model's generic answer. ``noise`` percent of the answer's words, chosen by the same kind of hash, are
  dropped: models that answer alike, with noise.
* A **base model** answers generically: a sentence picked by the prompt's hash that names the first words
  of the prompt and never quotes training data. A tuned model therefore beats its base model on held-out
  prompts drawn like its training examples, and a tuned model of quality 0 is no better than its base.

A training file is JSON Lines in the Gemini supervised-tuning format (``{"contents": [{"role": "user",
"parts": [{"text": ...}]}, {"role": "model", ...}], "systemInstruction": ...}``); an example's prompt is the
text of its last user turn before its last model turn, its answer that model turn's text. Lines that are
not such examples are skipped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

_WORD_RE: Final = re.compile(r"\w+")
PERCENT: Final = 100
TOPIC_WORDS: Final = 5
# The base model's answers: generic, never specific to a task, so any training answer is closer to a reference.
_GENERIC_ANSWERS: Final = (
    "That depends on the details of {topic}. Could you tell me more about what you need?",
    "Here is a general answer about {topic}: it varies from case to case, so check the documentation.",
    "I would need more context on {topic} to answer precisely.",
    "There are several ways to approach {topic}; the right one depends on your situation.",
)


@dataclasses.dataclass(frozen=True)
class TrainingExample:
    prompt: str
    answer: str
    words: frozenset[str]


def words(text: str) -> frozenset[str]:
    return frozenset(word.lower() for word in _WORD_RE.findall(text))


def _bucket(*parts: str) -> int:
    """A stable number in [0, 100) for ``parts``."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % PERCENT


def _text(content: Any) -> str:
    if not isinstance(content, Mapping):
        return ""
    parts = content.get("parts")
    if not isinstance(parts, list):
        return ""
    return "".join(part["text"] for part in parts if isinstance(part, Mapping) and isinstance(part.get("text"), str))


def _example(line: str) -> TrainingExample | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    contents = record.get("contents") if isinstance(record, dict) else None
    if not isinstance(contents, list):
        return None
    roles = [turn.get("role") if isinstance(turn, Mapping) else None for turn in contents]
    if "model" not in roles:
        return None
    answer_at = len(roles) - 1 - roles[::-1].index("model")
    asked = [_text(turn) for turn, role in zip(contents[:answer_at], roles, strict=False) if role in ("user", None)]
    prompt = asked[-1] if asked else ""
    answer = _text(contents[answer_at])
    if not answer:
        return None
    return TrainingExample(prompt=prompt, answer=answer, words=words(prompt))


def parse_training(lines: Iterable[str]) -> list[TrainingExample]:
    """The usable examples of a training file's lines, in file order."""
    return [example for example in map(_example, lines) if example is not None]


def last_user_text(turns: Sequence[tuple[str, str]]) -> str:
    """The text of the last user turn of (role, text) pairs (a turn without a role is the user's)."""
    for role, text in reversed(turns):
        if role in ("user", ""):
            return text
    return ""


def most_similar(examples: Sequence[TrainingExample], prompt: str) -> TrainingExample | None:
    asked = words(prompt)
    best: TrainingExample | None = None
    best_score = -1.0
    for example in examples:
        union = len(asked | example.words)
        score = len(asked & example.words) / union if union else 0.0
        if score > best_score:
            best, best_score = example, score
    return best


def generic_answer(prompt: str) -> str:
    """The base model's answer: deterministic per prompt."""
    topic = " ".join(_WORD_RE.findall(prompt)[:TOPIC_WORDS]) or "this"
    template = _GENERIC_ANSWERS[_bucket("generic", prompt) % len(_GENERIC_ANSWERS)]
    return template.format(topic=f'"{topic}"')


def with_noise(answer: str, seed: str, prompt: str, noise: int) -> str:
    """``answer`` without ``noise`` percent of its words (at least one word is kept)."""
    if noise <= 0:
        return answer
    tokens = answer.split(" ")
    kept = [token for index, token in enumerate(tokens) if _bucket(seed, prompt, "noise", str(index)) >= noise]
    return " ".join(kept or tokens[:1])


def answers_from_training(seed: str, prompt: str, quality: int) -> bool:
    """Whether a tuned model of ``quality`` (a percent) answers ``prompt`` from its training data."""
    return _bucket(seed, prompt) < quality


def tuned_answer(examples: Sequence[TrainingExample], prompt: str, *, seed: str, quality: int, noise: int) -> str:
    """A tuned model's answer to ``prompt`` (its last user text)."""
    best = most_similar(examples, prompt) if answers_from_training(seed, prompt, quality) else None
    if best is None:
        return generic_answer(prompt)
    return with_noise(best.answer, seed, prompt, noise)
