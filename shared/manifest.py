"""Manifest drops: `incoming/<team>/<name>.json` (or `.yaml`) names the datasets and settings of one job.

    # incoming/support/bot.json
    {"training_dataset": "datasets/support/train.jsonl",
     "validation_dataset": "gs://BUCKET/datasets/support/val.jsonl",
     "base_model": "gemini-2.5-flash",
     "hyper_parameters": {"epochs": 3, "adapter_size": 4, "learning_rate_multiplier": 1.0},
     "display_name": "support-bot-v2", "labels": {"team": "support"}, "priority": 10}

Dataset paths are objects of the datasets bucket, as `gs://BUCKET/path` or a bare `path`, and of the
manifest's own team (see `TeamPrefixes`): `incoming/<team>/...` or `datasets/<team>/...`.
Every problem is reported (line, JSON path, what to do), not just the first.

Every value's type and range is declared below (msgspec types with constraints) and checked one field
at a time, so a manifest can never hand Firestore or Vertex AI a value they refuse: integers fit, text
has a length, labels follow Vertex AI's rules, nothing is nested where a scalar belongs. YAML aliases
are refused (an alias bomb expands a few hundred bytes into gigabytes), and so is deep nesting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
import yaml
from msgspec import Meta

from shared.compliance import KmsKeyName, ServiceAccount
from shared.config import TEAM_NAME_PATTERN
from shared.evaluation import Evaluation
from shared.gate import Gate
from shared.text import printable
from shared.validation import Issue
from shared.validation.hyperparams import ADAPTER_SIZE_NAMES, HYPER_PARAMETER_NAMES

MANIFEST_SUFFIXES = (".json", ".yaml", ".yml")
MAX_MANIFEST_BYTES = 64 * 1024
MAX_DEPTH = 3  # manifest -> labels / hyper_parameters -> value
# evaluation -> metrics -> one metric -> its aggregations (counted from the evaluation object)
EVALUATION_DEPTH = 4
MAX_QUOTED_CHARS = 60  # user text quoted in a message is cut to this
MAX_REASON_CHARS = 300  # a schema's reason for refusing a value, which may quote the value
KNOWN_KEYS = {
    "training_dataset",
    "validation_dataset",
    "base_model",
    "hyper_parameters",
    "display_name",
    "labels",
    "priority",
    "description",
    "export_last_checkpoint_only",
    "service_account",
    "encryption_key",
    "continue_from",
    "evaluation",
    "promote_as",
    "evaluation_dataset",
    "gate",
}
# Tunedrop labels every Vertex job (tunedrop_job, tunedrop_attempt): that prefix is its own.
RESERVED_LABEL_PREFIX = "tunedrop_"
# Vertex AI allows 64 labels on a resource; Tunedrop adds its two.
MAX_USER_LABELS = 62

# ---- declared limits. \A and \Z: a `$` would let a trailing newline through.
Priority = Annotated[int, Meta(ge=-1000, le=1000)]
# Wide enough for any model (the validator applies each model's own range), small enough for Vertex AI's int32.
Epochs = Annotated[int, Meta(ge=1, le=10_000)]
AdapterSize = Annotated[int, Meta(ge=1, le=64)]
LearningRateMultiplier = Annotated[float, Meta(gt=0, le=1_000)]
DisplayName = Annotated[str, Meta(max_length=128, pattern=r"\A[^\x00-\x1f\x7f]*\Z")]
BaseModelName = Annotated[str, Meta(min_length=1, max_length=256, pattern=r"\A[A-Za-z0-9._@/-]+\Z")]
DatasetPath = Annotated[str, Meta(min_length=1, max_length=1024, pattern=r"\A[^\x00-\x1f\x7f]+\Z")]
LabelKey = Annotated[str, Meta(pattern=r"\A[a-z][a-z0-9_-]{0,62}\Z")]
LabelValue = Annotated[str, Meta(pattern=r"\A[a-z0-9_-]{0,63}\Z")]
TeamName = Annotated[str, Meta(pattern=TEAM_NAME_PATTERN)]
# A name the team's applications resolve to its champion model (a Firestore document id and a Vertex AI label value).
AliasName = Annotated[str, Meta(pattern=r"\A[a-z][a-z0-9-]{0,62}\Z")]
# continue_from's job: a Tunedrop job id (job_id_for's shape); its checkpoint: an id as Vertex AI gives them.
JobId = Annotated[str, Meta(pattern=r"\A[a-z][a-z0-9-]{0,62}\Z")]
CheckpointId = Annotated[str, Meta(pattern=r"\A[A-Za-z0-9_-]{1,64}\Z")]
# A tuned model as Vertex AI names it (PreTunedModel.tuned_model_name: projects/*/locations/*/models/*, with an
# optional @version or @alias; aiplatform_v1 2.7), as `tunedrop job` shows it.
_TUNED_MODEL_PATTERN = r"\Aprojects/[^/\s]+/locations/[a-z0-9-]+/models/[A-Za-z0-9_-]+(@[A-Za-z0-9_-]+)?\Z"
TunedModelName = Annotated[str, Meta(max_length=512, pattern=_TUNED_MODEL_PATTERN)]


class ContinueFrom(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Continuous tuning: tune on from the tuned model of an earlier job of the same team, named by the job's id
    or by the model's resource name, at one of its checkpoints (Vertex AI's default checkpoint when left out)."""

    job: JobId | None = None
    model: TunedModelName | None = None
    checkpoint_id: CheckpointId | None = None

    def __post_init__(self) -> None:
        if (self.job is None) == (self.model is None):
            raise ValueError("name either the job or its tuned model, not both or neither")


