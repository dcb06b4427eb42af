"""Upload trigger: one new dataset object becomes one job, validated and QUEUED or REJECTED."""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import IO, Any

from shared import logs
from shared.clock import Clock
from shared.config import Settings
from shared.errors import JobNotFound, NotAllowed, TransientError
from shared.evaluation import EVALUATION_REGIONS, evaluation_asked
from shared.gate import gate_of
from shared.jobs import HistoryEntry, Job, JobState, job_id_for, new_job
from shared.manifest import (
    MAX_MANIFEST_BYTES,
    TEAM_NAME_SHAPE,
    ContinueFrom,
    Manifest,
    TeamPrefixes,
    is_manifest,
    parse_manifest,
    quoted,
    settings_from_metadata,
)
from shared.policy import violations
from shared.ports import BlobStore, DocumentRefused, JobStore, ObjectInfo, ObjectMissing, Publisher, Versioned
from shared.services.completions import CompletionNotifier
from shared.services.effects import JobEffects
from shared.services.lifecycle import LifecycleEvents
from shared.services.operations import OperatorRequest
from shared.services.slots import SlotLedger
from shared.validation import Issue, TokenCounter, UriChecker, ValidationReport, render_markdown, validate_dataset
from shared.validation.registry import ModelStatus, get_model, registry

