"""What an evaluation will cost, estimated before it runs and held to a cap.

An evaluation of n held-out examples makes, per example, two generations (PredictionService.GenerateContent: the
candidate's answer and the baseline's) and scores the pair (EvaluationService.EvaluateInstances). For exact_match,
bleu and rouge the scoring is computed, not generated: no model tokens. For pairwise a judge model reads the prompt,
the reference and both answers and writes its choice with an explanation, and it does so JUDGE_SAMPLES times per
example: AutoraterConfig.sampling_count "If not specified, the default is 4" (aiplatform_v1 2.7 docstring, read
2026-11-30), and the Judge port sets none. So, in USD:

    n x [ prompt x (candidate input + baseline input) + answer x (candidate output + baseline output) ] / 1e6
  + pairwise only: n x JUDGE_SAMPLES x [ (template + prompt + 3 x answer) x judge input
                                         + JUDGE_OUTPUT_TOKENS x judge output ] / 1e6

with prices per million tokens, the answers taken as long as the reference answers (the only length known before
generating: pass the mean of the held-out answers' tokens, thinking tokens included for a model that thinks), and the
judge's template counted at about 4 characters a token (the validator's rule of thumb).

Prices (INFERENCE_PRICES, standard pay-as-you-go text, prompts up to 200,000 tokens):

* Vertex AI's own price page (https://cloud.google.com/vertex-ai/generative-ai/pricing, now the Gemini Enterprise
  Agent Platform's) is in none of the copies the search tool holds: searched 2026-11-30, not found.
* GEMINI_API: the Gemini Developer API's price page (https://ai.google.dev/gemini-api/docs/pricing) as transcribed
  on 2026-09-20 in github.com/api-evangelist/gemini plans/gemini-plans-pricing.yml, read 2026-11-30. Vertex AI's
  standard prices for these models have matched the Developer API's paid tier; that is assumed, not confirmed.
* THIRD_PARTY: figures only third-party pages give (each named in the table), read 2026-11-30. Where two pages
  disagree, the higher figure is kept.
* A model with no price found (gemini-3.5-flash-lite, the 1.x models, an unknown name, and the judge: the page that
  names Vertex AI's default judge, .../docs/models/evaluate-judge-model?hl=ko read 2026-11-30, names Gemini 2.0 Flash,
  which retired on 2026-06-01, so today's default judge is not documented in what could be read) is priced at
  FALLBACK_PRICE: the highest known input price and the highest known output price, the stricter reading.
* A tuned model is priced as its base model: no page read gives tuned-model inference a price of its own.
* EvaluateInstances' own charge for computed metrics: no price found; counted as 0. Re-check all of this before
  relying on an estimate, and correct the table: it is data.

An estimate over the cap means the evaluation does not run at all (no model is called) and the verdict is
inconclusive with the reason (`over_cap_reason`). The cap is the operators' (TUNEDROP_EVALUATION_MAX_COST_USD), or a
lower one of the team's policy or the gate's own `max_cost_usd` (`cost_cap`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final, NamedTuple

from shared.gate.schema import DEFAULT_PAIRWISE_TEMPLATE, SCORED_METRICS, Gate, ScoredMetric

JUDGE_SAMPLES: Final = 4
JUDGE_OUTPUT_TOKENS: Final = 256  # the choice and a short paragraph of explanation, per sample (an assumption)
CHARACTERS_PER_TOKEN: Final = 4.0
TOKENS_PER_PRICE_UNIT: Final = 1_000_000

GEMINI_API: Final = (
    "https://ai.google.dev/gemini-api/docs/pricing (paid tier, standard), as transcribed 2026-09-20 in "
    "github.com/api-evangelist/gemini plans/gemini-plans-pricing.yml; read 2026-11-30"
)
THIRD_PARTY: Final = "third-party page, read 2026-11-30 (Vertex AI's price page could not be read)"
_PUBLISHER_PREFIX: Final = "publishers/google/models/"


class InferencePrice(NamedTuple):
    input_per_million_usd: float
    output_per_million_usd: float
    source: str


INFERENCE_PRICES: Final[Mapping[str, InferencePrice]] = {
    "gemini-3.5-flash": InferencePrice(1.50, 9.00, GEMINI_API),
    "gemini-3.1-flash-lite": InferencePrice(
        0.25, 1.50, f"{THIRD_PARTY}: cloudprice.net/models/vertex_ai/gemini-3.1-flash-lite-preview, algeriatech.news"
    ),
    "gemini-2.5-pro": InferencePrice(
        1.25, 10.00, f"input {GEMINI_API}; output {THIRD_PARTY}: deploybase.ai, tokenmix.ai (both $10)"
    ),
    "gemini-2.5-flash": InferencePrice(
        0.30, 2.50, f"input {GEMINI_API}; output {THIRD_PARTY}: deploybase.ai ($2.50; tokenmix.ai's $0.60 is lower)"
    ),
    "gemini-2.5-flash-lite": InferencePrice(0.10, 0.40, f"output {GEMINI_API}; input {THIRD_PARTY}: algeriatech.news"),
    "gemini-2.0-flash-001": InferencePrice(
        0.10, 0.40, f"{THIRD_PARTY}: github.com/simonw/llm-prices data/google.json (theneuralbase.com's is lower)"
    ),
    "gemini-2.0-flash-lite-001": InferencePrice(0.075, 0.30, f"{THIRD_PARTY}: github.com/simonw/llm-prices"),
}

FALLBACK_PRICE: Final = InferencePrice(
    max(price.input_per_million_usd for price in INFERENCE_PRICES.values()),
    max(price.output_per_million_usd for price in INFERENCE_PRICES.values()),
    "no price found for this model: the highest known input and output prices",
)


class EvaluationPrices(NamedTuple):
    candidate: InferencePrice
    baseline: InferencePrice
    judge: InferencePrice = FALLBACK_PRICE


def inference_price(model: str) -> InferencePrice:
    """The price of a model given by id (gemini-3.5-flash) or publisher resource name (.../publishers/google/models/
    ID[@version]); for a tuned model pass its base model. No price known: FALLBACK_PRICE."""
    key = model.strip()
    if _PUBLISHER_PREFIX in key:
        key = key.split(_PUBLISHER_PREFIX, 1)[1]
    return INFERENCE_PRICES.get(key.split("@", 1)[0].lower(), FALLBACK_PRICE)


def evaluation_prices(candidate_base: str, baseline_base: str, judge: str | None = None) -> EvaluationPrices:
    """Prices of an evaluation: the candidate's and the baseline's base models, and the judge (None: Vertex AI's
    default judge, whose price is not known)."""
    judge_price = FALLBACK_PRICE if judge is None else inference_price(judge)
    return EvaluationPrices(inference_price(candidate_base), inference_price(baseline_base), judge_price)


def estimate(
    examples: int,
    mean_prompt_tokens: float,
    mean_answer_tokens: float,
    metric: ScoredMetric,
    prices: EvaluationPrices,
    *,
    judge_template: str = DEFAULT_PAIRWISE_TEMPLATE,
) -> float:
    """The estimated cost in USD of evaluating `examples` held-out examples (see the module's formula)."""
    if metric not in SCORED_METRICS:
        raise ValueError(f"estimate the metric the gate resolved to (exact_match, bleu, rouge, pairwise), not {metric}")
    if examples < 0 or mean_prompt_tokens < 0 or mean_answer_tokens < 0:
        raise ValueError("examples and token counts cannot be negative")
    generation = _tokens_cost(mean_prompt_tokens, mean_answer_tokens, prices.candidate) + _tokens_cost(
        mean_prompt_tokens, mean_answer_tokens, prices.baseline
    )
    judging = 0.0
    if metric == "pairwise":
        template_tokens = math.ceil(len(judge_template) / CHARACTERS_PER_TOKEN)
        judge_reads = template_tokens + mean_prompt_tokens + 3 * mean_answer_tokens  # reference and both answers
        judging = JUDGE_SAMPLES * _tokens_cost(judge_reads, JUDGE_OUTPUT_TOKENS, prices.judge)
    return examples * (generation + judging)


def _tokens_cost(input_tokens: float, output_tokens: float, price: InferencePrice) -> float:
    return (
        input_tokens * price.input_per_million_usd + output_tokens * price.output_per_million_usd
    ) / TOKENS_PER_PRICE_UNIT


def cost_cap(gate: Gate, operators_cap: float, team_cap: float | None = None) -> float:
    """The cap an evaluation is held to: the lowest of the operators', the team policy's and the gate's own."""
    caps = [operators_cap] + [cap for cap in (team_cap, gate.max_cost_usd) if cap is not None]
    return min(caps)


def over_cap_reason(estimated_usd: float, cap_usd: float) -> str | None:
    """Why the evaluation does not run when the estimate is over the cap (None: it may run)."""
    if estimated_usd <= cap_usd:
        return None
    return (
        f"the evaluation would cost about ${estimated_usd:.2f} (estimated before calling any model), over the cap of "
        f"${cap_usd:.2f}: it did not run, so nothing shows the candidate is better"
    )
