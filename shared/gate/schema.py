"""The evaluation gate a manifest may set: what decides whether a tuned model replaces the one in use.

    promote_as: recipes
    evaluation_dataset: datasets/kitchen/recipes-heldout.jsonl
    gate:
      metric: auto            # auto (the default), exact_match, bleu, rouge or pairwise
      margin: 0.0             # how far the candidate must be ahead, in the metric's units (see verdict.py)
      confidence: 0.95        # of the bootstrap interval of that margin
      min_examples: 100       # fewer scored held-out examples never promote
      manual: false           # true: an operator promotes (tunedrop.model.v1.candidate_ready)
      max_cost_usd: 2.5       # optional: the team's own cap, under the operators' one
      prompt_template: ...    # pairwise only: what the judge is asked (DEFAULT_PAIRWISE_TEMPLATE otherwise)

Defaults, and why:

* `metric: auto` resolves per held-out file (`resolve_metric`): exact match when every reference answer is short
  (at most SHORT_ANSWER_WORDS words and SHORT_ANSWER_CHARACTERS characters), a pairwise judge otherwise. A short
  answer (a label, a number, a name, yes/no) has one right spelling, so exact match is deterministic, needs no judge
  model (nothing to pay, no judge bias) and says plainly what "better" means. A longer answer can be right in many
  words; exact match would score both models near zero and every example a tie, so the gate could never tell them
  apart: a judge that reads both answers beside the reference is the measure that can. Text written without spaces
  (Japanese, Chinese) counts each wide character as a word, which errs towards the judge (it works on short answers
  too, only at a cost), and the character cap catches any other run without spaces. BLEU and ROUGE are never chosen
  for a team: they reward word overlap, which suits translation or summaries when a team asks for them.
* `margin: 0.0`: promote only when the candidate is shown better than the model in use, by any amount. A positive
  margin asks for a clear lead (a new model has a cost: a change for the team's users); a negative margin lets a
  candidate through that is at worst that much behind (non-inferiority, e.g. a cheaper base model).
* `confidence: 0.95`: the issue's figure. The lower end of a two-sided 95% interval above the margin is a one-sided
  test at 2.5%: when a candidate is no better, about 1 gate in 40 promotes it (tests/bench/gate_errors.py measures it).
* `min_examples: 100`: below that a bootstrap interval of a mean is itself unreliable (it is too narrow for small
  samples), and a tuned model's lead on a few dozen examples says little about the next thousand requests.
* `manual: false`: the gate acts by itself, as a hands-off system should; `true` waits for an operator.

The judge's prompt names its inputs with the placeholders the Vertex AI SDK gives a pairwise metric's columns:
{prompt}, {reference}, {response} (the candidate's answer) and {baseline_model_response} (the baseline's), as
vertexai/evaluation/metrics/metric_prompt_template.py in google-cloud-aiplatform 2.7 does (read 2026-11-30); its
own pairwise templates show the baseline as "Response A" and the candidate as "Response B" and ask for "A", "SAME" or
"B", which the default template here keeps. A template must name both answers and nothing else but those four.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

GateMetric = Literal["auto", "exact_match", "bleu", "rouge", "pairwise"]
ScoredMetric = Literal["exact_match", "bleu", "rouge", "pairwise"]
SCORED_METRICS: Final[tuple[ScoredMetric, ...]] = ("exact_match", "bleu", "rouge", "pairwise")
JUDGED_METRICS: Final = frozenset({"auto", "pairwise"})  # the metrics a prompt_template may come with

SHORT_ANSWER_WORDS: Final = 8
SHORT_ANSWER_CHARACTERS: Final = 80

DEFAULT_MARGIN: Final = 0.0
DEFAULT_CONFIDENCE: Final = 0.95
DEFAULT_MIN_EXAMPLES: Final = 100

TEMPLATE_FIELDS: Final = frozenset({"prompt", "reference", "response", "baseline_model_response"})
REQUIRED_TEMPLATE_FIELDS: Final = frozenset({"response", "baseline_model_response"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

DEFAULT_PAIRWISE_TEMPLATE: Final = """You are judging two answers to the same request.
Decide which one serves the request better.