VALIDATION_LEASE = timedelta(minutes=15)
MODEL_RETIRING = "model_retiring"
# Tunedrop's copies of validated datasets, which Vertex AI reads; a bucket lifecycle rule deletes them
# (deploy/terraform/modules/tunedrop/storage.tf).
STAGING_PREFIX = "tunedrop-staging/"
# Failures of the platform, not of the upload: raised so that Pub/Sub delivers the notification again.
# OSError covers the network's own errors (a reset connection, requests' errors), as ConnectionError did.
_INFRASTRUCTURE_ERRORS = (TransientError, OSError)
_MODEL_PATH = re.compile(
    r"(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?publishers/google/models/(?P<model>[^/@]+)(?:@[^/]*)?"
)
MODEL_CLOSED_CODES = frozenset(status.error_code for status in ModelStatus if status.error_code)


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
        self._teams = TeamPrefixes(settings.incoming_prefix, settings.default_team)
        # Upload moves no job that holds a slot, but its moves are settled like every other service's.
        self._effects = JobEffects(SlotLedger(store, clock), completions, lifecycle)

    def accepts(self, obj: UploadedObject) -> str | None:
        """None when the object is Tunedrop's to answer (everything under the incoming prefix), else why not.

        An object under the prefix that Tunedrop cannot take still becomes a job, REJECTED with a report
        saying what it accepts (see `_object_problem`): silence is never an answer."""
        prefix = self._settings.incoming_prefix
        if obj.bucket != self._settings.bucket:
            return f"bucket {obj.bucket} is not the datasets bucket {self._settings.bucket}"
        if not obj.name.startswith(prefix):
            return f"{obj.name} is not under {prefix}"
        if obj.name.endswith("/"):
            return f"{obj.name} is a folder placeholder"
        return None

    def _object_problem(self, obj: UploadedObject) -> Issue | None:
        """Why Tunedrop cannot take an object under the incoming prefix, or None when it can."""
        prefix = self._settings.incoming_prefix
        parts = obj.name[len(prefix) :].split("/")
        uri = f"gs://{obj.bucket}/{obj.name}"
        if len(parts) > 2:
            return Issue(
                0,
                "nested_too_deep",
                f"{quoted(obj.name)} is {len(parts) - 1} folders deep; Tunedrop takes uploads directly under {prefix} "
                f"or one team folder below it ({prefix}<team>/<file>): move it up.",
                file=uri,
            )
        if self._teams.owner(obj.name) is None:
            return Issue(
                0,
                "bad_team_folder",
                f"{quoted(parts[0])} is not a team name ({TEAM_NAME_SHAPE}); Tunedrop takes uploads in a team's "
                f"folder ({prefix}<team>/<file>) or directly under {prefix}: move it.",
                file=uri,
            )
        name = parts[-1].lower()
        if not (name.endswith(".jsonl") or is_manifest(name)):
            return Issue(
                0,
                "unsupported_object",
                f"{quoted(parts[-1])} is not something Tunedrop tunes from: upload a .jsonl dataset (uncompressed, "
                "one JSON example per line) or a .json/.yaml manifest naming datasets; "
                "`tunedrop validate FILE` checks a file first.",
                file=uri,
            )
        return None

    def _normalised_model(self, name: str) -> tuple[str, Issue | None]:
        """The registry id of a base model as typed (any case, an alias, a resource path of this project and
        region), so Vertex AI gets the id and the queue can find jobs by model; a path naming another project or
        region is a problem. An unknown name stays as typed: validation reports it with the names it knows."""
        path = _MODEL_PATH.fullmatch(name)
        if path is not None and path["project"] is not None:
            project, region = self._settings.project, self._settings.region
            if (path["project"], path["location"]) != (project, region):
                return name, Issue(
                    0,
                    "bad_base_model",
                    f"base_model {quoted(name)} names project {quoted(path['project'])} in "
                    f"{quoted(path['location'])}; Tunedrop tunes in project {project}, region {region}: "
                    "give the model's name only, such as gemini-3.5-flash.",
                    "base_model",
                )
        spec = get_model(path["model"] if path is not None else name)
        return (spec.name if spec is not None else name), None

    def handle(self, obj: UploadedObject) -> UploadOutcome:
        # The default base model must be tunable today, or the upload function stops with one message (and the
        # notification waits to be delivered again); the other functions, which never use it, keep running.
        self._settings.check_base_model(self._clock().date())
        reason = self.accepts(obj)
        if reason:
            logs.info("upload ignored", reason=reason, object=obj.name)
            return UploadOutcome.IGNORED
        job_id = job_id_for(obj.bucket, obj.name, obj.generation)
        with logs.log_context(job_id=job_id):
            current = self._open_job(job_id, obj)
            if current is None:
                return UploadOutcome.DUPLICATE
            return self._validate(current, self._safe_plan(obj))

    def retune(self, job_id: str, model: str | None = None, request: OperatorRequest | None = None) -> Job:
        """A new job from a finished job's datasets (at the generation validated), manifest settings and
        hyper-parameters, on ``model`` (default: the replacement of the job's base model), validated afresh
        against that model's rules and linked to the original by ``retuned_from``. ``request``: the operator who
        asks and why, recorded on the new job (``requested_by``, ``request_reason``) and its first history entry.

        Asking twice for the same model gives the same job, so a repeated command never tunes twice."""
        original = self._retunable(job_id)
        target = model or _successor_of(original.base_model, self._clock().date())
        spec = get_model(target)
        if spec is None:
            raise NotAllowed(f"{target!r} is not a model Tunedrop can tune: use one of {', '.join(registry().names())}")
        fresh = self._retune_job(original, spec.name, request)
        with logs.log_context(job_id=fresh.job_id):
            if self._store.create(fresh):
                logs.info(
                    "retune requested", retuned_from=job_id, base_model=spec.name, requested_by=fresh.requested_by
                )
            current = self._store.get(fresh.job_id)
            if current is None:
                raise TransientError(f"job {fresh.job_id} vanished right after it was created")
            if current.value.state is JobState.VALIDATING:
                self._validate(current, _retune_plan(original, spec.name))
            latest = self._store.get(fresh.job_id)
            assert latest is not None
            return latest.value

    def _retune_job(self, original: Job, model: str, request: OperatorRequest | None) -> Job:
        """The new job of a retune, VALIDATING: its first history entry says who asked for it and why."""
        now = self._clock()
        fresh = new_job(
            job_id=retune_job_id(original.job_id, model),
            bucket=original.bucket,
            object_name=original.object_name,
            generation=original.generation,
            base_model=model,
            now=now,
            priority=original.priority,
            hyper_parameters=dict(original.hyper_parameters),
            labels=dict(original.labels),
            upload_event_id=f"retune:{original.job_id}",
        ).with_fields(
            retuned_from=original.job_id,
            # A job recorded before teams existed has team "": it was the default team's, and so is the new one.
            team=original.team or self._settings.default_team,
            requested_by=request.actor if request else "",
            request_reason=request.reason if request else "",
        )
        if request is None:
            return fresh
        first = HistoryEntry(
            at=now,
            from_state=None,
            to_state=JobState.VALIDATING.value,
            reason=f"retune of {original.job_id} on {model} asked by an operator: {request.reason}",
            actor=request.actor,
        )
        # The job's first entry, not a move: it is being created, so no transition guard applies.
        return replace(fresh, history=(first,))

    def _retunable(self, job_id: str) -> Job:
        """The job to retune; NotAllowed unless it ended with datasets that passed validation (or failed only
        because their model closed)."""
        found = self._store.get(job_id)
        if found is None:
            raise JobNotFound(f"no job {job_id}")
        original = found.value
        if not original.state.terminal:
            raise NotAllowed(f"job {job_id} is {original.state.value}; retune a job once it has ended")
        errors = set((original.validation or {}).get("error_counts") or {})
        passed = bool((original.validation or {}).get("valid"))
        if not original.training_uri or not (passed or (errors and errors <= MODEL_CLOSED_CODES)):
            raise NotAllowed(
                f"job {job_id} has no validated dataset to tune again (its own problems: "
                f"{', '.join(sorted(errors)) or 'validation never finished'}); fix and upload it again."
            )
        return original

    def _open_job(self, job_id: str, obj: UploadedObject) -> Versioned[Job] | None:
        """The job to validate, or None when this delivery has nothing left to do."""
        now = self._clock()
        fresh = new_job(
            job_id=job_id,
            bucket=obj.bucket,
            object_name=obj.name,
            generation=obj.generation,
            # Recorded as given until validation settles it (typed, normalised); the job id does not depend on it.
            base_model=self._settings.base_model,
            upload_event_id=obj.event_id,
            now=now,
        )
        # "" when the folder is no team's: such an upload is rejected (bad_team_folder).
        fresh = fresh.with_fields(team=self._teams.owner(obj.name) or "")
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

    def _safe_plan(self, obj: UploadedObject) -> _Plan:
        """The plan; a manifest or metadata that breaks its parser becomes a problem of the plan, not a crash."""
        try:
            return self._plan(obj)
        except _INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # the upload broke the parser: record it, never loop on it
            logs.error("reading the upload's settings failed on this input", error=f"{type(exc).__name__}: {exc}"[:500])
            problem = Issue(
                0,
                "unprocessable_input",
                f"Tunedrop could not read this upload's settings ({type(exc).__name__}: {quoted(str(exc))}): check "
                "the manifest or the object metadata.",
            )
            return _Plan(
                Manifest(base_model=self._settings.base_model),
                issues=[problem],
                object_uri=f"gs://{obj.bucket}/{obj.name}",
            )

    def _plan(self, obj: UploadedObject) -> _Plan:
        """What to validate and tune: the uploaded dataset, or what the uploaded manifest names."""
        problem = self._object_problem(obj)
        if problem is not None:
            return _Plan(Manifest(base_model=self._settings.base_model), issues=[problem], object_uri=problem.file)
        metadata = obj.metadata
        from_metadata, metadata_issues = settings_from_metadata(metadata, f"gs://{obj.bucket}/{obj.name}")
        base_model = from_metadata.base_model or self._settings.base_model
        if not is_manifest(obj.name):
            # A bare dataset: its object metadata says what a manifest would.
            settings = replace(from_metadata, base_model=base_model)
            return _Plan(settings, training_generation=obj.generation, issues=metadata_issues)
        manifest_uri = f"gs://{obj.bucket}/{obj.name}"
        try:
            with self._blobs.open(obj.bucket, obj.name, obj.generation) as reader:
                raw = reader.read(MAX_MANIFEST_BYTES + 1)
        except ObjectMissing as exc:
            missing = Issue(0, "object_missing", f"{exc} It was deleted or replaced before validation.")
            return _Plan(Manifest(base_model=base_model), manifest_uri=manifest_uri, issues=[missing])
        manifest, issues = parse_manifest(raw, name=obj.name, bucket=obj.bucket, teams=self._teams)
        return _Plan(
            replace(manifest, base_model=manifest.base_model or self._continued_model(manifest) or base_model),
            manifest_uri=manifest_uri,
            issues=[replace(i, file=manifest_uri) for i in issues],
        )

    def _validate(self, current: Versioned[Job], plan: _Plan) -> UploadOutcome:
        job = current.value
        settings = plan.settings
        model, model_problem = self._normalised_model(settings.base_model)
        settings = replace(settings, base_model=model)
        if model_problem is not None:
            plan = replace(plan, issues=[*plan.issues, model_problem])
        plan = replace(plan, issues=[*plan.issues, *self._policy_issues(job, plan, settings)])
        plan = replace(plan, issues=[*plan.issues, *self._option_issues(plan, settings)])
        plan = replace(plan, issues=[*plan.issues, *self._alias_issues(job, plan, settings)])
        settings = replace(
            settings,
            service_account=settings.service_account or self._settings.default_tuning_service_account,
            encryption_key=settings.encryption_key or self._settings.default_encryption_key,
        )
        plan = replace(plan, issues=[*plan.issues, *_model_option_issues(plan, settings)])
        plan = replace(plan, issues=[*plan.issues, *_evaluation_issues(plan, settings, self._settings.region)])
        continuation, continuation_issues = self._continuation(job, plan, settings)
        plan = replace(plan, issues=[*plan.issues, *continuation_issues])
        pinned: dict[str, ObjectInfo] = {}
        report = self._report(plan, settings, pinned)
        kept = self._keep(job, settings, pinned, report) if report.valid else {}
        report_uri = self._write_reports(job, report)
        planned: dict[str, Any] = {
            "validation": report.summary(),
            "report_uri": report_uri,
            "manifest_uri": plan.manifest_uri,
            **{key: value for key, value in asdict(settings).items() if key != "continue_from"},
            **continuation,
            **kept,
        }
        if settings.evaluation is not None:
            # Beside the job's reports, in its team's folder: the team reads it; Vertex AI adds one folder a run.
            output = f"gs://{self._settings.bucket}/{self._report_stem(job)}/evaluation/"
            planned["evaluation"] = {**settings.evaluation, "output_uri_prefix": output}
        if MODEL_RETIRING in report.warning_counts and MODEL_RETIRING not in job.warnings:
            planned["warnings"] = [*job.warnings, MODEL_RETIRING]
        moved = self._record(current, self._outcome(job, plan, report, planned), report_uri)
        if moved is None:
            latest = self._store.get(job.job_id)
            if latest is not None and latest.value.state is not JobState.VALIDATING:
                return UploadOutcome.DUPLICATE  # cancelled, or finished by another delivery meanwhile
            raise TransientError(f"job {job.job_id} changed while it was being validated")
        logs.info("job validated", state=moved.state.value, errors=report.error_count, examples=report.example_count)
        self._effects.settle(moved)
        if moved.state is JobState.REJECTED:
            return UploadOutcome.REJECTED
        self._publisher.publish(
            self._settings.dispatch_topic, json.dumps({"reason": "queued", "job_id": job.job_id}).encode(), {}
        )
        return UploadOutcome.QUEUED

    def _alias_issues(self, job: Job, plan: _Plan, settings: Manifest) -> list[Issue]:
        """promote_as may name a new alias, or one of the job's own team: an alias belongs to its team."""
        if not settings.promote_as:
            return []
        found = self._store.read_alias(settings.promote_as)
        team = job.team or self._settings.default_team
        if found is None or found.value.team == team:
            return []
        return [
            Issue(
                0,
                "alias_other_team",
                f"promote_as {settings.promote_as} is team {found.value.team}'s alias, and this is a job of team "
                f"{team}: choose another name.",
                "$.promote_as",
                file=plan.manifest_uri,
            )
        ]

    def _policy_issues(self, job: Job, plan: _Plan, settings: Manifest) -> list[Issue]:
        """A value beyond the team's policy, each an error naming the policy: never lowered to fit."""
        team = job.team or self._settings.default_team
        epochs = settings.hyper_parameters.get("epochs")
        found = violations(
            team,
            self._settings.team_policies.for_team(team),
            base_model=settings.base_model,
            priority=settings.priority,
            epochs=epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None,
            label_keys=settings.labels,
            prices=self._settings.tuning_prices,
        )
        # A bare upload's values come from its object metadata: there is no manifest path to point at.
        return [Issue(0, v.code, v.message, v.path if plan.manifest_uri else "", file=plan.manifest_uri) for v in found]

    def _continued_model(self, manifest: Manifest) -> str:
        """The base model of the job a manifest continues from ("" when none, or not found): a continuation
        tunes the earlier job's base model, so its manifest need not name one."""
        if manifest.continue_from is None:
            return ""
        earlier = self._continued_job(manifest.continue_from)
        return "" if earlier is None else earlier.value.base_model

    def _continued_job(self, asked: ContinueFrom) -> Versioned[Job] | None:
        """The earlier job continue_from names, by its id or by the tuned model it made."""
        if asked.job is not None:
            return self._store.get(asked.job)
        return self._store.with_tuned_model(asked.model or "")

    def _continuation(self, job: Job, plan: _Plan, settings: Manifest) -> tuple[dict[str, str], list[Issue]]:
        """The job fields of a continuous tuning (continue_from), or why the earlier job cannot be continued:
        it must be the same team's, SUCCEEDED with a tuned model, on the same base model, tuned on or after
        2025-07-11, with the same CMEK key, and have the checkpoint asked for (see EARLIEST_CONTINUABLE)."""
        asked = settings.continue_from
        if asked is None:
            return {}, []
        found = self._continued_job(asked)
        why = "" if found is not None else f"there is no job {quoted(asked.job)}"
        if found is None and asked.model is not None:
            why = (
                f"no Tunedrop job tuned {quoted(asked.model, 300)}; Tunedrop continues only models its jobs tuned "
                "(it checks their team, base model, key and checkpoints): name it as `tunedrop job` shows it"
            )
        if found is not None:
            why = _why_not_continuable(found.value, job.team or self._settings.default_team, settings, asked)
        if why:
            path = "$.continue_from" if plan.manifest_uri else ""
            code = "continue_from_not_found" if found is None else "continue_from_not_allowed"
            message = f"continue_from: {why}."
            return {}, [Issue(0, code, message, path, file=plan.manifest_uri)]
        assert found is not None
        earlier = found.value
        return {
            "continued_from": earlier.job_id,
            "pre_tuned_model": earlier.tuned_model,
            "pre_tuned_checkpoint": asked.checkpoint_id or "",
        }, []

    def _option_issues(self, plan: _Plan, settings: Manifest) -> list[Issue]:
        """A service account or key the operators have not allowed (TUNEDROP_TUNING_SERVICE_ACCOUNTS,
        TUNEDROP_ENCRYPTION_KEYS), each an error naming what is allowed."""
        asked = (
            ("service_account", settings.service_account, self._settings.tuning_service_accounts),
            ("encryption_key", settings.encryption_key, self._settings.encryption_keys),
        )
        issues = []
        for key, value, allowed in asked:
            if not value or value in allowed:
                continue
            listed = ", ".join(allowed) if allowed else "none: ask an operator to allow it"
            issues.append(
                Issue(
                    0,
                    f"{key}_not_allowed",
                    f"{key} {quoted(value, 200)} is not one the operators allow for tuning jobs; allowed: {listed}.",
                    f"$.{key}" if plan.manifest_uri else "",
                    file=plan.manifest_uri,
                )
            )
        return issues

    def _report(self, plan: _Plan, settings: Manifest, pinned: dict[str, ObjectInfo]) -> ValidationReport:
        """The validation report, with the plan's own problems; an upload whose bytes break a check is reported
        as such (and never retried), while the platform's failures are raised so the delivery is retried."""
        try:
            report = self._check(plan, settings, pinned)
        except _INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # the upload's bytes broke a check: record it, never loop on it
            logs.error("validation failed on this input", error=f"{type(exc).__name__}: {str(exc)[:500]}")
            report = ValidationReport(file=plan.source_uri)
            report.add(
                Issue(
                    0,
                    "unprocessable_input",
                    f"Tunedrop could not process this upload ({type(exc).__name__}: {quoted(str(exc))}). Check it "
                    "with `tunedrop validate`; if that passes, report this to the Tunedrop operators.",
                )
            )
        for issue in plan.issues:
            report.add(issue)
        return report

    def _outcome(self, job: Job, plan: _Plan, report: ValidationReport, planned: dict[str, Any]) -> Job:
        """The job QUEUED (valid) or REJECTED with what validation found."""
        now = self._clock()
        if report.valid:
            return job.moved_to(JobState.QUEUED, now, "validation passed", enqueued_at=now, **planned)
        problems = _plural(report.error_count, "problem")
        where = plan.source_uri
        report_uri = planned["report_uri"]
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
        return job.moved_to(
            JobState.REJECTED, now, f"validation found {problems}", ended_at=now, error=error, **planned
        )

    def _record(self, current: Versioned[Job], moved: Job, report_uri: str) -> Job | None:
        """Write the validated job if nobody moved it meanwhile (``moved`` was made from the job as read):
        the job written, or None."""
        try:
            return self._store.swap(current, lambda _read: moved)
        except DocumentRefused as exc:
            # The database will not hold this outcome (a report summary too large, a value it refuses): record a
            # bare rejection instead, so the upload still ends recorded; the report in the bucket has the details.
            logs.error("job document refused; recording a bare rejection", error=str(exc)[:500])
            now = self._clock()
            bare = current.value.moved_to(
                JobState.REJECTED,
                now,
                "the validation outcome could not be stored",
                ended_at=now,
                report_uri=report_uri,
                validation={"valid": False, "error_counts": {"unstorable_result": 1}},
                error={
                    "code": "unstorable_result",
                    "message": f"Tunedrop could not store this upload's validation outcome; see {report_uri}",
                },
            )
            return self._store.swap(current, lambda _read: bare)

    def _check(self, plan: _Plan, settings: Manifest, pinned: dict[str, ObjectInfo]) -> ValidationReport:
        """Validate what the plan names, each dataset at one generation (recorded in ``pinned``); every problem
        with the input ends up in the report."""
        with ExitStack() as stack:
            train = self._open(stack, "training", settings.training_uri, plan.training_generation, plan.issues, pinned)
            validation = self._open(
                stack, "validation", settings.validation_uri, plan.validation_generation, plan.issues, pinned
            )
            held_out = self._open(stack, "evaluation", settings.evaluation_uri, None, plan.issues, pinned)
            if train is None:
                return ValidationReport(file=plan.source_uri)
            trained_on: set[int] = set()
            report = validate_dataset(
                train,
                file=settings.training_uri,
                model=settings.base_model,
                validation=validation,
                validation_file=settings.validation_uri,
                hyper_parameters=settings.hyper_parameters,
                file_size=pinned["training"].size,
                validation_file_size=pinned["validation"].size if "validation" in pinned else None,
                token_counter=self._token_counter,
                uri_checker=self._uri_checker,
                region=self._settings.region,
                on=self._clock().date(),
                retiring_days=self._settings.model_retiring_days,
                strict=self._settings.strict_validation,
                # A length nobody could measure (CountTokens out of quota) is not a reason to reject: validate
                # again on redelivery instead.
                unverified_length="raise",
                example_hashes=trained_on,
            )
            if held_out is not None:
                self._check_held_out(report, held_out, settings, pinned["evaluation"].size, trained_on)
            return report

    def _check_held_out(
        self, report: ValidationReport, held_out: IO[bytes], settings: Manifest, size: int, trained_on: set[int]
    ) -> None:
        """The evaluation gate's held-out dataset: examples of the same rules as the training file's, at least the
        gate's minimum number of them, and none the model is tuned on (an exact line of the training file)."""
        lines: set[int] = set()
        found = validate_dataset(
            held_out,
            file=settings.evaluation_uri,
            model=settings.base_model,
            file_size=size,
            token_counter=self._token_counter,
            uri_checker=self._uri_checker,
            region=self._settings.region,
            unverified_length="raise",
            example_hashes=lines,
        )
        for issue in found.issues:
            if issue.code not in _TRAINING_COUNT_CODES:  # those speak of a training file; the gate's minimum is below
                report.add(replace(issue, file=settings.evaluation_uri))
        shared = len(lines & trained_on)
        if shared:
            report.add(
                Issue(
                    0,
                    "evaluation_overlap",
                    f"{shared} example(s) of the evaluation_dataset are also in the training file: a held-out set "
                    "must be examples the model never saw, or the gate would reward memory. Remove them from one "
                    "of the files.",
                    file=settings.evaluation_uri,
                )
            )
        least = gate_of(settings.gate).min_examples
        most = self._settings.evaluation_max_examples
        if least > most:
            report.add(
                Issue(
                    0,
                    "manifest_bad_gate",
                    f"gate.min_examples is {least}, and a gate evaluation judges at most {most} examples "
                    "(TUNEDROP_EVALUATION_MAX_EXAMPLES): it could never find the candidate better. Lower min_examples.",
                    "$.gate.min_examples",
                    file=settings.evaluation_uri,
                )
            )
        elif found.example_count < least:
            report.add(
                Issue(
                    0,
                    "evaluation_too_small",
                    f"The evaluation_dataset has {found.example_count} example(s) and the gate judges on at least "
                    f"{least} (gate.min_examples): add held-out examples, or lower min_examples.",
                    file=settings.evaluation_uri,
                )
            )

    def _open(
        self,
        stack: ExitStack,
        role: str,
        uri: str,
        generation: str | None,
        issues: list[Issue],
        pinned: dict[str, ObjectInfo],
    ) -> IO[bytes] | None:
        """A reader of one generation of a gs:// dataset of the bucket (recorded in ``pinned[role]``), or None
        with the reason added to ``issues``."""
        if not uri:
            return None
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        try:
            info = self._blobs.describe(bucket, name, generation)
            reader = stack.enter_context(self._blobs.open(bucket, name, info.generation))
        except ObjectMissing as exc:
            issues.append(self._missing(uri, generation, str(exc)))
            return None
        pinned[role] = info
        return reader

    def _missing(self, uri: str, generation: str | None, why: str) -> Issue:
        """object_missing when the object is gone, dataset_changed when it was replaced since it was named."""
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        try:
            live = self._blobs.describe(bucket, name) if generation else None
        except ObjectMissing:
            live = None
        if live is not None:
            return Issue(
                0,
                "dataset_changed",
                f"{uri} was replaced (generation {generation} is now {live.generation}) before Tunedrop could keep "
                "what it validated, so nothing of this job is tuned: an upload under incoming/ is a job of its own; "
                "for a dataset a manifest names, drop the manifest again.",
                file=uri,
            )
        return Issue(0, "object_missing", f"{why} Upload it, or fix the path that names it.", file=uri)

    def _keep(
        self, job: Job, settings: Manifest, pinned: dict[str, ObjectInfo], report: ValidationReport
    ) -> dict[str, Any]:
        """Copy each validated generation to Tunedrop's own prefix, created only if absent, so Vertex AI reads
        exactly the bytes validated however long the job waits; the job records generation, checksum and copy.
        A dataset replaced meanwhile (its generation gone) is reported as dataset_changed instead."""
        kept: dict[str, Any] = {}
        roles = (
            ("training", settings.training_uri),
            ("validation", settings.validation_uri),
            ("evaluation", settings.evaluation_uri),
        )
        for role, uri in roles:
            if not uri or role not in pinned:
                continue
            bucket, _, name = uri.removeprefix("gs://").partition("/")
            info = pinned[role]
            # The generation in the name: a redelivery that validated a newer generation copies that one beside.
            destination = f"{STAGING_PREFIX}{job.job_id}/{role}-{info.generation}.jsonl"
            try:
                copy = self._blobs.copy_pinned(bucket, name, info.generation, destination)
            except ObjectMissing as exc:
                report.add(self._missing(uri, info.generation, str(exc)))
                return {}
            kept[f"{role}_generation"] = info.generation
            kept[f"{role}_crc32c"] = info.crc32c
            kept[f"tuning_{role}_uri"] = f"gs://{bucket}/{destination}"
            if copy.crc32c != info.crc32c:
                raise TransientError(f"the copy of {uri} does not match what was validated; copying again")
        return kept

    def _report_stem(self, job: Job) -> str:
        """reports/<team>/<job_id>: where the job's reports (and its evaluation results) are written."""
        return f"{self._settings.reports_prefix}{job.team or self._settings.default_team}/{job.job_id}"

    def _write_reports(self, job: Job, report: ValidationReport) -> str:
        """reports/<team>/<job_id>.json for programs and reports/<team>/<job_id>.md for people, in the folder of the
        job's team (the default team's for a job of none); returns the JSON's URI. Readers follow the job's
        report_uri, so reports written before teams (reports/<job_id>.json) are still found."""
        stem = self._report_stem(job)
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
    validation_generation: str | None = None
    manifest_uri: str = ""
    issues: list[Issue] = field(default_factory=list)
    object_uri: str = ""  # an object Tunedrop cannot take: the report names it

    @property
    def source_uri(self) -> str:
        """The object the report is about: the training dataset, else the manifest, else the upload."""
        return self.settings.training_uri or self.manifest_uri or self.object_uri