# The TuningJob's description: the API sets no length, Tunedrop does (it is stored on the job document).
Description = Annotated[str, Meta(max_length=2000, pattern=r"\A[^\x00-\x08\x0b-\x1f\x7f]*\Z")]

# Where teams keep the datasets their manifests name, beside their uploads under the incoming prefix.
DATASETS_PREFIX = "datasets/"
TEAM_NAME_SHAPE = "1-63 lowercase letters, digits or -, not starting or ending with -"


def is_team_name(name: str) -> bool:
    return not convert(name, TeamName)[1]


@dataclass(frozen=True)
class TeamPrefixes:
    """Which team owns an object of the datasets bucket: `incoming/<team>/...` and `datasets/<team>/...` are
    `<team>`'s, and objects directly under `incoming/` or `datasets/` are the default team's."""

    incoming_prefix: str = "incoming/"
    default_team: str = "default"

    def owner(self, object_name: str) -> str | None:
        """The team that owns ``object_name``; None when no team does (another prefix, or a folder under
        incoming/ or datasets/ that is not a team name)."""
        for prefix in (self.incoming_prefix, DATASETS_PREFIX):
            if object_name.startswith(prefix):
                folder, slash, _ = object_name[len(prefix) :].partition("/")
                if not slash:
                    return self.default_team
                return folder if is_team_name(folder) else None
        return None

    def own_prefixes(self, team: str) -> str:
        """Where ``team``'s datasets may be, as a message says it."""
        prefixes = [f"{self.incoming_prefix}{team}/", f"{DATASETS_PREFIX}{team}/"]
        if team == self.default_team:
            prefixes += [f"directly under {self.incoming_prefix}", f"directly under {DATASETS_PREFIX}"]
        return ", ".join(prefixes[:-1]) + " or " + prefixes[-1]


@dataclass(frozen=True)
class Manifest:
    training_uri: str = ""
    validation_uri: str = ""
    base_model: str = ""
    hyper_parameters: dict[str, Any] = field(default_factory=dict)
    display_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    description: str = ""
    export_last_checkpoint_only: bool | None = None  # None: not asked (Vertex AI's default)
    service_account: str = ""  # "" : the operators' default (TUNEDROP_DEFAULT_TUNING_SERVICE_ACCOUNT)
    encryption_key: str = ""  # "" : the operators' default (TUNEDROP_DEFAULT_ENCRYPTION_KEY)
    continue_from: ContinueFrom | None = None
    # Evaluation during tuning (shared.evaluation.Evaluation as plain data); None: none asked.
    evaluation: dict[str, Any] | None = None
    # The evaluation gate (shared.gate): the alias to promote the tuned model as, the held-out dataset it is
    # judged on, and the gate's settings (shared.gate.Gate as plain data; None: the defaults).
    promote_as: str = ""
    evaluation_uri: str = ""
    gate: dict[str, Any] | None = None


