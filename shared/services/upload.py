"""Upload trigger: one new dataset object becomes one job, validated and QUEUED or REJECTED."""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import IO, Any

from shared import logs
from shared.clock import Clock
from shared.config import Settings
from shared.errors import JobNotFound, NotAllowed, TransientError
from shared.jobs import Job, JobState, job_id_for, new_job
from shared.manifest import MAX_MANIFEST_BYTES, Manifest, is_manifest, parse_manifest
from shared.ports import BlobStore, JobStore, ObjectMissing, Publisher, Versioned
from shared.services.completions import CompletionNotifier
from shared.services.lifecycle import LifecycleEvents
from shared.validation import Issue, TokenCounter, UriChecker, ValidationReport, render_markdown, validate_dataset
from shared.validation.engine import adapter_size, as_float, as_int
from shared.validation.registry import ModelStatus, get_model, registry

# Custom metadata keys a user can set on the uploaded object (gsutil -h x-goog-meta-KEY:VALUE).
BASE_MODEL_KEYS = ("base_model", "base-model", "tunedrop-base-model")
PRIORITY_KEYS = ("priority", "tunedrop-priority")
HYPER_PARAMETER_KEYS = ("epochs", "adapter_size", "learning_rate_multiplier")
VALIDATION_LEASE = timedelta(minutes=15)
MODEL_RETIRING = "model_retiring"
MODEL_CLOSED_CODES = frozenset(status.error_code for status in ModelStatus if status.error_code)
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


class UploadOutcome(StrEnum):
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    QUEUED = "queued"
    REJECTED = "rejected"


@dataclass(frozen=True)
class UploadedObject:
    bucket: str
    name: str
    generation: str
    metadata: dict[str, str] = field(default_factory=dict)
    event_id: str = ""


