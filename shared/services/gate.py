"""The evaluation gate: after a job with promote_as SUCCEEDS, judge its tuned model against the alias's champion (or
the base model) on the held-out evaluation dataset, and promote it only when it is better by the gate's margin.

One delivery of the evaluate topic ({"job_id": ...}) runs `GateKeeper.evaluate`. Every step is idempotent, so a
delivery may be repeated, late, or cut short by a crash:

1. The held-out examples are read from Tunedrop's copy of what was validated (never the user's object).
2. The cost is estimated before any model is called; over the cap the verdict is inconclusive and no model is
   called at all.
3. Answers and scores are computed a chunk of examples at a time, and each chunk is written under the job's reports
   folder before the next: a redelivery after a crash reads the chunks done and goes on from there. The chunks are
   keyed by the baseline judged against, so a champion that changed meanwhile is judged afresh.
4. The verdict goes on the job, then the alias moves (compare-and-set, only from the champion judged against), then
   one event is published (promoted, held or candidate_ready) with a ce-id stable per job, attempt and verdict, and
   its id is recorded: a repeat finds it recorded and does nothing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from shared import logs
from shared.aliases import Alias, Champion
from shared.clock import Clock
from shared.config import Settings
from shared.errors import TransientError
from shared.evaluation import named_results
from shared.events import model_event
from shared.gate import (
    EvaluationPrices,
    Gate,
    GateSummary,
    ScoredMetric,
    cost_cap,
    decide,
    estimate,
    evaluation_prices,
    gate_of,
    not_evaluated,
    over_cap_reason,
    pairwise_scores,
    resolve_metric,
)
from shared.jobs import Job, JobState
from shared.ports import (
    BlobStore,
    Generated,
    JobStore,
    Judge,
    ModelAnswers,
    ObjectMissing,
    Publisher,
    TuningRejected,
)
from shared.report_html import render_report

CHUNK: Final = 20  # examples judged and written at a time: what a crash can cost again
CHARACTERS_PER_TOKEN: Final = 4  # for the estimate before any call; the calls then report exact counts
MAX_ALIAS_ATTEMPTS: Final = 5  # compare-and-set rounds on an alias document before the delivery is retried
# How long one delivery judges before it asks for the rest in a new delivery (its chunks are kept): under the
# evaluate function's 540 s timeout (deploy/terraform), so a long evaluation never ends as a failed delivery.
DELIVERY_SECONDS: Final = 420.0


class _MoreToDo(Exception):
    """This delivery used its time: the rest is judged by the next one, from the chunks written."""


class _Overspent(Exception):
    """What the evaluation used so far is over its cost cap: it stops before the next chunk."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class HeldOut:
    """One held-out example: what the model is asked, and the answer it should give."""

    contents: list[dict[str, Any]]
    system_instruction: dict[str, Any] | None
    prompt: str  # the last user turn's text, for people and the pairwise judge
    reference: str


@dataclass(frozen=True)
class Contest:
    """Who is judged against whom."""

    candidate_model: str  # the tuned model's endpoint (or its best checkpoint's)
    checkpoint_id: str
    baseline_model: str  # the champion's endpoint, or the base model's publisher name
    baseline_job: str  # the champion's job id; "" for the base model
    baseline_base_model: str

    @property
    def baseline_name(self) -> str:
        return f"the champion (job {self.baseline_job})" if self.baseline_job else "the base model"

    @property
    def key(self) -> str:
        return self.baseline_job or "base"