# "Use continuous tuning for Gemini models" (docs.cloud.google.com/gemini-enterprise-agent-platform/models/tuning/
# continuous-tuning.md.txt, read 2026-11-30): only supervised-tuned models tuned on or after July 11, 2025 can be
# continued, and a job with a customer-managed key must use the same key as the earlier model's job.
EARLIEST_CONTINUABLE = datetime(2025, 7, 11, tzinfo=UTC)


def _why_not_continuable(earlier: Job, team: str, settings: Manifest, asked: ContinueFrom) -> str:
    """Why the earlier job cannot be continued by this one ("" when it can)."""
    checkpoints = [str(c.get("checkpoint_id")) for c in earlier.checkpoints]
    reasons = [
        (
            earlier.team != team,
            f"job {earlier.job_id} is team {earlier.team}'s; a job continues only its team's",
        ),
        (
            earlier.state is not JobState.SUCCEEDED or not earlier.tuned_model,
            f"job {earlier.job_id} is {earlier.state.value} without a tuned model; only a SUCCEEDED job's model can "
            "be tuned on",
        ),
        (
            earlier.base_model != settings.base_model,
            f"job {earlier.job_id} tuned {earlier.base_model} and this job asks {settings.base_model}; a continuation "
            "tunes the same base model: leave base_model out",
        ),
        (
            earlier.created_at < EARLIEST_CONTINUABLE,
            f"job {earlier.job_id} was tuned before 2025-07-11; Vertex AI continues only models tuned since",
        ),
        (
            earlier.encryption_key != settings.encryption_key,
            f"job {earlier.job_id} was encrypted with {earlier.encryption_key or 'a Google-managed key'} and this job "
            f"with {settings.encryption_key or 'a Google-managed key'}; a continuation must use the same key",
        ),
        (
            bool(asked.checkpoint_id and checkpoints and asked.checkpoint_id not in checkpoints),
            f"job {earlier.job_id} has checkpoints {', '.join(checkpoints)}, not {quoted(asked.checkpoint_id)}",
        ),
    ]
    return next((why for failed, why in reasons if failed), "")


