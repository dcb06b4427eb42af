"""The evaluation gate (issue 15): whether a tuned model beats the one in use, decided on held-out examples.

Pure: no I/O and no clients. schema.py is the manifest's `gate`, stats.py the seeded bootstrap, verdict.py the
verdict and its reasons, cost.py the estimate held to a cap. The README's "The evaluation gate: statistics" says
the same for people.
"""

from shared.gate.cost import (
    FALLBACK_PRICE,
    INFERENCE_PRICES,
    JUDGE_SAMPLES,
    EvaluationPrices,
    InferencePrice,
    cost_cap,
    estimate,
    evaluation_prices,
    inference_price,
    over_cap_reason,
)
from shared.gate.schema import (
    DEFAULT_PAIRWISE_TEMPLATE,
    SHORT_ANSWER_CHARACTERS,
    SHORT_ANSWER_WORDS,
    Gate,
    GateMetric,
    ScoredMetric,
    gate_of,
    is_short_answer,
    resolve_metric,
)
from shared.gate.stats import DEFAULT_RESAMPLES, MarginInterval, paired_margin_interval, quantile
from shared.gate.verdict import GateSummary, Verdict, decide, not_evaluated, pairwise_scores

__all__ = [
    "DEFAULT_PAIRWISE_TEMPLATE",
    "DEFAULT_RESAMPLES",
    "FALLBACK_PRICE",
    "INFERENCE_PRICES",
    "JUDGE_SAMPLES",
    "SHORT_ANSWER_CHARACTERS",
    "SHORT_ANSWER_WORDS",
    "EvaluationPrices",
    "Gate",
    "GateMetric",
    "GateSummary",
    "InferencePrice",
    "MarginInterval",
    "ScoredMetric",
    "Verdict",
    "cost_cap",
    "decide",
    "estimate",
    "evaluation_prices",
    "gate_of",
    "inference_price",
    "is_short_answer",
    "not_evaluated",
    "over_cap_reason",
    "paired_margin_interval",
    "pairwise_scores",
    "quantile",
    "resolve_metric",
]