class GateKeeper:
    def __init__(
        self,
        store: JobStore,
        blobs: BlobStore,
        answers: ModelAnswers,
        judge: Judge,
        publisher: Publisher,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._answers = answers
        self._judge = judge
        self._publisher = publisher
        self._settings = settings
        self._clock = clock
        self._delivery_seconds = DELIVERY_SECONDS

    # ------------------------------------------------------------------------------------------ the delivery

    def evaluate(self, job_id: str) -> str:
        """Judge the job and act on the verdict; returns what happened (for the log)."""
        current = self._store.get(job_id)
        if current is None:
            return "no such job"
        job = current.value
        if job.state is not JobState.SUCCEEDED or not job.promote_as:
            return "nothing to judge"
        if job.gate_event_id:
            return "judged already"
        with logs.log_context(job_id=job_id):
            alias = self._store.read_alias(job.promote_as)
            contest = self._contest(job, alias.value if alias else None)
            try:
                summary = self._judged(job, contest)
            except _MoreToDo:
                request = json.dumps({"job_id": job_id}).encode()
                self._publisher.publish(self._settings.evaluate_topic, request, {"job_id": job_id})
                logs.info("gate evaluation continues in a new delivery", seconds=DELIVERY_SECONDS)
                return "continuing"
            outcome = self._act(job, contest, summary)
            logs.info("gate verdict", alias=job.promote_as, verdict=summary["verdict"], outcome=outcome)
            return outcome

    def _judged(self, job: Job, contest: Contest) -> dict[str, Any]:
        """The job's verdict against this contest: recorded already, or computed and recorded now."""
        recorded = job.verdict
        if recorded is not None and recorded.get("baseline_job", "") == contest.baseline_job:
            return recorded
        summary = self._judge_now(job, contest)

        def first_wins(latest: Job) -> Job | None:
            # Two deliveries judging at once may disagree (a model's answers vary): the verdict stored first is
            # the one both act on, so the job never gets a promoted and a held event.
            stored = latest.verdict
            if stored is not None and stored.get("baseline_job", "") == contest.baseline_job:
                return None
            return latest.with_fields(verdict=summary)

        updated = self._store.update(job.job_id, first_wins)
        stored = updated.job.verdict if updated is not None else None
        return stored if stored is not None else summary

    # ------------------------------------------------------------------------------------------ who against whom

    def _contest(self, job: Job, alias: Alias | None) -> Contest:
        # Another team's alias (taken after this job's upload was checked) is no champion of this job's.
        champion = alias.champion if alias is not None and alias.team == self._team(job) else None
        if champion is not None and champion.job_id == job.job_id:
            # Promoted already by an earlier delivery that stopped before its event: judge as it did.
            champion = alias.history[-1] if alias is not None and alias.history else None
        candidate, checkpoint = _candidate(job)
        if champion is not None:
            return Contest(candidate, checkpoint, champion.endpoint, champion.job_id, champion.base_model)
        base = f"projects/{self._settings.project}/locations/{self._settings.region}/publishers/google/models/"
        return Contest(candidate, checkpoint, base + job.base_model, "", job.base_model)

    # ------------------------------------------------------------------------------------------ the judging

    def _judge_now(self, job: Job, contest: Contest) -> dict[str, Any]:
        gate = gate_of(job.gate)
        examples = self._held_out(job)
        metric = resolve_metric(gate, (example.reference for example in examples))
        estimated = _estimate(examples, metric, job, contest, gate)
        team = self._settings.team_policies.for_team(job.team or self._settings.default_team)
        cap = cost_cap(gate, self._settings.evaluation_max_cost_usd, team.evaluation_max_cost_usd)
        refusal = over_cap_reason(estimated, cap)
        extra = {
            "baseline_job": contest.baseline_job,
            "baseline_model": contest.baseline_model,
            "candidate_model": contest.candidate_model,
            "checkpoint_id": contest.checkpoint_id,
            "estimated_cost_usd": round(estimated, 6),
            "cost_cap_usd": cap,
        }
        if refusal is not None:
            logs.warning("gate evaluation over its cost cap: no model called", estimated_usd=estimated, cap_usd=cap)
            return {**_plain(not_evaluated(gate, metric, refusal)), **extra, "calls": 0}
        started = time.perf_counter()
        prices = evaluation_prices(job.base_model, contest.baseline_base_model or job.base_model)
        rows: list[dict[str, Any]] = []
        try:
            # One pool of model calls for the whole evaluation (threads are not started again for every chunk).
            with ThreadPoolExecutor(max_workers=self._settings.evaluation_concurrency) as pool:
                rows = self._all_rows(job, contest, examples, metric, gate, pool, prices, cap)
        except _Overspent as stop:  # the estimate is no bound on what the models write: stopped before the next chunk
            logs.warning("gate evaluation stopped at its cost cap", reason=stop.reason)
            return {**_plain(not_evaluated(gate, metric, stop.reason)), **extra}
        except TuningRejected as exc:  # refused for good (a held-out example, a model, a permission): held, said why
            logs.warning("gate evaluation refused by Vertex AI", error=str(exc))
            return {**_plain(not_evaluated(gate, metric, f"the evaluation could not run: {exc}")), **extra}
        seconds = time.perf_counter() - started
        candidate = [row["candidate_score"] for row in rows]
        baseline = [row["baseline_score"] for row in rows]
        summary = decide(gate, candidate, baseline, job.job_id, metric=metric, baseline_name=contest.baseline_name)
        results_uri = self._write(job, "evaluation.jsonl", "".join(json.dumps(r) + "\n" for r in rows), "jsonl")
        usage = {
            "calls": sum(row["calls"] for row in rows),
            "prompt_tokens": sum(row["prompt_tokens"] for row in rows),
            "output_tokens": sum(row["output_tokens"] for row in rows),
            "seconds": round(seconds, 3),
        }
        verdict = {**_plain(summary), **extra, **usage, "results_uri": results_uri}
        report = render_report(
            job.with_fields(verdict=verdict),
            rows,
            [_tokens(example.prompt) for example in examples],
        )
        verdict["report_uri"] = self._write(job, "report.html", report, "html")
        return verdict

    def _held_out(self, job: Job) -> list[HeldOut]:
        # Tunedrop's copy (its name holds the generation validated), else the generation validated.
        uri = job.tuning_evaluation_uri or job.evaluation_uri
        generation = None if job.tuning_evaluation_uri else job.evaluation_generation or None
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        most = self._settings.evaluation_max_examples
        examples: list[HeldOut] = []
        try:
            with self._blobs.open(bucket, name, generation) as reader:
                for raw in reader:  # line by line: only the first ones judged are kept in memory
                    example = _held_out_example(raw.decode("utf-8", errors="replace"))
                    if example is not None:
                        examples.append(example)
                    if len(examples) >= most:
                        break
        except ObjectMissing as exc:
            raise TransientError(f"the held-out dataset {uri} cannot be read: {exc}") from exc
        return examples

    def _all_rows(
        self,
        job: Job,
        contest: Contest,
        examples: Sequence[HeldOut],
        metric: str,
        gate: Gate,
        pool: ThreadPoolExecutor,
        prices: EvaluationPrices,
        cap: float,
    ) -> list[dict[str, Any]]:
        """Every example's row; raises _Overspent when what was used so far is over the cap (checked per chunk)."""
        rows: list[dict[str, Any]] = []
        started = last = time.monotonic()
        slowest = 0.0  # the longest chunk judged here: the next one may take as long, so it must fit in the budget
        judged_here = False  # chunks read back cost no time: only a delivery that judged one may hand over
        for row, fresh in self._rows(job, contest, examples, metric, gate, pool):  # a chunk is asked for when reached
            rows.append(row)
            judged_here = judged_here or fresh
            more = len(rows) < len(examples)
            if not more or len(rows) % CHUNK:
                continue
            overspent = _overspent(rows, prices, cap)
            if overspent:
                raise _Overspent(overspent)
            now = time.monotonic()
            slowest, last = (max(slowest, now - last) if fresh else slowest), now
            if judged_here and now - started + slowest > self._delivery_seconds:
                raise _MoreToDo
        return rows

    def _rows(
        self, job: Job, contest: Contest, examples: Sequence[HeldOut], metric: str, gate: Gate, pool: ThreadPoolExecutor
    ) -> Iterator[tuple[dict[str, Any], bool]]:
        """Every example's answers and scores, a chunk at a time, each with whether this delivery judged it (True)
        or read it back from an earlier delivery's chunk (False)."""
        folder = f"{self._stem(job)}/evaluation-parts/{job.attempt}-{contest.key}-{metric}"
        for start in range(0, len(examples), CHUNK):
            name = f"{folder}/{start // CHUNK:05d}.jsonl"
            done = self._read_chunk(name)
            fresh = done is None
            if done is None:
                done = self._judge_chunk(examples[start : start + CHUNK], contest, metric, gate, pool)
                body = "".join(json.dumps(row) + "\n" for row in done).encode()
                self._blobs.write(self._settings.bucket, name, body, "application/x-ndjson")
            for row in done:
                yield row, fresh

    def _read_chunk(self, name: str) -> list[dict[str, Any]] | None:
        try:
            with self._blobs.open(self._settings.bucket, name) as reader:
                return [json.loads(line) for line in reader.read().decode("utf-8").splitlines() if line.strip()]
        except ObjectMissing:
            return None

    def _judge_chunk(
        self, examples: Sequence[HeldOut], contest: Contest, metric: str, gate: Gate, pool: ThreadPoolExecutor
    ) -> list[dict[str, Any]]:
        def answer(pair: tuple[HeldOut, str]) -> Generated:
            example, model = pair
            return self._answers.generate(model, example.contents, example.system_instruction)

        asks = [(example, model) for example in examples for model in (contest.candidate_model, contest.baseline_model)]
        answered = list(pool.map(answer, asks))
        candidates, baselines = answered[0::2], answered[1::2]
        candidate_scores, baseline_scores, judge_calls = self._scores(
            examples, candidates, baselines, metric, gate, pool
        )
        return [
            {
                "prompt": example.prompt,
                "reference": example.reference,
                "candidate": candidate.text,
                "baseline": baseline.text,
                "candidate_score": candidate_score,
                "baseline_score": baseline_score,
                "calls": 2 + judge_calls,
                "prompt_tokens": candidate.prompt_tokens + baseline.prompt_tokens,
                "output_tokens": candidate.output_tokens + baseline.output_tokens,
            }
            for example, candidate, baseline, candidate_score, baseline_score in zip(
                examples, candidates, baselines, candidate_scores, baseline_scores, strict=True
            )
        ]

    def _scores(
        self,
        examples: Sequence[HeldOut],
        candidates: Sequence[Generated],
        baselines: Sequence[Generated],
        metric: str,
        gate: Gate,
        pool: ThreadPoolExecutor,
    ) -> tuple[list[float], list[float], float]:
        """(candidate scores, baseline scores, judge calls per example)."""
        if metric == "pairwise":
            # One judge call per example: at the same bounded concurrency as the answers.
            def compare(trio: tuple[HeldOut, Generated, Generated]) -> float:
                example, candidate, baseline = trio
                return self._judge.compare(
                    example.prompt, candidate.text, baseline.text, example.reference, gate.judge_template
                )

            choices = list(pool.map(compare, zip(examples, candidates, baselines, strict=True)))
            candidate, baseline = pairwise_scores(choices)
            return candidate, baseline, 1.0
        candidate = self._judge.score(
            metric, [(c.text, e.reference) for e, c in zip(examples, candidates, strict=True)]
        )
        baseline = self._judge.score(metric, [(b.text, e.reference) for e, b in zip(examples, baselines, strict=True)])
        return candidate, baseline, 2.0 / max(1, len(examples))  # two batched calls per chunk

    # ------------------------------------------------------------------------------------------ the verdict acted on

    def _act(self, job: Job, contest: Contest, summary: Mapping[str, Any]) -> str:
        gate = gate_of(job.gate)
        if gate.manual:
            kind = "candidate_ready"
        elif summary["verdict"] == "better":
            refused = self._promote(job, contest)
            kind = "held" if refused else "promoted"
            summary = {**summary, "reason": refused} if refused else summary
        else:
            kind = "held"
        found = self._store.read_alias(job.promote_as)
        alias = found.value if found is not None and found.value.team == self._team(job) else None
        # The job's team named as the alias names it (a default-team job records "").
        named = job.with_fields(team=self._team(job))
        event = model_event(named, kind, summary, alias, project=self._settings.project, now=self._clock())
        self._publisher.publish(self._settings.completions_topic, event.data, event.attributes)
        event_id = event.attributes["ce-id"]
        self._store.update(job.job_id, lambda latest: latest.with_fields(gate_event_id=event_id))
        logs.info("model event published", ce_id=event_id, ce_type=event.attributes["ce-type"])
        return kind

    def _promote(self, job: Job, contest: Contest) -> str:
        """Move the alias to the job's model, only from the champion it was judged against; the reason it may not
        ("" when moved): the alias is another team's, or an operator rolled it back from this job."""
        champion = Champion(
            job_id=job.job_id,
            tuned_model=job.tuned_model,
            endpoint=contest.candidate_model,
            promoted_at=self._clock(),
            checkpoint_id=contest.checkpoint_id,
            base_model=job.base_model,
            reason=f"the evaluation gate: better than {contest.baseline_name}",
        )
        team = self._team(job)
        for _ in range(MAX_ALIAS_ATTEMPTS):
            found = self._store.read_alias(job.promote_as)
            alias = found.value if found is not None else Alias(job.promote_as, team)
            if alias.team != team:
                return f"alias {job.promote_as} is team {alias.team}'s, and this job is team {team}'s: not moved"
            if alias.champion is not None and alias.champion.job_id == job.job_id:
                return ""  # moved by an earlier delivery
            if job.job_id in alias.retired:
                # Promoted by an earlier delivery that died before its event, then rolled back by an operator:
                # a redelivery must not undo the operator's rollback.
                return (
                    f"an operator rolled alias {job.promote_as} back from this job: the gate does not promote it again"
                )
            judged_against = alias.champion.job_id if alias.champion is not None else ""
            if judged_against != contest.baseline_job:
                raise TransientError(
                    f"alias {job.promote_as} moved to job {judged_against or '(none)'} while this job was judged "
                    f"against {contest.baseline_name}: judging again"
                )
            if self._store.write_alias(alias.promoted(champion), found.version if found is not None else None):
                logs.info("alias promoted", alias=job.promote_as, champion=job.job_id)
                return ""
        raise TransientError(f"alias {job.promote_as} kept changing; the delivery is retried")

    # ------------------------------------------------------------------------------------------ files

    def _team(self, job: Job) -> str:
        return job.team or self._settings.default_team

    def _stem(self, job: Job) -> str:
        return f"{self._settings.reports_prefix}{self._team(job)}/{job.job_id}"

    def _write(self, job: Job, leaf: str, text: str, kind: str) -> str:
        content_type = {"jsonl": "application/x-ndjson", "html": "text/html; charset=utf-8"}[kind]
        return self._blobs.write(self._settings.bucket, f"{self._stem(job)}/{leaf}", text.encode(), content_type)


# ---------------------------------------------------------------------------------------------- helpers


def _plain(summary: GateSummary) -> dict[str, Any]:
    plain: dict[str, Any] = msgspec.to_builtins(summary)
    return plain


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARACTERS_PER_TOKEN))