class UploadService:
    def __init__(
        self,
        store: JobStore,
        blobs: BlobStore,
        publisher: Publisher,
        completions: CompletionNotifier,
        settings: Settings,
        clock: Clock,
        lifecycle: LifecycleEvents,
        *,
        token_counter: TokenCounter | None = None,
        uri_checker: UriChecker | None = None,
    ) -> None:
        self._lifecycle = lifecycle
        self._token_counter = token_counter
        self._uri_checker = uri_checker
        self._store = store
        self._blobs = blobs
        self._publisher = publisher
        self._completions = completions
        self._settings = settings
        self._clock = clock

    def accepts(self, obj: UploadedObject) -> str | None:
        """None when the object is a dataset upload, else why it is ignored."""
        prefix = self._settings.incoming_prefix
        if obj.bucket != self._settings.bucket:
            return f"bucket {obj.bucket} is not the datasets bucket {self._settings.bucket}"
        if not obj.name.startswith(prefix):
            return f"{obj.name} is not under {prefix}"
        rest = obj.name[len(prefix) :]
        if "/" in rest or not (rest.endswith(".jsonl") or is_manifest(rest)):
            return f"{obj.name} is not a .jsonl dataset or a .json/.yaml manifest directly under {prefix}"
        return None

    def handle(self, obj: UploadedObject) -> UploadOutcome:
        reason = self.accepts(obj)
        if reason:
            logs.info("upload ignored", reason=reason, object=obj.name)
            return UploadOutcome.IGNORED
        job_id = job_id_for(obj.bucket, obj.name, obj.generation)
        with logs.log_context(job_id=job_id):
            current = self._open_job(job_id, obj)
            if current is None:
                return UploadOutcome.DUPLICATE
            return self._validate(current, self._plan(obj))

    def retune(self, job_id: str, model: str | None = None) -> Job:
        """A new job from a finished job's datasets (at the generation validated), manifest settings and
        hyper-parameters, on ``model`` (default: the replacement of the job's base model), validated afresh
        against that model's rules and linked to the original by ``retuned_from``.

        Asking twice for the same model gives the same job, so a repeated command never tunes twice."""
        found = self._store.get(job_id)
        if found is None:
            raise JobNotFound(f"no job {job_id}")
        original = found.value
        if not original.state.terminal:
            raise NotAllowed(f"job {job_id} is {original.state.value}; retune a job once it has ended")
        target = model or _successor_of(original.base_model, self._clock().date())
        spec = get_model(target)
        if spec is None:
            raise NotAllowed(f"{target!r} is not a model Tunedrop can tune: use one of {', '.join(registry().names())}")
        now = self._clock()
        fresh = replace(
            new_job(
                job_id=retune_job_id(job_id, spec.name),
                bucket=original.bucket,
                object_name=original.object_name,
                generation=original.generation,
                base_model=spec.name,
                now=now,
                priority=original.priority,
                hyper_parameters=dict(original.hyper_parameters),
                labels=dict(original.labels),
                upload_event_id=f"retune:{job_id}",
            ),
            retuned_from=job_id,
        )
        with logs.log_context(job_id=fresh.job_id):
            if self._store.create(fresh):
                logs.info("retune requested", retuned_from=job_id, base_model=spec.name)
            current = self._store.get(fresh.job_id)
            if current is None:
                raise TransientError(f"job {fresh.job_id} vanished right after it was created")
            if current.value.state is JobState.VALIDATING:
                # A bare upload is read at the generation its job validated; a manifest's datasets as named.
                settings = Manifest(
                    training_uri=original.dataset_uri,
                    validation_uri=original.validation_uri,
                    base_model=spec.name,
                    hyper_parameters=dict(original.hyper_parameters),
                    display_name=original.display_name,
                    labels=dict(original.labels),
                    priority=original.priority,
                )
                bare = not original.manifest_uri
                plan = _Plan(settings, original.generation if bare else None, manifest_uri=original.manifest_uri)
                self._validate(current, plan)
            latest = self._store.get(fresh.job_id)
            assert latest is not None
            return latest.value

    def _open_job(self, job_id: str, obj: UploadedObject) -> Versioned[Job] | None:
        """The job to validate, or None when this delivery has nothing left to do."""
        now = self._clock()
        fresh = new_job(
            job_id=job_id,
            bucket=obj.bucket,
            object_name=obj.name,
            generation=obj.generation,
            base_model=_first(obj.metadata, BASE_MODEL_KEYS) or self._settings.base_model,
            priority=_priority(obj.metadata),
            upload_event_id=obj.event_id,
            now=now,
        )
        created = self._store.create(fresh)
        if created:
            logs.info("job created", state=JobState.VALIDATING.value, dataset_uri=fresh.dataset_uri)
        current = self._store.get(job_id)
        if current is None:
            raise TransientError(f"job {job_id} vanished right after it was created")
        job = current.value
        if job.state is not JobState.VALIDATING:
            if job.completion_pending:
                self._completions.publish(job)
            logs.info("duplicate upload notification", state=job.state.value)
            return None
        same_delivery = bool(obj.event_id) and job.upload_event_id == obj.event_id
        if not created and not same_delivery and now - job.updated_at < VALIDATION_LEASE:
            # Another delivery is validating this upload; if it dies, ours takes over later.
            raise TransientError(f"job {job_id} is being validated by another delivery")
        return current

    def _plan(self, obj: UploadedObject) -> _Plan:
        """What to validate and tune: the uploaded dataset, or what the uploaded manifest names."""
        metadata = obj.metadata
        base_model = _first(metadata, BASE_MODEL_KEYS) or self._settings.base_model
        if not is_manifest(obj.name):
            # A bare dataset: its object metadata says what a manifest would.
            settings = Manifest(
                training_uri=f"gs://{obj.bucket}/{obj.name}",
                base_model=base_model,
                hyper_parameters={k: metadata[k].strip() for k in HYPER_PARAMETER_KEYS if metadata.get(k, "").strip()},
                display_name=metadata.get("display_name", "").strip()[:128],
                priority=_priority(metadata),
            )
            return _Plan(settings, training_generation=obj.generation, issues=_metadata_issues(metadata))
        manifest_uri = f"gs://{obj.bucket}/{obj.name}"
        try:
            with self._blobs.open(obj.bucket, obj.name, obj.generation) as reader:
                raw = reader.read(MAX_MANIFEST_BYTES + 1)
        except ObjectMissing as exc:
            missing = Issue(0, "object_missing", f"{exc} It was deleted or replaced before validation.")
            return _Plan(Manifest(base_model=base_model), manifest_uri=manifest_uri, issues=[missing])
        manifest, issues = parse_manifest(raw, name=obj.name, bucket=obj.bucket)
        return _Plan(
            replace(manifest, base_model=manifest.base_model or base_model),
            manifest_uri=manifest_uri,
            issues=[replace(i, file=manifest_uri) for i in issues],
        )

    def _validate(self, current: Versioned[Job], plan: _Plan) -> UploadOutcome:
        job = current.value
        settings = plan.settings
        spec = get_model(settings.base_model)
        if spec is not None:  # recorded and sent to Vertex AI by its registry id, whatever alias was typed
            settings = replace(settings, base_model=spec.name)
        with ExitStack() as stack:
            train = self._open(stack, settings.training_uri, plan.training_generation, plan.issues)
            validation = self._open(stack, settings.validation_uri, None, plan.issues)
            if train is not None:
                report = validate_dataset(
                    train,
                    file=settings.training_uri,
                    model=settings.base_model,
                    validation=validation,
                    validation_file=settings.validation_uri,
                    hyper_parameters=settings.hyper_parameters,
                    token_counter=self._token_counter,
                    uri_checker=self._uri_checker,
                    region=self._settings.region,
                    on=self._clock().date(),
                    retiring_days=self._settings.model_retiring_days,
                )
            else:
                report = ValidationReport(file=settings.training_uri or plan.manifest_uri)
        for issue in plan.issues:
            report.add(issue)
        report_uri = self._write_reports(job, report)
        now = self._clock()
        planned: dict[str, Any] = {
            "validation": report.summary(),
            "report_uri": report_uri,
            "manifest_uri": plan.manifest_uri,
            **asdict(settings),
            "hyper_parameters": _typed_hyper_parameters(settings.hyper_parameters),
        }
        if MODEL_RETIRING in report.warning_counts and MODEL_RETIRING not in job.warnings:
            planned["warnings"] = [*job.warnings, MODEL_RETIRING]
        if report.valid:
            moved = job.moved_to(JobState.QUEUED, now, "validation passed", enqueued_at=now, **planned)
        else:
            problems = _plural(report.error_count, "problem")
            where = settings.training_uri or plan.manifest_uri
            error = {
                "code": "INVALID_DATASET",
                "message": f"{problems} in {where}; see {report_uri}",
                "first_errors": report.first_errors(),
            }
            closed = next((i for i in report.issues if i.code in MODEL_CLOSED_CODES), None)
            if closed is not None:
                # The model, not the data, is what the user must change first: say so in the code.
                error["code"] = closed.code
                error["message"] = f"{closed.message} Validation found {problems} in {where}; see {report_uri}"
            moved = job.moved_to(
                JobState.REJECTED, now, f"validation found {problems}", ended_at=now, error=error, **planned
            )
        if not self._store.replace(moved, current.version):
            latest = self._store.get(job.job_id)
            if latest is not None and latest.value.state is not JobState.VALIDATING:
                return UploadOutcome.DUPLICATE  # cancelled, or finished by another delivery meanwhile
            raise TransientError(f"job {job.job_id} changed while it was being validated")
        logs.info("job validated", state=moved.state.value, errors=report.error_count, examples=report.example_count)
        if moved.state is JobState.QUEUED:
            self._lifecycle.emit(moved, "queued", reason="validation passed")
            self._publisher.publish(
                self._settings.dispatch_topic,
                json.dumps({"reason": "queued", "job_id": job.job_id}).encode(),
                {},
            )
            return UploadOutcome.QUEUED
        self._completions.publish(moved)
        return UploadOutcome.REJECTED

    def _open(self, stack: ExitStack, uri: str, generation: str | None, issues: list[Issue]) -> IO[bytes] | None:
        """A reader of a gs:// dataset of the bucket, or None with the reason added to `issues`."""
        if not uri:
            return None
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        try:
            return stack.enter_context(self._blobs.open(bucket, name, generation))
        except ObjectMissing as exc:
            issues.append(Issue(0, "object_missing", f"{exc} Upload it, or fix the path that names it.", file=uri))
            return None

    def _write_reports(self, job: Job, report: ValidationReport) -> str:
        """reports/<job_id>.json for programs and reports/<job_id>.md for people; returns the JSON's URI."""
        stem = f"{self._settings.reports_prefix}{job.job_id}"
        body = json.dumps({"job_id": job.job_id, **report.to_dict()}, indent=2, default=str).encode()
        uri = self._blobs.write(self._settings.bucket, f"{stem}.json", body, "application/json")
        markdown = render_markdown(report).encode()
        self._blobs.write(self._settings.bucket, f"{stem}.md", markdown, "text/markdown; charset=utf-8")
        return uri