# What validate_dataset says of a training file's size, which a held-out file is not held to.
_TRAINING_COUNT_CODES = frozenset({"empty_dataset", "too_few_examples", "too_many_examples"})


def _evaluation_issues(plan: _Plan, settings: Manifest, region: str) -> list[Issue]:
    """Evaluation during tuning needs a validation dataset and the one region it runs in (shared.evaluation)."""
    if settings.evaluation is None:
        return []
    issues = []
    if not settings.validation_uri:
        issues.append(
            Issue(
                0,
                "evaluation_needs_validation",
                "evaluation asks Vertex AI to evaluate the checkpoints on the validation dataset, and the manifest "
                "names no validation_dataset: add one, or leave evaluation out.",
                "$.evaluation",
                file=plan.manifest_uri,
            )
        )
    if region not in EVALUATION_REGIONS:
        issues.append(
            Issue(
                0,
                "evaluation_not_in_region",
                f"evaluation during tuning (Preview) runs only in {', '.join(sorted(EVALUATION_REGIONS))}, and this "
                f"deployment tunes in {region}: leave evaluation out, or ask an operator.",
                "$.evaluation",
                file=plan.manifest_uri,
            )
        )
    return issues


def _model_option_issues(plan: _Plan, settings: Manifest) -> list[Issue]:
    """What the job's model does not allow of its options (the registry's rules), each the stricter reading of
    what the documentation says: a customer-managed key, or continuing a tuned model, on a model the
    documentation says does not support it, or does not say it does."""
    spec = get_model(settings.base_model)
    if spec is None:
        return []
    issues = []
    if settings.continue_from is not None and not spec.continuous_tuning:
        issues.append(
            Issue(
                0,
                "model_no_continuous_tuning",
                f"{spec.name} is not among the models the documentation lists for continuous tuning (`tunedrop "
                "models` shows which are): leave continue_from out, or continue a job of a model that supports it.",
                "$.continue_from" if plan.manifest_uri else "",
                file=plan.manifest_uri,
            )
        )
    if not settings.encryption_key or spec.cmek:
        return issues
    known = "does not support" if spec.cmek is False else "is not documented to support"
    return [
        *issues,
        Issue(
            0,
            "model_no_cmek",
            f"{spec.name} {known} customer-managed encryption keys (CMEK), and this job would be encrypted with "
            f"{quoted(settings.encryption_key, 200)} (asked for, or the operators' default): choose a model that "
            "supports CMEK, or ask an operator.",
            "$.encryption_key" if plan.manifest_uri else "",
            file=plan.manifest_uri,
        ),
    ]


def _retune_plan(original: Job, model: str) -> _Plan:
    """The original's datasets at the generations it validated (a bare upload's own, if older), on ``model``."""
    settings = Manifest(
        training_uri=original.training_uri,
        validation_uri=original.validation_uri,
        base_model=model,
        hyper_parameters=dict(original.hyper_parameters),
        display_name=original.display_name,
        labels=dict(original.labels),
        priority=original.priority,
        description=original.description,
        export_last_checkpoint_only=original.export_last_checkpoint_only,
        service_account=original.service_account,
        encryption_key=original.encryption_key,
        evaluation=evaluation_asked(original.evaluation),
    )
    bare = not original.manifest_uri
    return _Plan(
        settings,
        original.training_generation or (original.generation if bare else None),
        validation_generation=original.validation_generation or None,
        manifest_uri=original.manifest_uri,
    )


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


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
