"""Hostile and careless uploads end recorded (REJECTED with a code and a report), never as an exception
that Pub/Sub would redeliver forever; only infrastructure failures raise."""

from __future__ import annotations

import io
from typing import Any

import pytest

from shared.errors import TransientError
from shared.jobs import JobState, job_id_for
from shared.services.upload import UploadOutcome
from tests.fakes import Harness

ALIAS_BOMB = b"""training_dataset: datasets/t.jsonl
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
labels: {team: *f}
"""

MANIFESTS: list[tuple[str, bytes, str]] = [
    ("alias-bomb.yaml", ALIAS_BOMB, "manifest_not_yaml"),
    (
        "deep.json",
        b'{"training_dataset": "datasets/t.jsonl", "labels": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
        "manifest_too_deep",
    ),
    (
        "deep.yaml",
        b"training_dataset: datasets/t.jsonl\nlabels: " + b"[" * 30_000 + b"]" * 30_000 + b"\n",
        "manifest_too_deep",
    ),
    (
        "bigint.json",
        b'{"training_dataset": "datasets/t.jsonl", "priority": ' + b"9" * 5000 + b"}",
        "manifest_bad_value",
    ),
    ("bigint.yaml", b"training_dataset: datasets/t.jsonl\npriority: " + b"9" * 5000 + b"\n", "manifest_bad_value"),
    ("mixed-keys.yaml", b"training_dataset: datasets/t.jsonl\n1: x\nfoo: y\n", "manifest_unknown_key"),
    (
        "nested-array.yaml",
        b"training_dataset: datasets/t.jsonl\nhyper_parameters: {epochs: [[1]]}\n",
        "manifest_too_deep",
    ),
    ("list-value.yaml", b"training_dataset: datasets/t.jsonl\nhyper_parameters: {epochs: [1]}\n", "manifest_bad_value"),
    ("reserved-field.yaml", b"training_dataset: datasets/t.jsonl\nlabels: {__name__: x}\n", "manifest_bad_label"),
    (
        "int64.yaml",
        b"training_dataset: datasets/t.jsonl\nhyper_parameters: {epochs: 99999999999999999999}\n",
        "manifest_bad_value",
    ),
    (
        "label-newline.json",
        b'{"training_dataset": "datasets/t.jsonl", "labels": {"team": "a\\n"}}',
        "manifest_bad_label",
    ),
    ("reserved-label.yaml", b"training_dataset: datasets/t.jsonl\nlabels: {tunedrop_job: x}\n", "manifest_bad_label"),
    (
        "too-many-labels.yaml",
        b"training_dataset: datasets/t.jsonl\nlabels: {" + b", ".join(b"k%d: v" % i for i in range(63)) + b"}\n",
        "manifest_bad_label",
    ),
    ("http-dataset.yaml", b"training_dataset: http://example.com/t.jsonl\n", "manifest_bad_dataset"),
    ("control-name.yaml", b'training_dataset: datasets/t.jsonl\ndisplay_name: "a\\x1b[31mb"\n', "manifest_bad_value"),
    ("timestamp-name.yaml", b"training_dataset: datasets/t.jsonl\ndisplay_name: 2026-01-01\n", "manifest_bad_value"),
]


def upload_manifest(h: Harness, name: str, body: bytes) -> Any:
    h.blobs.put(
        "ds",
        "datasets/t.jsonl",
        b'{"contents":[{"role":"user","parts":[{"text":"q"}]},{"role":"model","parts":[{"text":"a"}]}]}\n',
    )
    obj = h.put_dataset(name, body)
    outcome = h.app.uploads.handle(obj)
    return outcome, h.job(job_id_for(obj.bucket, obj.name, obj.generation))


@pytest.mark.parametrize(("name", "body", "code"), MANIFESTS, ids=[m[0] for m in MANIFESTS])
def test_a_hostile_manifest_is_rejected_with_its_code(harness: Harness, name: str, body: bytes, code: str) -> None:
    outcome, job = upload_manifest(harness, name, body)
    assert outcome is UploadOutcome.REJECTED and job.state is JobState.REJECTED
    assert code in job.validation["error_counts"], job.validation["error_counts"]
    report = harness.blobs.read("ds", f"reports/default/{job.job_id}.json")
    assert len(report) < 200_000  # an alias bomb never reaches the report expanded
    (event,) = harness.completions()
    assert event.json()["state"] == "REJECTED"


@pytest.mark.parametrize(
    "metadata",
    [
        {"epochs": "²"},
        {"epochs": "+-3"},
        {"priority": "9" * 5000},
        {"learning_rate_multiplier": "nan"},
        {"adapter_size": "eleventy"},
        {"display_name": "x" * 129},
        {"base_model": "gemini 3.5 flash"},
    ],
)
def test_odd_object_metadata_is_rejected_not_redelivered(harness: Harness, metadata: dict[str, str]) -> None:
    obj = harness.put_dataset("a.jsonl", metadata=metadata)
    assert harness.app.uploads.handle(obj) is UploadOutcome.REJECTED
    job = harness.job(job_id_for(obj.bucket, obj.name, obj.generation))
    assert job.validation["error_counts"] == {"bad_metadata": 1}
    message = job.error["first_errors"][0]["message"]  # type: ignore[index]
    assert len(message) < 300  # user text quoted in a message is cut


