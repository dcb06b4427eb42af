"""Issue 15's false-promotion figures through the whole gate (shared/services/gate.py), with models answering by the
Vertex AI emulator's rules (tests/fakes_gate.py: a tuned endpoint answers from its training data for its quality's
share of prompts, each endpoint choosing its own, and drops `noise` percent of each answer's words).

- No better: champion and candidate of the same quality (70) and noise (5): they answer alike on average, each
  with its own misses and dropped words. At most 5 of 100 gates may promote.
- Clearly better: the candidate at quality 100 against a champion at 60 (same noise). At least 90 of 100 must promote.

Each gate is a fresh alias with its champion, 100 held-out examples and the default gate (exact match for these
short answers, margin 0, 95% confidence). The counts are printed with -s."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import pytest

from shared.aliases import Alias, Champion
from shared.clock import FakeClock
from shared.services.gate import GateKeeper
from tests.fakes import InMemoryBlobStore, InMemoryJobStore, RecordingPublisher, make_settings
from tests.fakes_gate import FakeJudge, FakeModelAnswers, qa_line, succeeded_gate_job

GATES: Final = 100
EXAMPLES: Final = 100
NOISE: Final = 5
T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
SHADES = ("teal", "amber", "crimson", "olive", "indigo", "coral", "ivory", "slate", "ochre", "umber")


def _answer(n: int) -> str:
    return f"Item {n} is {SHADES[n % len(SHADES)]} and {SHADES[(n // 10) % len(SHADES)]}."


TRAINING = "".join(qa_line(f"Which colours is item {n}?", _answer(n)) for n in range(EXAMPLES))
HELD_OUT = "".join(qa_line(f"Name the colours of item {n}.", _answer(n)) for n in range(EXAMPLES))


def count_promotions(candidate_quality: int, champion_quality: int) -> int:
    settings = make_settings(GOOGLE_CLOUD_PROJECT="p")
    store, blobs, publisher = InMemoryJobStore(), InMemoryBlobStore(), RecordingPublisher()
    answers = FakeModelAnswers(today=lambda: T0.date())
    blobs.put("ds", "tunedrop-staging/held-out.jsonl", HELD_OUT.encode())
    gate = GateKeeper(store, blobs, answers, FakeJudge(), publisher, settings, FakeClock(T0))
    promoted = 0
    for n in range(GATES):
        champion_endpoint = f"projects/p/locations/us-central1/endpoints/champion-{n}"
        candidate_endpoint = f"projects/p/locations/us-central1/endpoints/candidate-{n}"
        answers.tune(champion_endpoint, TRAINING, quality=champion_quality, noise=NOISE)
        answers.tune(candidate_endpoint, TRAINING, quality=candidate_quality, noise=NOISE)
        alias = f"gate-{n}"
        champion = Champion("champion", "m", champion_endpoint, T0, base_model="gemini-3.5-flash")
        assert store.write_alias(Alias(alias, "default").promoted(champion), None)
        job = succeeded_gate_job(
            f"candidate-{n}",
            T0,
            promote_as=alias,
            endpoint=candidate_endpoint,
            tuning_evaluation_uri="gs://ds/tunedrop-staging/held-out.jsonl",
        )
        assert store.create(job)
        promoted += gate.evaluate(job.job_id) == "promoted"
    return promoted


def test_a_candidate_answering_like_the_champion_is_promoted_at_most_5_times_in_100() -> None:
    promoted = count_promotions(candidate_quality=70, champion_quality=70)
    print(f"no better (quality 70 against 70, noise {NOISE}): {promoted} of {GATES} promoted")
    assert promoted <= 5


def test_a_clearly_better_candidate_is_promoted_at_least_90_times_in_100() -> None:
    promoted = count_promotions(candidate_quality=100, champion_quality=60)
    print(f"clearly better (quality 100 against 60, noise {NOISE}): {promoted} of {GATES} promoted")
    assert promoted >= 90


@pytest.mark.parametrize("quality", [70])
def test_the_noise_makes_the_alike_models_disagree_on_some_examples(quality: int) -> None:
    """Without disagreement every no-better gate would tie on every example, and the first test could not fail."""
    answers = FakeModelAnswers(today=lambda: T0.date())
    answers.tune("projects/p/locations/us-central1/endpoints/a", TRAINING, quality=quality, noise=NOISE)
    answers.tune("projects/p/locations/us-central1/endpoints/b", TRAINING, quality=quality, noise=NOISE)
    contents = [{"role": "user", "parts": [{"text": "Name the colours of item 7."}]}]
    differ = 0
    for n in range(EXAMPLES):
        contents = [{"role": "user", "parts": [{"text": f"Name the colours of item {n}."}]}]
        a = answers.generate("projects/p/locations/us-central1/endpoints/a", contents).text
        b = answers.generate("projects/p/locations/us-central1/endpoints/b", contents).text
        differ += a != b
    assert differ >= EXAMPLES // 4
