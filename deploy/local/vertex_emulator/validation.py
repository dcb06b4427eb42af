"""What CreateTuningJob refuses before it creates anything, as the real service does."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final

import grpc

from shared.validation.registry import ModelStatus, registry

from .errors import EmulatorError, invalid_argument
from .evaluation import validate_evaluation

JOB_SECONDS_LABEL: Final = "tunedrop_emulator_job_seconds"
DROPPED_EXAMPLES_LABEL: Final = "tunedrop_emulator_dropped_examples"
# How a tuned model answers GenerateContent (see .answers): percents, overriding the emulator's knobs.
QUALITY_LABEL: Final = "emulator_quality"
NOISE_LABEL: Final = "emulator_noise"
# A service account is named by its email: SA_NAME@PROJECT_ID.iam.gserviceaccount.com for user-managed
# accounts (account ids are 6-30 characters of [a-z]([-a-z0-9]*[a-z0-9]): iam_admin_v1
# CreateServiceAccountRequest, https://cloud.google.com/python/docs/reference/iam/latest/
# google.cloud.iam_admin_v1.types.ServiceAccount, read 2026-11-30), or a Google-managed
# ...@*.gserviceaccount.com address such as PROJECT_NUMBER-compute@developer.gserviceaccount.com.
_SERVICE_ACCOUNT_RE: Final = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}@([a-z0-9-]+\.)*gserviceaccount\.com")
# EncryptionSpec.kms_key_name "has the form: projects/my-project/locations/my-region/keyRings/my-kr/cryptoKeys/
# my-key. The key needs to be in the same region as where the compute resource is created." (aiplatform_v1 2.7;
# https://docs.cloud.google.com/gemini-enterprise-agent-platform/reference/rest/v1/projects.locations.tuningJobs,
# read 2026-11-30).
_KMS_KEY_RE: Final = re.compile(r"projects/[^/\s]+/locations/(?P<location>[^/\s]+)/keyRings/[^/\s]+/cryptoKeys/[^/\s]+")
MAX_LABELS: Final = 64
MAX_LABEL_LENGTH: Final = 64
MAX_DISPLAY_NAME_LENGTH: Final = 128


def validate_tuning_job(pb: Any, location: str) -> None:
    """Refuse a malformed raw protobuf TuningJob with INVALID_ARGUMENT naming the field."""
    source = pb.WhichOneof("source_model")
    if source is None or (source == "base_model" and not pb.base_model):
        raise invalid_argument(
            "tuning_job.base_model is required, e.g. gemini-3.5-flash (or tuning_job.pre_tuned_model for "
            "continuous tuning)."
        )
    if source == "pre_tuned_model" and not pb.pre_tuned_model.tuned_model_name:
        raise invalid_argument("tuning_job.pre_tuned_model.tuned_model_name is required for continuous tuning.")
    if not pb.HasField("supervised_tuning_spec"):
        raise invalid_argument("tuning_job.supervised_tuning_spec is required.")
    _validate_supervised_spec(pb.supervised_tuning_spec)
    if pb.supervised_tuning_spec.HasField("evaluation_config"):
        validate_evaluation(pb.supervised_tuning_spec, location)
    validate_service_account(pb.service_account)
    if pb.HasField("encryption_spec"):
        validate_kms_key(pb.encryption_spec.kms_key_name, location)
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


def validate_service_account(email: str) -> None:
    """An empty value runs the job as the Vertex AI Secure Fine-Tuning Service Agent; anything else must be an
    email of a service account (TuningJob.service_account, aiplatform_v1 2.7)."""
    if email and not _SERVICE_ACCOUNT_RE.fullmatch(email):
        raise invalid_argument(
            f"tuning_job.service_account must be a service account email such as "
            f"tuner@my-project.iam.gserviceaccount.com, got {email!r}."
        )


def validate_kms_key(key: str, location: str) -> None:
    """A customer-managed key: well formed, and in the job's region."""
    match = _KMS_KEY_RE.fullmatch(key)
    if match is None:
        raise invalid_argument(
            "tuning_job.encryption_spec.kms_key_name must be projects/{project}/locations/{location}/keyRings/"
            f"{{key_ring}}/cryptoKeys/{{key}}, got {key!r}."
        )
    if match["location"] != location:
        raise invalid_argument(
            f"tuning_job.encryption_spec.kms_key_name {key} is in {match['location']}; the key must be in the "
            f"tuning job's region, {location}."
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


def check_cmek_allowed(base_model: str, pb: Any) -> None:
    """The registry records which models tune with a customer-managed key (shared/models.json ``cmek``, from
    the supervised-tuning page's "CMEK support: Not supported" rows); the real refusal's wording is not
    published, so the emulator answers INVALID_ARGUMENT naming the model."""
    spec = registry().resolve(base_model)
    if pb.HasField("encryption_spec") and spec is not None and spec.cmek is False:
        raise invalid_argument(
            f"Customer-managed encryption keys (tuning_job.encryption_spec) are not supported for tuning {spec.name}."
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


def labelled_dropped_examples(pb: Any) -> int | None:
    """How many examples the job reports dropped, from its DROPPED_EXAMPLES_LABEL; None without one.

    Like JOB_SECONDS_LABEL, an emulator knob carried as a label: the real service has no such label.
    """
    raw = pb.labels.get(DROPPED_EXAMPLES_LABEL)
    if raw is None:
        return None
    if not raw.isdigit():
        raise invalid_argument(f"Label {DROPPED_EXAMPLES_LABEL} must be a whole number of examples, got {raw!r}.")
    return int(raw)


def labelled_percent(pb: Any, label: str) -> int | None:
    """A percent (0 to 100) from the job's ``label`` (QUALITY_LABEL, NOISE_LABEL); None without one."""
    raw = pb.labels.get(label)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) > 100:
        raise invalid_argument(f"Label {label} must be a whole percent from 0 to 100, got {raw!r}.")
    return int(raw)