What counts, in this order:
1. Correctness: the answer is right, and agrees with the reference answer where the reference settles the point.
2. Following the request: it does what was asked, in the form that was asked for.
3. Completeness without padding: nothing needed is missing, nothing unneeded is added.
4. Clarity: it reads easily.

Read the request and the reference first. Assess Response A, then Response B, against these points. Then choose:
"A" when Response A is better, "B" when Response B is better, "SAME" when neither is better.
Give the choice in the pairwise_choice field and your reasons in the explanation field.

## Request
{prompt}

## Reference answer
{reference}

## Response A
{baseline_model_response}

## Response B
{response}
"""

Margin = Annotated[float, Meta(gt=-1.0, lt=1.0)]
Confidence = Annotated[float, Meta(ge=0.5, le=0.999)]
MinExamples = Annotated[int, Meta(ge=1, le=10_000)]
CostCap = Annotated[float, Meta(gt=0.0, le=100_000.0)]
JudgePrompt = Annotated[str, Meta(min_length=1, max_length=20_000, pattern=r"\A[^\x00-\x08\x0b-\x1f\x7f]*\Z")]


class Gate(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """A manifest's `gate`; Job.gate holds it as plain data (msgspec.to_builtins), read back with gate_of."""

    metric: GateMetric = "auto"
    margin: Margin = DEFAULT_MARGIN  # strictly inside (-1, 1): at 1 nothing could pass, at -1 nearly anything
    confidence: Confidence = DEFAULT_CONFIDENCE
    min_examples: MinExamples = DEFAULT_MIN_EXAMPLES
    manual: bool = False
    prompt_template: JudgePrompt | None = None
    max_cost_usd: CostCap | None = None

    def __post_init__(self) -> None:
        # A ValueError here is a msgspec.ValidationError to whoever converts: one message, one place.
        if self.prompt_template is None:
            return
        if self.metric not in JUDGED_METRICS:
            raise ValueError(f"prompt_template is for the pairwise judge; metric {self.metric} has none")
        named = set(_PLACEHOLDER.findall(self.prompt_template))
        unknown = sorted(named - TEMPLATE_FIELDS)
        if unknown:
            allowed = ", ".join("{" + name + "}" for name in sorted(TEMPLATE_FIELDS))
            raise ValueError(f"prompt_template names {{{unknown[0]}}}; the judge is given only {allowed}")
        missing = sorted(REQUIRED_TEMPLATE_FIELDS - named)
        if missing:
            raise ValueError(f"prompt_template must show the judge both answers: {{{missing[0]}}} is missing")

    @property
    def judge_template(self) -> str:
        """What the pairwise judge is asked: the gate's template, else the default."""
        return self.prompt_template or DEFAULT_PAIRWISE_TEMPLATE


def gate_of(stored: Mapping[str, Any] | None) -> Gate:
    """A job's recorded gate (Job.gate) as its schema, the defaults when none; raises msgspec.ValidationError."""
    return msgspec.convert(dict(stored or {}), Gate)


def is_short_answer(reference: str) -> bool:
    text = reference.strip()
    return len(text) <= SHORT_ANSWER_CHARACTERS and _words(text) <= SHORT_ANSWER_WORDS


def _words(text: str) -> int:
    """Words between spaces, each wide (East Asian) character counted as one: such text has no spaces."""
    wide = [unicodedata.east_asian_width(character) in ("W", "F") for character in text]
    spaced = "".join(" " if is_wide else character for character, is_wide in zip(text, wide, strict=True))
    return sum(wide) + len(spaced.split())


def resolve_metric(gate: Gate, references: Iterable[str]) -> ScoredMetric:
    """The metric the gate scores with: its own, or for `auto` exact match when every held-out reference answer
    is short (and there is at least one), else the pairwise judge."""
    if gate.metric != "auto":
        return gate.metric
    seen = False
    for reference in references:
        if not is_short_answer(reference):
            return "pairwise"
        seen = True
    return "exact_match" if seen else "pairwise"
