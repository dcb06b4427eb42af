"""Continuous tuning: a job whose ``pre_tuned_model`` names a model an earlier job of this emulator tuned.

What the documentation says (each read 2026-11-30):

* PreTunedModel (aiplatform_v1 2.7): ``tuned_model_name`` is ``projects/*/locations/*/models/{model}``, with
  ``@{version_id}`` or ``@{alias}``, or neither for the default version; ``checkpoint_id`` is optional ("If not
  specified, the default checkpoint will be used"); ``base_model`` is output only, "the name of the base model
  this PreTunedModel was tuned from". ``base_model`` and ``pre_tuned_model`` are one oneof (``source_model``), so
  a continuous job names no base model of its own: it tunes the pre-tuned model's.
* "Use continuous tuning for Gemini models" (https://docs.cloud.google.com/gemini-enterprise-agent-platform/
  models/tuning/continuous-tuning.md.txt): only supervised-tuned models "tuned on or after July 11, 2025" can be
  continued; with a customer-managed key the job "must use the same CMEK" as the pre-tuned model's job; a new
  version goes under the same parent model unless a new display name is given, which makes a new model.
* TunedModel.model (aiplatform_v1 2.7): version 1 for a new model, else the parent's last version + 1.

No page gives the refusals' codes or wording: the emulator answers NOT_FOUND for a model (or version) that does
not exist, INVALID_ARGUMENT for everything else, each naming what is wrong. Its default version is the newest,
its default checkpoint the last.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable
from typing import Any, Final

import grpc

from .errors import EmulatorError, invalid_argument
from .names import project_number
from .state import JobState, TuningJobRecord

EARLIEST_CONTINUABLE: Final = dt.datetime(2025, 7, 11, tzinfo=dt.UTC)
_MODEL_RE: Final = re.compile(
    r"projects/(?P<project>[^/\s]+)/locations/(?P<location>[^/\s]+)/models/(?P<model>[^/@\s]+)"
    r"(?:@(?P<version>[^/@\s]+))?"
)
_FIELD: Final = "tuning_job.pre_tuned_model"


@dataclasses.dataclass(frozen=True)
class Lineage:
    """What a new job tunes, and which model (and version) its result becomes."""

    base_model: str
    model_id: str | None  # None: a new model, with a freshly drawn id
    model_version: int
    display_name: str


def lineage_of(pb: Any, records: Iterable[TuningJobRecord]) -> Lineage:
    """The lineage of the raw TuningJob ``pb``; for continuous tuning, checked against ``records``."""
    if pb.WhichOneof("source_model") != "pre_tuned_model":
        return Lineage(pb.base_model, None, 1, pb.tuned_model_display_name)
    jobs = list(records)
    source = _source_job(pb.pre_tuned_model.tuned_model_name, jobs)
    _check_checkpoint(pb.pre_tuned_model.checkpoint_id, source)
    _check_tuned_date(source)
    _check_same_key(pb, source)
    parent_name = source.pb.tuned_model_display_name
    wanted = pb.tuned_model_display_name or parent_name
    if wanted != parent_name:
        return Lineage(source.base_model, None, 1, wanted)
    last = max(job.model_version for job in jobs if _same_model(job, source))
    return Lineage(source.base_model, source.model_id, last + 1, wanted)


def _same_model(job: TuningJobRecord, other: TuningJobRecord) -> bool:
    return (job.number, job.location, job.model_id) == (other.number, other.location, other.model_id)


def _source_job(name: str, jobs: list[TuningJobRecord]) -> TuningJobRecord:
    """The SUCCEEDED job that produced the model version ``name`` names."""
    match = _MODEL_RE.fullmatch(name)
    if match is None:
        raise invalid_argument(
            f"{_FIELD}.tuned_model_name must be projects/{{project}}/locations/{{location}}/models/{{model}}, "
            f"optionally with @{{version_id}} or @{{alias}}; got {name!r}."
        )
    number = project_number(match["project"])
    versions = {
        job.model_version: job
        for job in jobs
        if job.pb.state == JobState.JOB_STATE_SUCCEEDED
        and (job.number, job.location, job.model_id) == (number, match["location"], match["model"])
    }
    version = match["version"]
    if not versions or (version not in (None, "default") and not (version.isdigit() and int(version) in versions)):
        raise EmulatorError(grpc.StatusCode.NOT_FOUND, f"Model {name} does not exist.")
    return versions[int(version)] if version not in (None, "default") else versions[max(versions)]


def _check_checkpoint(checkpoint_id: str, source: TuningJobRecord) -> None:
    available = [c.checkpoint_id for c in source.pb.tuned_model.checkpoints]
    if checkpoint_id and checkpoint_id not in available:
        raise invalid_argument(
            f"{_FIELD}.checkpoint_id {checkpoint_id!r} is not a checkpoint of {source.pb.tuned_model.model} "
            f"(its checkpoints: {', '.join(available) or 'none'})."
        )


def _check_tuned_date(source: TuningJobRecord) -> None:
    ended = source.pb.end_time.ToDatetime(tzinfo=dt.UTC)
    if ended < EARLIEST_CONTINUABLE:
        raise invalid_argument(
            f"{source.pb.tuned_model.model} was tuned on {ended.date()}: only models tuned on or after "
            f"{EARLIEST_CONTINUABLE.date()} can be tuned further (continuous tuning)."
        )


def _check_same_key(pb: Any, source: TuningJobRecord) -> None:
    key = pb.encryption_spec.kms_key_name
    source_key = source.pb.encryption_spec.kms_key_name
    if key != source_key:
        raise invalid_argument(
            f"tuning_job.encryption_spec.kms_key_name must be the key the pre-tuned model was tuned with "
            f"({source_key or 'none'}), got {key or 'none'}."
        )
