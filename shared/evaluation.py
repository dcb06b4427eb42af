"""Evaluation during tuning: what a manifest's `evaluation` key may say, and naming the results Vertex AI gives.

    evaluation:
      metrics:
        - name: fluency                   # Tunedrop's name for the results (Vertex AI's Metric has none)
          prompt_template: "Rate the fluency of {response} from 1 to 5."    # kind pointwise, the default
        - {name: exact, kind: exact_match}
        - {name: overlap, kind: rouge, rouge_type: rougeL, aggregations: [average, median]}
      autorater: {sampling_count: 4, model: gemini-2.5-flash}

Vertex AI runs it (Preview) against the validation dataset and writes results under the job's
`reports/<team>/<job_id>/evaluation/`. What Google documents (each read 2026-11-30):

* EvaluationConfig (aiplatform_v1 2.7, https://docs.cloud.google.com/gemini-enterprise-agent-platform/reference/
  rest/v1/projects.locations.tuningJobs): `metrics` and `output_config` Required, `autorater_config` Optional;
  AutoraterConfig.sampling_count "Minimum value is 1, maximum value is 32" (default 4); `flip_enabled` applies to
  pairwise metrics only.
* The supervised-tuning page (https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/tuning/
  supervised-tuning/use): "(Preview) ... This evaluation configuration is available in the us-central1 region."
  The checkpoints page (https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/tuning/
  checkpoints.md.txt) says it runs after each checkpoint; the supervised-tuning page says after the job completes.
  Both are read here: results come per checkpoint, or once with no checkpoint id.
* Every Google example that evaluates also gives a validation dataset; none says it is optional, so Tunedrop
  requires one (the stricter reading).
* RougeSpec.rouge_type: "Supported values: rougen[1-9], rougeL, and rougeLsum" (aiplatform_v1 2.7 docstring).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

EVALUATION_REGIONS: Final = frozenset({"us-central1"})
# Sent when a metric names none, so results can be matched to metrics whatever the service's own default is.
DEFAULT_AGGREGATIONS: Final = ("average", "standard_deviation")
MAX_METRICS: Final = 20
MIN_SAMPLING_COUNT: Final = 1
MAX_SAMPLING_COUNT: Final = 32
PROMPTED_KINDS: Final = frozenset({"pointwise", "pairwise"})

MetricKind = Literal["pointwise", "pairwise", "exact_match", "bleu", "rouge"]
# Metric.AggregationMetric's values, lowercase (AGGREGATION_METRIC_UNSPECIFIED is no choice).
AggregationName = Literal[
    "average",
    "mode",
    "standard_deviation",
    "variance",
    "minimum",
    "maximum",
    "median",
    "percentile_p90",
    "percentile_p95",
    "percentile_p99",
]
MetricName = Annotated[str, Meta(pattern=r"\A[a-z][a-z0-9_]{0,62}\Z")]
PromptTemplate = Annotated[str, Meta(min_length=1, max_length=20_000, pattern=r"\A[^\x00-\x08\x0b-\x1f\x7f]*\Z")]
RougeType = Annotated[str, Meta(pattern=r"\Arouge([1-9]|L|Lsum)\Z")]
# A Google model an autorater may be: its id, as on the model garden (the region and project are the job's).
AutoraterModel = Annotated[str, Meta(pattern=r"\A[a-z][a-z0-9.-]{0,127}\Z")]
SamplingCount = Annotated[int, Meta(ge=MIN_SAMPLING_COUNT, le=MAX_SAMPLING_COUNT)]


class EvaluationMetric(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    name: MetricName
    kind: MetricKind = "pointwise"
    prompt_template: PromptTemplate | None = None  # pointwise and pairwise: what the autorater is asked
    system_instruction: PromptTemplate | None = None
    rouge_type: RougeType | None = None
    use_stemmer: bool | None = None
    split_summaries: bool | None = None
    use_effective_order: bool | None = None  # bleu
    aggregations: Annotated[list[AggregationName], Meta(min_length=1, max_length=10)] | None = None

    def __post_init__(self) -> None:
        # A ValueError here is a msgspec.ValidationError to whoever converts: one message, one place.
        prompted = self.kind in PROMPTED_KINDS
        if prompted and self.prompt_template is None:
            raise ValueError(f"metric {self.name}: a {self.kind} metric needs a prompt_template")
        if not prompted and (self.prompt_template is not None or self.system_instruction is not None):
            raise ValueError(f"metric {self.name}: prompt_template and system_instruction are for pointwise, pairwise")
        if self.kind != "rouge" and (self.rouge_type, self.use_stemmer, self.split_summaries) != (None, None, None):
            raise ValueError(f"metric {self.name}: rouge_type, use_stemmer and split_summaries are for rouge")
        if self.kind != "bleu" and self.use_effective_order is not None:
            raise ValueError(f"metric {self.name}: use_effective_order is for bleu")
        if self.aggregations is not None and len(set(self.aggregations)) != len(self.aggregations):
            raise ValueError(f"metric {self.name}: an aggregation is named twice")

    @property
    def aggregation_names(self) -> tuple[str, ...]:
        return tuple(self.aggregations or DEFAULT_AGGREGATIONS)


class Autorater(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    sampling_count: SamplingCount | None = None  # None: Vertex AI's default (4)
    flip_enabled: bool | None = None  # pairwise only; None: Vertex AI's default (true)
    model: AutoraterModel | None = None  # None: Vertex AI's default judge


class Evaluation(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    metrics: Annotated[list[EvaluationMetric], Meta(min_length=1, max_length=MAX_METRICS)]
    autorater: Autorater | None = None

    def __post_init__(self) -> None:
        names = [metric.name for metric in self.metrics]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"metric names must differ: {', '.join(repeated)} is used twice")


def evaluation_asked(stored: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a job's recorded evaluation (Job.evaluation) asked for, without where its results went."""
    if stored is None:
        return None
    return {key: value for key, value in stored.items() if key != "output_uri_prefix"}


def evaluation_of(stored: Mapping[str, Any]) -> Evaluation:
    """A job's recorded evaluation (Job.evaluation) as its schema; raises msgspec.ValidationError if malformed."""
    return msgspec.convert(evaluation_asked(stored), Evaluation)


def named_results(runs: Sequence[Mapping[str, Any]], stored: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The evaluation runs with each metric result named after the manifest's metric.

    Vertex AI's results carry the metric's kind and aggregation but not which metric of the config they belong
    to; they come one per metric and aggregation, in the config's order (as Tunedrop sends every aggregation
    explicitly, the count is known). A run whose results do not line up is left unnamed rather than misnamed."""
    try:
        asked = evaluation_of(stored).metrics if stored else []
    except msgspec.ValidationError:
        asked = []  # recorded by an older release in another shape: the results stay as Vertex AI gave them
    if not asked:
        return [dict(run) for run in runs]
    expected = [(metric.name, metric.kind, aggregation) for metric in asked for aggregation in metric.aggregation_names]
    return [_named_run(run, expected) for run in runs]


def _named_run(run: Mapping[str, Any], expected: Iterable[tuple[str, str, str]]) -> dict[str, Any]:
    out = dict(run)
    results = list(run.get("metrics", []))
    slots = list(expected)
    lined_up = len(results) == len(slots) and all(
        result.get("metric") == kind and str(result.get("aggregation", "")).lower() == aggregation
        for result, (_, kind, aggregation) in zip(results, slots, strict=True)
    )
    if lined_up:
        out["metrics"] = [{**result, "name": name} for result, (name, _, _) in zip(results, slots, strict=True)]
    return out