def _estimate(examples: Sequence[HeldOut], metric: ScoredMetric, job: Job, contest: Contest, gate: Gate) -> float:
    if not examples:
        return 0.0
    prompt = sum(_tokens(json.dumps(e.contents)) for e in examples) / len(examples)
    answer = sum(_tokens(e.reference) for e in examples) / len(examples)
    prices = evaluation_prices(job.base_model, contest.baseline_base_model or job.base_model)
    return estimate(len(examples), prompt, answer, metric, prices, judge_template=gate.judge_template)


def _overspent(rows: Sequence[Mapping[str, Any]], prices: EvaluationPrices, cap: float) -> str:
    """Why the evaluation stops ("" when it goes on): what both models' answers cost so far (their exact token
    counts, at the dearer model's prices; the pairwise judge's part is not counted) is over the cap."""
    dearer = max(prices.candidate, prices.baseline, key=lambda price: price.output_per_million_usd)
    prompt, output = (sum(int(row[key]) for row in rows) for key in ("prompt_tokens", "output_tokens"))
    spent = (prompt * dearer.input_per_million_usd + output * dearer.output_per_million_usd) / 1_000_000
    if spent <= cap:
        return ""
    return (
        f"the evaluation stopped after {len(rows)} examples: the answers so far cost about ${spent:.2f}, over the cap "
        f"of ${cap:.2f} (the models wrote more than estimated), so nothing shows the candidate is better"
    )