@dataclass(frozen=True)
class _Plan:
    """What a job tunes (a manifest, or its equivalent from a bare upload's metadata), plus where it came from."""

    settings: Manifest
    training_generation: str | None = None  # a bare upload is read at the notified generation
    manifest_uri: str = ""
    issues: list[Issue] = field(default_factory=list)


def _typed_hyper_parameters(raw: dict[str, Any]) -> dict[str, Any]:
    """Hyper-parameters as numbers, parsed the way validation read them (metadata arrives as text,
    an adapter size may be spelled "four" or "ADAPTER_SIZE_FOUR")."""
    parse = {"epochs": as_int, "adapter_size": adapter_size, "learning_rate_multiplier": as_float}
    typed: dict[str, Any] = {}
    for key, value in raw.items():
        number = parse[key](value) if key in parse else None
        typed[key] = value if number is None else number
    return typed


def retune_job_id(original_job_id: str, model: str) -> str:
    """The id of the job that re-tunes ``original_job_id`` on ``model``: stable, so asking twice is one job.
    Like every job id it is a valid Vertex AI label value (lowercase, digits, dashes; at most 63)."""
    digest = hashlib.sha256(f"{original_job_id}#retune#{model}".encode()).hexdigest()[:12]
    stem = original_job_id.rsplit("-", 1)[0][:36].strip("-") or "dataset"
    return f"{stem}-r-{digest}"


def _successor_of(base_model: str, on: date) -> str:
    spec = get_model(base_model)
    successor = registry().successor(spec, on) if spec else None
    if successor is None:
        raise NotAllowed(f"{base_model} has no replacement that can be tuned: name the model to tune on (--model)")
    return successor.name


def _first(metadata: dict[str, str], keys: tuple[str, ...]) -> str:
    for key in keys:
        if metadata.get(key, "").strip():
            return metadata[key].strip()
    return ""


def _priority(metadata: dict[str, str]) -> int:
    raw = _first(metadata, PRIORITY_KEYS)
    if not _WHOLE_NUMBER.fullmatch(raw):
        return 0  # when set, reported as a metadata problem by _metadata_issues
    return max(-1000, min(1000, int(raw)))


def _metadata_issues(metadata: dict[str, str]) -> list[Issue]:
    raw = _first(metadata, PRIORITY_KEYS)
    if raw and not _WHOLE_NUMBER.fullmatch(raw):
        return [
            Issue(
                0,
                "bad_metadata",
                f"Object metadata priority={raw!r} is not a whole number: "
                "set it to an integer such as 10, or remove it.",
            )
        ]
    return []


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
