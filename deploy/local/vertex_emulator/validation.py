"""What CreateTuningJob refuses before it creates anything, as the real service does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

import grpc

from shared.validation.registry import ModelStatus, registry

from .errors import EmulatorError, invalid_argument

JOB_SECONDS_LABEL: Final = "tunedrop_emulator_job_seconds"
MAX_LABELS: Final = 64
MAX_LABEL_LENGTH: Final = 64
MAX_DISPLAY_NAME_LENGTH: Final = 128


def validate_tuning_job(pb: Any) -> None:
    """Refuse a malformed raw protobuf TuningJob with INVALID_ARGUMENT naming the field."""
    if not pb.base_model:
        if pb.HasField("pre_tuned_model"):
            raise invalid_argument("tuning_job.pre_tuned_model (continuous tuning) is not supported by the emulator.")
        raise invalid_argument("tuning_job.base_model is required, e.g. gemini-3.5-flash.")
    if not pb.HasField("supervised_tuning_spec"):
        raise invalid_argument("tuning_job.supervised_tuning_spec is required.")
    _validate_supervised_spec(pb.supervised_tuning_spec)
    if len(pb.tuned_model_display_name) > MAX_DISPLAY_NAME_LENGTH:
        raise invalid_argument(
            f"tuning_job.tuned_model_display_name must be at most {MAX_DISPLAY_NAME_LENGTH} characters."
        )
    validate_labels(dict(pb.labels))


def _validate_supervised_spec(spec: Any) -> None:
    if not spec.training_dataset_uri:
        raise invalid_argument("tuning_job.supervised_tuning_spec.training_dataset_uri is required.")
    for field in ("training_dataset_uri", "validation_dataset_uri"):
        uri = getattr(spec, field)
        if uri and (not uri.startswith("gs://") or len(uri) <= len("gs://")):
            raise invalid_argument(
                f"tuning_job.supervised_tuning_spec.{field} must be a Cloud Storage URI "
                f"(gs://bucket/path.jsonl), got {uri!r}."
            )
    hp = spec.hyper_parameters
    if hp.epoch_count < 0:
        raise invalid_argument(f"hyper_parameters.epoch_count must be positive, got {hp.epoch_count}.")
    if hp.learning_rate_multiplier < 0:
        raise invalid_argument(
            f"hyper_parameters.learning_rate_multiplier must be positive, got {hp.learning_rate_multiplier}."
        )


def _label_text_allowed(text: str) -> bool:
    return all(c.isdigit() or c in "_-" or (c.isalpha() and not c.isupper()) for c in text)


def validate_labels(labels: Mapping[str, str]) -> None:
    """Google Cloud label rules: <= 64 labels; keys and values <= 64 chars of lowercase letters,
    digits, '_' and '-' (international letters allowed); keys start with a letter."""
    if len(labels) > MAX_LABELS:
        raise invalid_argument(f"At most {MAX_LABELS} labels are allowed, got {len(labels)}.")
    for key, value in labels.items():
        if not key or len(key) > MAX_LABEL_LENGTH or not _label_text_allowed(key) or not key[0].isalpha():
            raise invalid_argument(
                f"Invalid label key {key!r}: must start with a lowercase letter and contain at most "
                f"{MAX_LABEL_LENGTH} lowercase letters, digits, underscores or dashes."
            )
        if len(value) > MAX_LABEL_LENGTH or not _label_text_allowed(value):
            raise invalid_argument(
                f"Invalid value {value!r} for label {key!r}: at most {MAX_LABEL_LENGTH} lowercase letters, digits, "
                "underscores or dashes."
            )


def check_base_model(base_model: str, number: str, location: str, today: dt.date) -> None:
    """Refuse a base model that cannot be tuned ``today``, as the real service does.

    A retired model answers NOT_FOUND with the "Publisher Model ... was not found" wording Vertex AI
    gives for retired model ids (the model-versions page: requests naming a retired model return 404;
    googlecodelabs/feedback#1881 shows the text). No public source shows the answer for a model whose
    new tuning is blocked (the month before retirement) or for an unknown model: INVALID_ARGUMENT naming it.
    """
    spec = registry().resolve(base_model)
    if spec is None:
        raise invalid_argument(f"Base model {base_model} is not supported for supervised tuning.")
    status = spec.status(today)
    if status is ModelStatus.RETIRED:
        raise EmulatorError(
            grpc.StatusCode.NOT_FOUND,
            f"Publisher Model `projects/{number}/locations/{location}/publishers/google/models/{spec.name}` "
            "was not found or your project does not have access to it. Please ensure you are using a valid "
            "model version.",
        )
    if status is ModelStatus.TUNING_CLOSED:
        raise invalid_argument(
            f"Base model {spec.name} is no longer available for new tuning jobs: it retires on "
            f"{spec.lifecycle.retires}."
        )


def labelled_job_seconds(pb: Any) -> float | None:
    """The job's duration from its JOB_SECONDS_LABEL, None without one.

    The real service has no such label; the emulator keeps it on the job like any other, so a test
    can start one long job by hand beside short ones.
    """
    raw = pb.labels.get(JOB_SECONDS_LABEL)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) == 0:
        raise invalid_argument(f"Label {JOB_SECONDS_LABEL} must be a whole number of seconds above 0, got {raw!r}.")
    return float(raw)