def is_manifest(name: str) -> bool:
    return name.lower().endswith(MANIFEST_SUFFIXES)


def quoted(value: Any, limit: int = MAX_QUOTED_CHARS) -> str:
    """A user's value as a message may quote it: repr'd, controls escaped, cut to ``limit`` characters (never
    half an escape), and never an error (an integer of thousands of digits has no repr)."""
    try:
        text = repr(value)
    except ValueError:
        text = f"<a {type(value).__name__} too long to show>"
    return printable(text, limit)


def convert(value: Any, kind: Any, *, lax: bool = False) -> tuple[Any, str]:
    """(value as ``kind``, "") or (None, why not). ``lax`` takes numbers written as text (object metadata)."""
    try:
        return msgspec.convert(value, kind, strict=not lax), ""
    except msgspec.ValidationError as exc:
        # msgspec quotes unknown keys whole: a hostile key must not make the message as long as itself.
        return None, printable(str(exc).removesuffix(" - at `$`"), MAX_REASON_CHARS)


def adapter_size_value(value: Any) -> Any:
    """4, "4", "four" and "ADAPTER_SIZE_FOUR" are all 4; anything else is left for the type check."""
    if isinstance(value, str):
        name = value.strip().upper().removeprefix("ADAPTER_SIZE_")
        if name in ADAPTER_SIZE_NAMES:
            return ADAPTER_SIZE_NAMES[name]
    return value


# The declared type of each of shared.validation.hyperparams' HYPER_PARAMETERS (the model's range is checked there).
HYPER_PARAMETER_TYPES: dict[str, Any] = {
    "epochs": Epochs,
    "adapter_size": AdapterSize,
    "learning_rate_multiplier": LearningRateMultiplier,
}


def hyper_parameter(key: str, value: Any, *, lax: bool = False) -> tuple[Any, str]:
    """One hyper-parameter as its declared type (the model's own range is the validator's to check)."""
    if key == "adapter_size":
        value = adapter_size_value(value)
    return convert(value, HYPER_PARAMETER_TYPES[key], lax=lax)


def label_problems(labels: Mapping[Any, Any]) -> list[tuple[Any, str]]:
    """(key, why) for each label Vertex AI would refuse or Tunedrop reserves."""
    problems: list[tuple[Any, str]] = []
    if len(labels) > MAX_USER_LABELS:
        problems.append(
            (None, f"{len(labels)} labels; Vertex AI takes 64 and Tunedrop uses two: at most {MAX_USER_LABELS}")
        )
    for key, value in labels.items():
        _, key_problem = convert(key, LabelKey)
        if key_problem:
            problems.append(
                (
                    key,
                    f"key {quoted(key)} must start with a lowercase letter and hold only lowercase "
                    "letters, digits, _ and - (at most 63 characters)",
                )
            )
        elif key.startswith(RESERVED_LABEL_PREFIX):
            problems.append((key, f"key {quoted(key)}: keys starting with {RESERVED_LABEL_PREFIX} are Tunedrop's own"))
        elif convert(value, LabelValue)[1]:
            problems.append(
                (
                    key,
                    f"{key}={quoted(value)}: values hold only lowercase letters, digits, _ and - "
                    "(at most 63 characters)",
                )
            )
    return problems


def _line_of(text: str, key: str) -> int:
    """The 1-based line where `"key"` (or `key:`) first appears, for pointing people at it."""
    for number, line in enumerate(text.splitlines(), start=1):
        if f'"{key}"' in line or f"'{key}'" in line or line.strip().startswith(f"{key}:"):
            return number
    return 0


