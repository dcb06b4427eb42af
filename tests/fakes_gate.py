"""In-memory ModelAnswers and Judge for the evaluation gate, as strict as the Vertex AI adapters on the emulator.

They answer by the emulator's own rules (tunedrop_local.vertex_emulator.answers and .scores), refuse what the
adapters and the emulator refuse (TuningRejected; ValueError for a metric the port does not know), batch the
judge's scores like VertexJudge, and record every call. tests/integration/test_gate_contract.py runs one
contract on these fakes and on the adapters against the emulator.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tunedrop_local.vertex_emulator import answers, generate, scores, tokens
from tunedrop_local.vertex_emulator.errors import EmulatorError

from shared.adapters.vertex_judge import BASELINE_FIELD, CANDIDATE_FIELD, JUDGE_BATCH, METRICS, ROUGE_TYPE
from shared.adapters.vertex_predict import generate_request, location_of
from shared.jobs import Job, JobState, new_job
from shared.ports import Generated, Judge, ModelAnswers, TuningRejected

_TEMPLATE_VARIABLE_RE = re.compile(r"\{([_a-zA-Z][_a-zA-Z0-9]*)\}")
PAIRWISE_KEYS = frozenset({"prompt", CANDIDATE_FIELD, BASELINE_FIELD, "reference"})


@dataclasses.dataclass
class TunedModel:
    """What a fake tuned endpoint answers from: its training examples and the emulator's two knobs."""

    examples: list[answers.TrainingExample]
    seed: str
    quality: int = 100
    noise: int = 0


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _raise_next(failures: list[Exception]) -> None:
    if failures:
        raise failures.pop(0)


class FakeModelAnswers(ModelAnswers):
    """Answers by ``table`` ((model, last user text) -> answer) first, else by the emulator's rule: a tuned
    endpoint (see :meth:`tune`) like its training data, a publisher model the registry serves ``today``
    generically; an unknown endpoint or model is refused like the adapter's NOT_FOUND."""

    def __init__(
        self, table: Mapping[tuple[str, str], str] | None = None, *, today: Callable[[], dt.date] = _today
    ) -> None:
        self.table: dict[tuple[str, str], str] = dict(table or {})
        self.tuned: dict[str, TunedModel] = {}
        self.calls: list[tuple[str, str]] = []  # (model, last user text) of each well-formed call
        self.failures: list[Exception] = []  # raised first, one per call (TuningUnavailable: retries gave up)
        self._today = today
        # Many endpoints tuned on one file (the false-promotion simulations) share its parse and its lookups.
        self._parsed: dict[str, list[answers.TrainingExample]] = {}
        self._similar: dict[tuple[int, str], answers.TrainingExample | None] = {}

    def tune(self, endpoint: str, training_jsonl: str, *, quality: int = 100, noise: int = 0) -> None:
        """Serve a tuned model on ``endpoint`` trained on ``training_jsonl`` (the JSONL file's text)."""
        location_of(endpoint)
        if training_jsonl not in self._parsed:
            self._parsed[training_jsonl] = answers.parse_training(training_jsonl.splitlines())
        self.tuned[endpoint] = TunedModel(self._parsed[training_jsonl], endpoint, quality=quality, noise=noise)

    def generate(
        self,
        model: str,
        contents: Sequence[Mapping[str, Any]],
        system_instruction: Mapping[str, Any] | None = None,
    ) -> Generated:
        location_of(model)
        request = generate_request(model, contents, system_instruction)
        try:
            prompt = generate.prompt_text(request)
            self.calls.append((model, prompt))
            _raise_next(self.failures)
            text = self._answer(model, prompt)
        except EmulatorError as err:
            raise TuningRejected(f"generating an answer with {model}: {err.message}") from err
        return Generated(
            text=text,
            prompt_tokens=tokens.prompt_cost(request)[0],
            output_tokens=tokens.approximate_tokens(text),
        )

    def _answer(self, model: str, prompt: str) -> str:
        target = generate.parse_model(model)
        if not target.is_endpoint:
            generate.serving_model(target, self._today())
        if (model, prompt) in self.table:
            return self.table[(model, prompt)]
        if not target.is_endpoint:
            return str(answers.generic_answer(prompt))
        tuned = self.tuned.get(model)
        if tuned is None:
            raise generate.endpoint_missing(model)
        # The emulator's rule (answers.tuned_answer), with the most similar example looked up once per file.
        if not answers.answers_from_training(tuned.seed, prompt, tuned.quality):
            return str(answers.generic_answer(prompt))
        key = (id(tuned.examples), prompt)
        if key not in self._similar:
            self._similar[key] = answers.most_similar(tuned.examples, prompt)
        best = self._similar[key]
        if best is None:
            return str(answers.generic_answer(prompt))
        return str(answers.with_noise(best.answer, tuned.seed, prompt, tuned.noise))


class FakeJudge(Judge):
    """Scores by the emulator's metrics, in batches of JUDGE_BATCH like VertexJudge; ``calls`` records each
    request as (metric, instances), a comparison as ("pairwise", 1)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.failures: list[Exception] = []

    def score(self, metric: str, pairs: Sequence[tuple[str, str]]) -> list[float]:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}: one of {', '.join(METRICS)}")
        measure: Callable[[str, str], float] = {
            "exact_match": scores.exact_match,
            "bleu": scores.bleu,
            "rouge": lambda prediction, reference: scores.rouge(prediction, reference, ROUGE_TYPE),
        }[metric]
        values: list[float] = []
        for start in range(0, len(pairs), JUDGE_BATCH):
            batch = pairs[start : start + JUDGE_BATCH]
            self.calls.append((metric, len(batch)))
            _raise_next(self.failures)
            values.extend(measure(prediction, reference) for prediction, reference in batch)
        return values

    def compare(self, prompt: str, candidate: str, baseline: str, reference: str, prompt_template: str) -> float:
        self.calls.append(("pairwise", 1))
        _raise_next(self.failures)
        if not prompt_template.strip():
            raise TuningRejected(
                "comparing two answers: pairwise_metric_input.metric_spec.metric_prompt_template is required"
            )
        missing = sorted(set(_TEMPLATE_VARIABLE_RE.findall(prompt_template)) - PAIRWISE_KEYS)
        if missing:
            raise TuningRejected(f"comparing two answers: the json_instance lacks {', '.join(missing)}")
        choice, _ = scores.pairwise(candidate, baseline, reference or prompt)
        return {"CANDIDATE": 1.0, "BASELINE": 0.0, "TIE": 0.5}[choice]


def qa_line(prompt: str, answer: str) -> str:
    """One JSONL example: a user prompt and the model's answer (the gate's held-out reference)."""
    turns = [{"role": "user", "parts": [{"text": prompt}]}, {"role": "model", "parts": [{"text": answer}]}]
    return json.dumps({"contents": turns}) + "\n"


def succeeded_gate_job(job_id: str, now: dt.datetime, **fields: Any) -> Job:
    """A SUCCEEDED job of gemini-3.5-flash as the poller records it, with the gate's fields given (promote_as,
    endpoint, tuning_evaluation_uri, ...): what the evaluate function is asked to judge."""
    job = new_job(
        job_id=job_id,
        bucket="ds",
        object_name="incoming/m.json",
        generation="1",
        base_model="gemini-3.5-flash",
        now=now,
    )
    for state in (JobState.QUEUED, JobState.SUBMITTING, JobState.RUNNING):
        job = job.moved_to(state, now, "seeded")
    return job.moved_to(JobState.SUCCEEDED, now, "seeded", **{"tuned_model": f"{job_id}-model", **fields})
