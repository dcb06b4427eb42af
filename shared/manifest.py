"""Manifest drops: `incoming/<name>.json` (or `.yaml`) names the datasets and settings of one job.

    {"training_dataset": "datasets/support/train.jsonl",
     "validation_dataset": "gs://BUCKET/datasets/support/val.jsonl",
     "base_model": "gemini-2.5-flash",
     "hyper_parameters": {"epochs": 3, "adapter_size": 4, "learning_rate_multiplier": 1.0},
     "display_name": "support-bot-v2", "labels": {"team": "support"}, "priority": 10}

Dataset paths are objects of the datasets bucket, as `gs://BUCKET/path` or a bare `path`.
Every problem is reported (line, JSON path, what to do), not just the first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.validation import Issue

MANIFEST_SUFFIXES = (".json", ".yaml", ".yml")
MAX_MANIFEST_BYTES = 64 * 1024
KNOWN_KEYS = {
    "training_dataset",
    "validation_dataset",
    "base_model",
    "hyper_parameters",
    "display_name",
    "labels",
    "priority",
}
HYPER_PARAMETER_KEYS = {"epochs", "adapter_size", "learning_rate_multiplier"}
# Vertex AI label rules: lowercase letters, digits, underscores and dashes; keys start with a letter.
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
RESERVED_LABELS = {"tunedrop_job", "tunedrop_attempt"}


@dataclass(frozen=True)
class Manifest:
    training_uri: str = ""
    validation_uri: str = ""
    base_model: str = ""
    hyper_parameters: dict[str, Any] = field(default_factory=dict)
    display_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    priority: int = 0


def is_manifest(name: str) -> bool:
    return name.endswith(MANIFEST_SUFFIXES)


def _line_of(text: str, key: str) -> int:
    """The 1-based line where `"key"` (or `key:`) first appears, for pointing people at it."""
    for number, line in enumerate(text.splitlines(), start=1):
        if f'"{key}"' in line or f"'{key}'" in line or line.strip().startswith(f"{key}:"):
            return number
    return 0


def _parse(raw: bytes, name: str, issues: list[Issue]) -> tuple[Any, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.append(Issue(0, "manifest_not_utf8", f"The manifest is not UTF-8 (byte {exc.start}): save it as UTF-8."))
        return None, ""
    if name.endswith(".json"):
        try:
            return json.loads(text), text
        except json.JSONDecodeError as exc:
            issues.append(Issue(exc.lineno, "manifest_not_json", f"The manifest is not valid JSON: {exc.msg}."))
            return None, text
    import yaml

    try:
        return yaml.safe_load(text), text
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        issues.append(Issue(line, "manifest_not_yaml", f"The manifest is not valid YAML: {problem}."))
        return None, text


def _dataset_uri(value: Any, key: str, bucket: str, text: str, issues: list[Issue]) -> str:
    line = _line_of(text, key)
    if not isinstance(value, str) or not value.strip():
        issues.append(
            Issue(
                line, "manifest_bad_dataset", f"{key} must be an object path such as datasets/train.jsonl.", f"$.{key}"
            )
        )
        return ""
    value = value.strip()
    if value.startswith("gs://"):
        other, _, path = value[5:].partition("/")
        if other != bucket:
            issues.append(
                Issue(
                    line,
                    "manifest_other_bucket",
                    f"{key} is in bucket {other}; Tunedrop reads datasets from gs://{bucket} only: "
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
    if not path.endswith(".jsonl"):
        issues.append(Issue(line, "manifest_bad_dataset", f"{key} must name a .jsonl file, not {path!r}.", f"$.{key}"))
        return ""
    return f"gs://{bucket}/{path}"


def parse_manifest(raw: bytes, *, name: str, bucket: str) -> tuple[Manifest, list[Issue]]:
    """The manifest, and every problem found in it (an empty list when it is valid)."""
    issues: list[Issue] = []
    if len(raw) > MAX_MANIFEST_BYTES:
        issues.append(Issue(0, "manifest_too_large", f"The manifest is {len(raw):,} bytes; keep it under 64 KiB."))
        return Manifest(), issues
    data, text = _parse(raw, name, issues)
    if issues:
        return Manifest(), issues
    if not isinstance(data, Mapping):
        issues.append(Issue(1, "manifest_not_object", "The manifest must be an object with a training_dataset."))
        return Manifest(), issues
    for key in sorted(set(data) - KNOWN_KEYS):
        issues.append(
            Issue(
                _line_of(text, str(key)),
                "manifest_unknown_key",
                f"Unknown key {key!r}: use only {', '.join(sorted(KNOWN_KEYS))}.",
                f"$.{key}",
            )
        )
    if "training_dataset" not in data:
        issues.append(
            Issue(0, "manifest_missing_training", "The manifest needs a training_dataset.", "$.training_dataset")
        )
        training = ""
    else:
        training = _dataset_uri(data["training_dataset"], "training_dataset", bucket, text, issues)
    validation = ""
    if data.get("validation_dataset") is not None:
        validation = _dataset_uri(data["validation_dataset"], "validation_dataset", bucket, text, issues)
        if validation and validation == training:
            issues.append(
                Issue(
                    _line_of(text, "validation_dataset"),
                    "manifest_same_datasets",
                    "validation_dataset must be a different file from training_dataset.",
                    "$.validation_dataset",
                )
            )

    base_model = data.get("base_model", "")
    if not isinstance(base_model, str):
        issues.append(
            Issue(
                _line_of(text, "base_model"), "manifest_bad_value", "base_model must be a model name.", "$.base_model"
            )
        )
        base_model = ""

    hyper = data.get("hyper_parameters") or {}
    if not isinstance(hyper, Mapping):
        issues.append(
            Issue(
                _line_of(text, "hyper_parameters"),
                "manifest_bad_value",
                "hyper_parameters must be an object of epochs, adapter_size, learning_rate_multiplier.",
                "$.hyper_parameters",
            )
        )
        hyper = {}
    for key in sorted(set(hyper) - HYPER_PARAMETER_KEYS):
        issues.append(
            Issue(
                _line_of(text, str(key)),
                "manifest_unknown_key",
                f"Unknown hyper-parameter {key!r}: use {', '.join(sorted(HYPER_PARAMETER_KEYS))}.",
                f"$.hyper_parameters.{key}",
            )
        )

    display_name = data.get("display_name", "")
    if not isinstance(display_name, str) or len(display_name) > 128:
        issues.append(
            Issue(
                _line_of(text, "display_name"),
                "manifest_bad_value",
                "display_name must be text of at most 128 characters.",
                "$.display_name",
            )
        )
        display_name = ""

    labels = data.get("labels") or {}
    clean_labels: dict[str, str] = {}
    if not isinstance(labels, Mapping):
        issues.append(
            Issue(_line_of(text, "labels"), "manifest_bad_value", "labels must be an object of strings.", "$.labels")
        )
    else:
        for key, value in labels.items():
            value = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
            if not isinstance(key, str) or not _LABEL_KEY.match(key) or key in RESERVED_LABELS:
                issues.append(
                    Issue(
                        _line_of(text, str(key)),
                        "manifest_bad_label",
                        f"Label key {key!r} must start with a lowercase letter and hold only lowercase "
                        "letters, digits, _ and - (at most 63); tunedrop_* keys are reserved.",
                        f"$.labels.{key}",
                    )
                )
            elif not isinstance(value, str) or not _LABEL_VALUE.match(value):
                issues.append(
                    Issue(
                        _line_of(text, str(key)),
                        "manifest_bad_label",
                        f"Label {key}={value!r}: values hold only lowercase letters, digits, _ and - (at most 63).",
                        f"$.labels.{key}",
                    )
                )
            else:
                clean_labels[key] = value

    priority = data.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or not -1000 <= priority <= 1000:
        issues.append(
            Issue(
                _line_of(text, "priority"),
                "manifest_bad_value",
                "priority must be a whole number from -1000 to 1000.",
                "$.priority",
            )
        )
        priority = 0

    manifest = Manifest(
        training_uri=training,
        validation_uri=validation,
        base_model=base_model.strip(),
        hyper_parameters=dict(hyper),
        display_name=display_name,
        labels=clean_labels,
        priority=priority,
    )
    return manifest, issues