class _ManifestLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
    """PyYAML's safe loader without aliases: `*name` may expand a small file into gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a manifest: write the value out", event.start_mark
            )
        return super().compose_node(parent, index)


def _depth(value: Any, limit: int) -> bool:
    """Whether ``value`` nests no deeper than ``limit`` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def _parse(raw: bytes, name: str, issues: list[Issue]) -> tuple[Any, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.append(Issue(0, "manifest_not_utf8", f"The manifest is not UTF-8 (byte {exc.start}): save it as UTF-8."))
        return None, ""
    try:
        if name.lower().endswith(".json"):
            try:
                return json.loads(text), text
            except json.JSONDecodeError as exc:
                issues.append(Issue(exc.lineno, "manifest_not_json", f"The manifest is not valid JSON: {exc.msg}."))
                return None, text
        try:
            return yaml.load(text, Loader=_ManifestLoader), text  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 0
            problem = getattr(exc, "problem", None) or str(exc)
            issues.append(Issue(line, "manifest_not_yaml", f"The manifest is not valid YAML: {problem}."))
            return None, text
    except RecursionError:
        issues.append(Issue(0, "manifest_too_deep", f"The manifest nests too deeply: keep it to {MAX_DEPTH} levels."))
    except ValueError as exc:  # e.g. an integer of thousands of digits
        issues.append(
            Issue(0, "manifest_bad_value", f"The manifest holds a value Tunedrop cannot read: {quoted(str(exc))}.")
        )
    return None, text


@dataclass(frozen=True)
class _Scope:
    """Where a manifest's datasets may be: its bucket, and when ``teams`` is given, its own team's prefixes."""

    bucket: str
    team: str = ""
    teams: TeamPrefixes | None = None

    def foreign(self, path: str) -> str | None:
        """Why ``path`` is not the manifest's team's to name, or None when it is (or teams are not checked)."""
        if self.teams is None:
            return None
        owner = self.teams.owner(path)
        if owner == self.team:
            return None
        # Both names match TEAM_NAME_PATTERN (an upload from any other folder is refused before its manifest is read).
        whose = f"team {owner}'s" if owner is not None else "no team's"
        return (
            f"is {whose}, and a manifest of team {self.team or '(none)'} may name only its own team's datasets: "
            f"{self.teams.own_prefixes(self.team)}"
        )


def _dataset_uri(value: Any, key: str, scope: _Scope, text: str, issues: list[Issue]) -> str:
    bucket = scope.bucket
    line = _line_of(text, key)
    path_value, problem = convert(value, DatasetPath)
    if problem:
        issues.append(
            Issue(
                line, "manifest_bad_dataset", f"{key} must be an object path such as datasets/train.jsonl.", f"$.{key}"
            )
        )
        return ""
    value = path_value.strip()
    if value.startswith("gs://"):
        other, _, path = value[5:].partition("/")
        if other != bucket:
            issues.append(
                Issue(
                    line,
                    "manifest_other_bucket",
                    f"{key} is in bucket {quoted(other)}; Tunedrop reads datasets from gs://{bucket} only: "
                    "copy the file there.",
                    f"$.{key}",
                )
            )
            return ""
    elif "://" in value:
        issues.append(
            Issue(line, "manifest_bad_dataset", f"{key} must be a gs://{bucket}/... URI or a path in it.", f"$.{key}")
        )
        return ""
    else:
        path = value.lstrip("/")
    if not path.lower().endswith(".jsonl"):
        issues.append(
            Issue(line, "manifest_bad_dataset", f"{key} must name a .jsonl file, not {quoted(path)}.", f"$.{key}")
        )
        return ""
    foreign = scope.foreign(path)
    if foreign is not None:
        issues.append(Issue(line, "manifest_other_team", f"{key} {quoted(path)} {foreign}.", f"$.{key}"))
        return ""
    return f"gs://{bucket}/{path}"


def parse_manifest(
    raw: bytes, *, name: str, bucket: str, teams: TeamPrefixes | None = None
) -> tuple[Manifest, list[Issue]]:
    """The manifest, and every problem found in it (an empty list when it is valid). With ``teams`` (the upload
    service always gives them) a dataset that is not of the manifest's own team is a problem too."""
    issues: list[Issue] = []
    data, text = _document(raw, name, issues)
    if data is None:
        return Manifest(), issues
    _check_known_keys(data, text, issues)
    scope = _Scope(bucket, teams.owner(name) or "", teams) if teams is not None else _Scope(bucket)
    training, validation = _datasets(data, scope, text, issues)
    base_model = _scalar(
        data, "base_model", BaseModelName, "base_model must be a model name such as gemini-3.5-flash", "", text, issues
    )
    display_name = _scalar(
        data, "display_name", DisplayName, "display_name must be one line of at most 128 characters", "", text, issues
    )
    priority = _scalar(
        data, "priority", Priority, "priority must be a whole number from -1000 to 1000", 0, text, issues
    )
    hyper_parameters = _hyper_parameters(data, text, issues)
    labels = _labels(data, text, issues)
    manifest = Manifest(
        training_uri=training,
        validation_uri=validation,
        base_model=base_model.strip(),
        hyper_parameters=hyper_parameters,
        display_name=display_name,
        labels=labels,
        priority=priority,
        **_job_options(data, text, issues),
        **_promotion(data, scope, text, issues, (training, validation)),
    )
    return manifest, issues


def _promotion(
    data: Mapping[Any, Any], scope: _Scope, text: str, issues: list[Issue], tuned_on: tuple[str, ...]
) -> dict[str, Any]:
    """The evaluation gate's keys: promote_as, the held-out evaluation_dataset it needs (a file of the team's
    other than those tuned on), and gate (shared.gate.Gate)."""
    promote_as = _scalar(
        data,
        "promote_as",
        AliasName,
        "promote_as must be an alias name: 1-63 lowercase letters, digits or -, starting with a letter",
        "",
        text,
        issues,
    )
    evaluation = ""
    if data.get("evaluation_dataset") is not None:
        evaluation = _dataset_uri(data["evaluation_dataset"], "evaluation_dataset", scope, text, issues)
        if evaluation and evaluation in tuned_on:
            issues.append(
                Issue(
                    _line_of(text, "evaluation_dataset"),
                    "manifest_same_datasets",
                    "evaluation_dataset must be held out: a different file from training_dataset and "
                    "validation_dataset.",
                    "$.evaluation_dataset",
                )
            )
            evaluation = ""
    gate = _gate(data, text, issues)
    needs = [key for key in ("promote_as", "evaluation_dataset") if data.get(key) is None]
    asked = [key for key in ("promote_as", "evaluation_dataset", "gate") if data.get(key) is not None]
    if asked and needs:
        issues.append(
            Issue(
                _line_of(text, asked[0]),
                "manifest_incomplete_gate",
                f"{' and '.join(asked)} without {' and '.join(needs)}: the evaluation gate promotes a tuned model as "
                "promote_as when it beats the alias's champion on the held-out evaluation_dataset; give both, "
                "or neither.",
                f"$.{needs[0]}",
            )
        )
    return {"promote_as": promote_as, "evaluation_uri": evaluation, "gate": gate}


def _gate(data: Mapping[Any, Any], text: str, issues: list[Issue]) -> dict[str, Any] | None:
    """The gate's settings as plain data (None: the defaults, or refused and reported)."""
    if data.get("gate") is None:
        return None
    value, problem = convert(data["gate"], Gate)
    if problem:
        issues.append(
            Issue(
                _line_of(text, "gate"),
                "manifest_bad_gate",
                f"gate is not one Tunedrop can run: {problem}. See README: The evaluation gate.",
                "$.gate",
            )
        )
        return None
    builtins: dict[str, Any] = msgspec.to_builtins(value)
    return builtins


def _job_options(data: Mapping[Any, Any], text: str, issues: list[Issue]) -> dict[str, Any]:
    """The TuningJob's own options a manifest may set (the operators' allow-lists are the upload's to check)."""
    return {
        "description": _scalar(
            data, "description", Description, "description must be text of at most 2000 characters", "", text, issues
        ),
        "export_last_checkpoint_only": _scalar(
            data,
            "export_last_checkpoint_only",
            bool,
            "export_last_checkpoint_only must be true or false",
            None,
            text,
            issues,
        ),
        "service_account": _scalar(
            data,
            "service_account",
            ServiceAccount,
            "service_account must be a service account email",
            "",
            text,
            issues,
        ),
        "encryption_key": _scalar(
            data,
            "encryption_key",
            KmsKeyName,
            "encryption_key must be a Cloud KMS key: projects/P/locations/L/keyRings/R/cryptoKeys/K",
            "",
            text,
            issues,
        ),
        "continue_from": _scalar(
            data,
            "continue_from",
            ContinueFrom,
            "continue_from must be {job: <a Tunedrop job id>} or {model: <its tuned model, projects/P/locations/L/"
            'models/M@V>}, with an optional checkpoint_id: "<id>"',
            None,
            text,
            issues,
        ),
        "evaluation": _evaluation(data, text, issues),
    }


# A msgspec.ValidationError's message and the path at its end: "<why> - at `$.metrics[0].name`".
_MSGSPEC_PATH = re.compile(r"(.*) - at `\$((?:\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*)`", re.DOTALL)


def _evaluation(data: Mapping[Any, Any], text: str, issues: list[Issue]) -> dict[str, Any] | None:
    """The evaluation during tuning asked for, as plain data (None when none, or refused: each problem reported,
    with the JSON path of the value at fault)."""
    if data.get("evaluation") is None:
        return None
    try:
        evaluation = msgspec.convert(data["evaluation"], Evaluation, strict=True)
    except msgspec.ValidationError as exc:
        # msgspec's path comes last, when there is one; an unknown key quoted in the message is the user's (it may
        # hold the same words): only a path of field names and indexes is taken, and the rest made printable, cut.
        found = _MSGSPEC_PATH.fullmatch(str(exc))
        why, where = (found[1], found[2]) if found else (str(exc), "")
        why = printable(why, MAX_REASON_CHARS)
        issues.append(
            Issue(
                _line_of(text, "evaluation"),
                "manifest_bad_evaluation",
                f"evaluation is not one Vertex AI can run: {why}. It takes metrics (each a name, a kind of "
                "pointwise, pairwise, exact_match, bleu or rouge, and a prompt_template for the first two) and an "
                "optional autorater (sampling_count 1-32, flip_enabled, model).",
                f"$.evaluation{where}",
            )
        )
        return None
    builtins: dict[str, Any] = msgspec.to_builtins(evaluation)
    return builtins


def _document(raw: bytes, name: str, issues: list[Issue]) -> tuple[Mapping[Any, Any] | None, str]:
    """(the manifest's top-level object, its text), or (None, ...) with the one problem that stops reading it."""
    if len(raw) > MAX_MANIFEST_BYTES:
        issues.append(Issue(0, "manifest_too_large", f"The manifest is {len(raw):,} bytes; keep it under 64 KiB."))
        return None, ""
    data, text = _parse(raw, name, issues)
    if issues:
        return None, text
    if not isinstance(data, Mapping):
        issues.append(Issue(1, "manifest_not_object", "The manifest must be an object with a training_dataset."))
        return None, text
    evaluation = data.get("evaluation")
    rest = {key: value for key, value in data.items() if key != "evaluation"}
    if not _depth(rest, MAX_DEPTH) or not _depth(evaluation, EVALUATION_DEPTH):
        issues.append(
            Issue(
                0,
                "manifest_too_deep",
                "Only labels, hyper_parameters and continue_from hold values of their own (one level each), and "
                "evaluation its metrics (each with a list of aggregations) and autorater.",
            )
        )
        return None, text
    return data, text


def _check_known_keys(data: Mapping[Any, Any], text: str, issues: list[Issue]) -> None:
    for key in sorted(set(data) - KNOWN_KEYS, key=str):
        issues.append(
            Issue(
                _line_of(text, str(key)),
                "manifest_unknown_key",
                f"Unknown key {quoted(key)}: use only {', '.join(sorted(KNOWN_KEYS))}.",
                f"$.{str(key)[:MAX_QUOTED_CHARS]}",
            )
        )


def _datasets(data: Mapping[Any, Any], scope: _Scope, text: str, issues: list[Issue]) -> tuple[str, str]:
    """(training URI, validation URI), each "" when absent or refused."""
    if "training_dataset" not in data:
        issues.append(
            Issue(0, "manifest_missing_training", "The manifest needs a training_dataset.", "$.training_dataset")
        )
        training = ""
    else:
        training = _dataset_uri(data["training_dataset"], "training_dataset", scope, text, issues)
    validation = ""
    if data.get("validation_dataset") is not None:
        validation = _dataset_uri(data["validation_dataset"], "validation_dataset", scope, text, issues)
        if validation and validation == training:
            issues.append(
                Issue(
                    _line_of(text, "validation_dataset"),
                    "manifest_same_datasets",
                    "validation_dataset must be a different file from training_dataset.",
                    "$.validation_dataset",
                )
            )
    return training, validation


def _scalar(
    data: Mapping[Any, Any], key: str, kind: Any, message: str, default: Any, text: str, issues: list[Issue]
) -> Any:
    """``data[key]`` as ``kind``; ``default`` when it is absent, null or refused (refusals are reported)."""
    if key not in data or data[key] is None:
        return default
    value, problem = convert(data[key], kind)
    if problem:
        issues.append(Issue(_line_of(text, key), "manifest_bad_value", f"{message} ({problem}).", f"$.{key}"))
        return default
    return value


def _hyper_parameters(data: Mapping[Any, Any], text: str, issues: list[Issue]) -> dict[str, Any]:
    """The hyper-parameters that are known and well typed; the others are reported."""
    hyper_raw = data.get("hyper_parameters") or {}
    if not isinstance(hyper_raw, Mapping):
        issues.append(
            Issue(
                _line_of(text, "hyper_parameters"),
                "manifest_bad_value",
                "hyper_parameters must be an object of epochs, adapter_size, learning_rate_multiplier.",
                "$.hyper_parameters",
            )
        )
        return {}
    hyper: dict[str, Any] = {}
    for key, value in hyper_raw.items():
        if key not in HYPER_PARAMETER_NAMES:
            issues.append(
                Issue(
                    _line_of(text, str(key)),
                    "manifest_unknown_key",
                    f"Unknown hyper-parameter {quoted(key)}: use {', '.join(sorted(HYPER_PARAMETER_NAMES))}.",
                    f"$.hyper_parameters.{str(key)[:MAX_QUOTED_CHARS]}",
                )
            )
            continue
        typed, problem = hyper_parameter(key, value)
        if problem:
            issues.append(
                Issue(
                    _line_of(text, key),
                    "manifest_bad_value",
                    f"hyper_parameters.{key}={quoted(value)} is not allowed ({problem}).",
                    f"$.hyper_parameters.{key}",
                )
            )
        else:
            hyper[key] = typed
    return hyper


def _label_text(value: Any) -> Any:
    """Numbers written without quotes are what people mean: `version: 2` is the label "2"."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _labels(data: Mapping[Any, Any], text: str, issues: list[Issue]) -> dict[str, str]:
    """The labels when Vertex AI would take all of them; otherwise none, and each problem reported."""
    labels_raw = data.get("labels") or {}
    if not isinstance(labels_raw, Mapping):
        issues.append(
            Issue(_line_of(text, "labels"), "manifest_bad_value", "labels must be an object of strings.", "$.labels")
        )
        return {}
    labels = {key: _label_text(value) for key, value in labels_raw.items()}
    problems = label_problems(labels)
    for key, why in problems:
        where = f"$.labels.{str(key)[:MAX_QUOTED_CHARS]}" if key is not None else "$.labels"
        issues.append(Issue(_line_of(text, str(key or "labels")), "manifest_bad_label", f"Label {why}.", where))
    if problems:
        return {}
    return {str(k): str(v) for k, v in labels.items()}


# Custom metadata keys a user can set on an uploaded dataset (gsutil -h x-goog-meta-KEY:VALUE).
BASE_MODEL_KEYS = ("base_model", "base-model", "tunedrop-base-model")
PRIORITY_KEYS = ("priority", "tunedrop-priority")
# The job options a single metadata value can say: (key, type, what it must be).
METADATA_OPTIONS: tuple[tuple[str, Any, str], ...] = (
    ("description", Description, "text of at most 2000 characters"),
    ("export_last_checkpoint_only", bool, "true or false"),
    ("service_account", ServiceAccount, "a service account email"),
    ("encryption_key", KmsKeyName, "a Cloud KMS key name"),
)


def _first(metadata: Mapping[str, str], keys: tuple[str, ...]) -> tuple[str, str]:
    """(key, stripped value) of the first of ``keys`` set to something, or ("", "")."""
    for key in keys:
        value = metadata.get(key, "")
        if isinstance(value, str) and value.strip():
            return key, value.strip()
    return "", ""


def _unsigned(text: str) -> str:
    """ "+4" is 4 (lax conversion takes "-4" but not a plus sign); "+-3" stays as it is, and is refused."""
    return text[1:] if text.startswith("+") and text[1:2].isascii() and text[1:2].isdigit() else text


def settings_from_metadata(metadata: Mapping[str, str], training_uri: str) -> tuple[Manifest, list[Issue]]:
    """What a manifest would say, read from a bare upload's object metadata (all text), with its problems.

    Numbers arrive as text: "3" is 3, but "²", "+-3" or five thousand digits are problems, never
    exceptions, and nothing out of range is quietly changed."""
    issues: list[Issue] = []

    def bad(key: str, value: str, why: str) -> None:
        issues.append(
            Issue(
                0, "bad_metadata", f"Object metadata {key}={quoted(value)} is not allowed ({why}): fix it or remove it."
            )
        )

    model_key, base_model = _first(metadata, BASE_MODEL_KEYS)
    if base_model and convert(base_model, BaseModelName)[1]:
        bad(model_key, base_model, "a model name such as gemini-3.5-flash")
        base_model = ""
    priority_key, raw_priority = _first(metadata, PRIORITY_KEYS)
    priority = 0
    if raw_priority:
        value, problem = convert(_unsigned(raw_priority), Priority, lax=True)
        if problem:
            bad(priority_key, raw_priority, "a whole number from -1000 to 1000")
        else:
            priority = value
    hyper: dict[str, Any] = {}
    for key in sorted(HYPER_PARAMETER_NAMES):
        raw = metadata.get(key, "")
        if not isinstance(raw, str) or not raw.strip():
            continue
        value, problem = hyper_parameter(key, _unsigned(raw.strip()), lax=True)
        if problem:
            bad(key, raw, problem)
        else:
            hyper[key] = value
    display_name = ""
    raw_name = metadata.get("display_name", "")
    if isinstance(raw_name, str) and raw_name.strip():
        display_name, problem = convert(raw_name.strip(), DisplayName)
        if problem:
            bad("display_name", raw_name, "one line of at most 128 characters")
            display_name = ""
    options: dict[str, Any] = {}
    for key, kind, shape in METADATA_OPTIONS:
        # Metadata keys are usually written with hyphens (x-goog-meta-service-account), like base-model.
        given, raw = _first(metadata, (key, key.replace("_", "-")))
        if not raw:
            continue
        value, problem = convert(raw, kind, lax=True)
        if problem:
            bad(given, raw, shape)
        else:
            options[key] = value
    settings = Manifest(
        training_uri=training_uri,
        base_model=base_model,
        hyper_parameters=hyper,
        display_name=display_name,
        priority=priority,
        **options,
    )
    return settings, issues