def _candidate(job: Job) -> tuple[str, str]:
    """(endpoint, checkpoint id) of the candidate: the best checkpoint by evaluation during tuning, when it ranked
    them (the first metric's average), else the tuned model's default endpoint."""
    endpoints = {str(c.get("checkpoint_id")): str(c.get("endpoint", "")) for c in job.checkpoints}
    best: tuple[float, str] | None = None
    for run in named_results(job.evaluations, job.evaluation):
        averages = [m.get("value") for m in run.get("metrics", []) if str(m.get("aggregation")) == "AVERAGE"]
        value = averages[0] if averages else None
        checkpoint = str(run.get("checkpoint_id", ""))
        if isinstance(value, int | float) and endpoints.get(checkpoint) and (best is None or value >= best[0]):
            best = (float(value), checkpoint)
    if best is None:
        return job.endpoint, ""
    return endpoints[best[1]], best[1]


def _held_out_example(line: str) -> HeldOut | None:
    """A held-out line as a prompt and its reference: the last model turn is the answer expected."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    contents = data.get("contents") if isinstance(data, dict) else None
    if not isinstance(contents, list) or len(contents) < 2 or not isinstance(contents[-1], dict):
        return None
    if contents[-1].get("role") != "model":
        return None
    asked = [turn for turn in contents[:-1] if isinstance(turn, dict)]
    users = [turn for turn in asked if turn.get("role") == "user"]
    system = data.get("systemInstruction") or data.get("system_instruction")
    return HeldOut(
        contents=asked,
        system_instruction=system if isinstance(system, dict) else None,
        prompt=_text(users[-1]) if users else "",
        reference=_text(contents[-1]),
    )


def _text(turn: Mapping[str, Any]) -> str:
    parts = turn.get("parts")
    if not isinstance(parts, list):
        return ""
    return "".join(str(part.get("text", "")) for part in parts if isinstance(part, dict))