def test_a_check_that_crashes_on_the_input_rejects_instead_of_looping(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("shared.services.upload.validate_dataset", crash)
    obj = harness.put_dataset("a.jsonl")
    assert harness.app.uploads.handle(obj) is UploadOutcome.REJECTED
    job = harness.job(job_id_for(obj.bucket, obj.name, obj.generation))
    assert job.validation["error_counts"] == {"unprocessable_input": 1}
    assert "RecursionError" in job.error["first_errors"][0]["message"]  # type: ignore[index]


def test_an_infrastructure_failure_still_raises_for_redelivery(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise TransientError("reading gs://ds/incoming/a.jsonl failed: connection reset")

    monkeypatch.setattr("shared.services.upload.validate_dataset", unavailable)
    obj = harness.put_dataset("a.jsonl")
    with pytest.raises(TransientError):
        harness.app.uploads.handle(obj)
    assert harness.job(job_id_for(obj.bucket, obj.name, obj.generation)).state is JobState.VALIDATING


def test_a_validation_that_never_finishes_fails_after_the_bound(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "shared.services.upload.validate_dataset", lambda *a, **k: (_ for _ in ()).throw(TransientError("down"))
    )
    obj = harness.put_dataset("a.jsonl")
    with pytest.raises(TransientError):
        harness.app.uploads.handle(obj)
    job_id = job_id_for(obj.bucket, obj.name, obj.generation)
    harness.clock.advance(harness.settings.validation_timeout_seconds - 60)
    harness.app.poller.poll()
    assert harness.job(job_id).state is JobState.VALIDATING
    harness.clock.advance(120)
    harness.app.poller.poll()
    job = harness.job(job_id)
    assert job.state is JobState.FAILED and job.error == {
        "code": "validation_incomplete",
        "message": job.error["message"],  # type: ignore[index]
    }
    (event,) = harness.completions()
    assert event.json()["error"]["code"] == "validation_incomplete"
    harness.app.poller.poll()
    assert len(harness.completions()) == 1


def test_gcs_read_failures_are_transient() -> None:
    from shared.adapters.gcs_blobs import _ReadFailuresAreTransient

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            raise ConnectionResetError("peer reset")

    reader = io.BufferedReader(_ReadFailuresAreTransient(Broken(), "gs://b/o"))  # type: ignore[arg-type]
    with pytest.raises(TransientError, match="gs://b/o"):
        list(reader)
    good = io.BufferedReader(_ReadFailuresAreTransient(io.BytesIO(b"a\nb\n"), "gs://b/o"))
    assert list(good) == [b"a\n", b"b\n"]


def test_an_outcome_the_database_refuses_is_recorded_as_a_bare_rejection(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.validation import ValidationReport
    from shared.validation.report import Issue

    def huge(*args: Any, **kwargs: Any) -> ValidationReport:
        report = ValidationReport(file="gs://ds/incoming/a.jsonl")
        for n in range(10):  # the ten first errors kept on the job, 120 KB each: far over 1 MiB
            report.add(Issue(n + 1, f"code_{n}", "x" * 120_000))
        return report

    monkeypatch.setattr("shared.services.upload.validate_dataset", huge)
    obj = harness.put_dataset("a.jsonl")
    assert harness.app.uploads.handle(obj) is UploadOutcome.REJECTED
    job = harness.job(job_id_for(obj.bucket, obj.name, obj.generation))
    assert job.error is not None and job.error["code"] == "unstorable_result"
    assert harness.blobs.read("ds", f"reports/default/{job.job_id}.json")  # the details are in the report
    (event,) = harness.completions()
    assert event.json()["error"]["code"] == "unstorable_result"


def test_a_job_that_never_passed_validation_is_neither_retried_nor_retuned(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.errors import NotAllowed

    monkeypatch.setattr(
        "shared.services.upload.validate_dataset", lambda *a, **k: (_ for _ in ()).throw(TransientError("down"))
    )
    obj = harness.put_dataset("a.jsonl", b"this is not json\n")
    with pytest.raises(TransientError):
        harness.app.uploads.handle(obj)
    harness.clock.advance(harness.settings.validation_timeout_seconds + 1)
    harness.app.poller.poll()
    job_id = job_id_for(obj.bucket, obj.name, obj.generation)
    assert harness.job(job_id).state is JobState.FAILED
    with pytest.raises(NotAllowed, match="never passed validation"):
        harness.app.operations.retry(job_id)
    with pytest.raises(NotAllowed, match="no validated dataset"):
        harness.app.uploads.retune(job_id, "gemini-3.5-flash")
    assert harness.tuning.calls["create"] == 0


@pytest.mark.parametrize(
    ("name", "metadata"), [("incoming/a/b/c.jsonl", {}), ("x.jsonl", {"epochs": "99999"}), ("x.csv", {})]
)
def test_a_rejection_for_the_uploads_own_problems_cannot_be_retuned(
    harness: Harness, name: str, metadata: dict[str, str]
) -> None:
    from shared.errors import NotAllowed

    obj = harness.put_dataset(name, metadata=metadata)
    assert harness.app.uploads.handle(obj) is UploadOutcome.REJECTED
    with pytest.raises(NotAllowed):
        harness.app.uploads.retune(job_id_for(obj.bucket, obj.name, obj.generation), "gemini-3.5-flash")


def test_network_errors_of_the_storage_client_are_transient() -> None:
    import requests
    from google.api_core import exceptions as gexc

    from shared.adapters.gcs_blobs import GcsBlobStore

    errors: tuple[Exception, ...] = (
        requests.ConnectionError("reset"),
        gexc.Forbidden("iam"),  # type: ignore[no-untyped-call]
        gexc.BadGateway("5xx"),  # type: ignore[no-untyped-call]
    )
    for error in errors:

        class Client:
            def bucket(self, name: str) -> Any:
                return self

            def blob(self, name: str, generation: Any = None) -> Any:
                return self

            def reload(self, error: Exception = error) -> None:
                raise error

        with pytest.raises(TransientError):
            GcsBlobStore(Client()).describe("b", "o")
