"""The adversarial tier: hostile and careless uploads driven through the upload service on the Firestore
emulator and fake-gcs-server. Each case asserts the settled state, the report's code, and that the
user's object is unchanged (its CRC32C before and after)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from tunedrop_local.vertex_emulator import VertexEmulator

from shared.adapters.gcs_blobs import GcsBlobStore
from shared.bootstrap import App, assemble
from shared.jobs import JobState, job_id_for
from shared.services.upload import UploadedObject
from tests.integration.apps import ListPublisher, emulator_app
from tests.integration.vertex import vertex_emulator, vertex_tuning
from tests.unit.test_hostile_uploads import MANIFESTS
from tests.unit.validation.test_validation_cli import EXPECTED_TRAIN

pytestmark = pytest.mark.integration

EVERY_ERROR = Path(__file__).resolve().parents[1] / "fixtures" / "datasets" / "every-error.jsonl"
GOOD = b'{"contents":[{"role":"user","parts":[{"text":"q"}]},{"role":"model","parts":[{"text":"a"}]}]}\n'
Action = Callable[[storage.Bucket, storage.Blob], None]


@dataclass(frozen=True)
class Case:
    name: str  # object name under incoming/
    body: bytes
    state: JobState
    code: str | None  # a code the report must hold (None: valid)
    metadata: dict[str, str] = field(default_factory=dict)
    before: Action | None = None  # what happens to the object between its notification and its validation
    changes_object: bool = False  # the case itself rewrites or deletes the user's object


def _dataset_line_cases() -> list[Case]:
    lines = EVERY_ERROR.read_bytes().split(b"\n")
    cases = []
    for number, code in sorted(EXPECTED_TRAIN.items()):
        if code in ("too_many_media", "unsupported_mime_type", "bad_file_uri"):
            continue  # depend on the model's media rules; the registry sweep covers them per model
        cases.append(Case(f"line-{code}.jsonl", GOOD + lines[number - 1] + b"\n", JobState.REJECTED, code))
    return cases


def _replace(bucket: storage.Bucket, blob: storage.Blob) -> None:
    bucket.blob(blob.name).upload_from_string(GOOD * 2)


def _delete(bucket: storage.Bucket, blob: storage.Blob) -> None:
    bucket.blob(blob.name).delete()


CASES: list[Case] = [
    # ---- files that are not datasets
    Case("empty.jsonl", b"", JobState.REJECTED, "empty_dataset"),
    Case("blank-lines.jsonl", b"\n\n\n", JobState.REJECTED, "empty_line"),
    Case("binary.jsonl", bytes(range(256)) * 4, JobState.REJECTED, "not_utf8"),
    Case("one-object-pretty.jsonl", b'{\n  "contents": []\n}\n', JobState.REJECTED, "pretty_printed_json"),
    Case("array.jsonl", b"[1, 2, 3]\n", JobState.REJECTED, "not_object"),
    Case("huge-int.jsonl", GOOD + b'{"contents": [], "x": ' + b"9" * 5000 + b"}\n", JobState.REJECTED, None),
    Case("deep.jsonl", GOOD + b'{"contents": ' + b"[" * 20000 + b"]" * 20000 + b"}\n", JobState.REJECTED, None),
    Case("nul.jsonl", GOOD + b"\x00\n", JobState.REJECTED, None),
    # A 10 MiB line, longer than any example the model could take: refused without building it in memory.
    Case(
        "long-line.jsonl",
        GOOD + b'{"contents": [{"role": "user", "parts": [{"text": "' + b"w" * (10 << 20) + b'"}]}]}\n',
        JobState.REJECTED,
        "line_too_long",
    ),
    # 150,000 empty parts in one example (1.6 MB): more values than tokens the model takes, refused before decoding.
    Case(
        "tiny-parts.jsonl",
        GOOD + b'{"contents": [{"role": "user", "parts": [' + b",".join([b'{"text":""}'] * 150_000) + b"]}]}\n",
        JobState.REJECTED,
        "too_many_values",
    ),
    # ---- names
    Case("data.csv", b"a,b\n1,2\n", JobState.REJECTED, "unsupported_object"),
    Case("data.jsonl.gz", b"\x1f\x8b\x08\x00", JobState.REJECTED, "unsupported_object"),
    Case("data.txt", GOOD, JobState.REJECTED, "unsupported_object"),
    Case("data", GOOD, JobState.REJECTED, "unsupported_object"),
    Case(".hidden", GOOD, JobState.REJECTED, "unsupported_object"),
    Case("team/sub/deep.jsonl", GOOD, JobState.REJECTED, "nested_too_deep"),
    Case("a/b/c/d.jsonl", GOOD, JobState.REJECTED, "nested_too_deep"),
    Case("UPPER.JSONL", GOOD, JobState.QUEUED, None),
    Case("team-a/in-a-team.jsonl", GOOD, JobState.QUEUED, None),
    # ---- team folders: a folder under incoming/ must be a team name
    Case("Team_B/upper-team.jsonl", GOOD, JobState.REJECTED, "bad_team_folder"),
    Case("caf\u00e9/unicode-team.jsonl", GOOD, JobState.REJECTED, "bad_team_folder"),
    Case("esc\x1b[31m/control-team.jsonl", GOOD, JobState.REJECTED, "bad_team_folder"),
    Case(f"{'t' * 64}/long-team.jsonl", GOOD, JobState.REJECTED, "bad_team_folder"),
    Case("spaces and ünïcode ✓.jsonl", GOOD, JobState.QUEUED, None),
    Case("\u202eevil\u202c.jsonl", GOOD, JobState.QUEUED, None),
    Case("esc\x1b[31mred.jsonl", GOOD, JobState.QUEUED, None),
    # ---- object metadata
    Case("md-epochs-sup.jsonl", GOOD, JobState.REJECTED, "bad_metadata", {"epochs": "²"}),
    Case("md-epochs-signs.jsonl", GOOD, JobState.REJECTED, "bad_metadata", {"epochs": "+-3"}),
    Case("md-priority-digits.jsonl", GOOD, JobState.REJECTED, "bad_metadata", {"priority": "9" * 5000}),
    Case("md-priority-range.jsonl", GOOD, JobState.REJECTED, "bad_metadata", {"priority": "1001"}),
    Case("md-lrm-nan.jsonl", GOOD, JobState.REJECTED, "bad_metadata", {"learning_rate_multiplier": "nan"}),
    Case("md-lrm-inf.jsonl", GOOD, JobState.REJECTED, "bad_metadata", {"learning_rate_multiplier": "inf"}),
    Case("md-adapter.jsonl", GOOD, JobState.REJECTED, "bad_metadata", {"adapter_size": "eleventy"}),
    Case("md-adapter-model.jsonl", GOOD, JobState.REJECTED, "bad_adapter_size", {"adapter_size": "32"}),
    Case("md-epochs-model.jsonl", GOOD, JobState.REJECTED, "bad_epochs", {"epochs": "101"}),
    Case("md-display.jsonl", GOOD, JobState.REJECTED, "bad_metadata", {"display_name": "x" * 129}),
    Case("md-display-ctrl.jsonl", GOOD, JobState.REJECTED, "bad_metadata", {"display_name": "a\x07b"}),
    Case("md-model-unknown.jsonl", GOOD, JobState.REJECTED, "unknown_model", {"base_model": "gemini-9-ultra"}),
    Case("md-model-space.jsonl", GOOD, JobState.REJECTED, "bad_metadata", {"base_model": "gemini 3.5"}),
    Case(
        "md-model-project.jsonl",
        GOOD,
        JobState.REJECTED,
        "bad_base_model",
        {"base_model": "projects/other/locations/us-central1/publishers/google/models/gemini-3.5-flash"},
    ),
    Case("md-model-retired.jsonl", GOOD, JobState.REJECTED, "model_retired", {"base_model": "gemini-1.5-pro-002"}),
    Case("md-model-case.jsonl", GOOD, JobState.QUEUED, None, {"base_model": "GEMINI-3.1-FLASH-LITE"}),
    Case("md-priority-plus.jsonl", GOOD, JobState.QUEUED, None, {"priority": "+7", "epochs": "3"}),
    # ---- the object changes between its notification and its validation
    Case("deleted.jsonl", GOOD, JobState.REJECTED, "object_missing", before=_delete, changes_object=True),
    Case("replaced.jsonl", GOOD, JobState.REJECTED, "dataset_changed", before=_replace, changes_object=True),
    Case(
        "manifest-gone.yaml",
        b"training_dataset: datasets/t.jsonl\n",
        JobState.REJECTED,
        "object_missing",
        before=_delete,
        changes_object=True,
    ),
    # ---- manifests (the unit tier's hostile manifests, now on the emulators)
    *[Case(name, body, JobState.REJECTED, code) for name, body, code in MANIFESTS],
    Case("names-missing.yaml", b"training_dataset: datasets/nothing-here.jsonl\n", JobState.REJECTED, "object_missing"),
    Case("names-incoming.yaml", b"training_dataset: incoming/other.jsonl\n", JobState.REJECTED, "object_missing"),
    Case("good-manifest.yaml", b"training_dataset: datasets/t.jsonl\nlabels: {team: kitchen}\n", JobState.QUEUED, None),
    # ---- manifests name only their own team's objects
    Case(
        "team-a/takes-default.yaml", b"training_dataset: datasets/t.jsonl\n", JobState.REJECTED, "manifest_other_team"
    ),
    Case(
        "takes-team-a.yaml",
        b"training_dataset: datasets/team-a/t.jsonl\n",
        JobState.REJECTED,
        "manifest_other_team",
    ),
    Case(
        "team-b/takes-an-upload.yaml",
        b"training_dataset: incoming/team-a/in-a-team.jsonl\n",
        JobState.REJECTED,
        "manifest_other_team",
    ),
    Case("names-reports.yaml", b"training_dataset: reports/x.jsonl\n", JobState.REJECTED, "manifest_other_team"),
    Case(
        "names-staging.yaml",
        b"training_dataset: tunedrop-staging/j/training-1.jsonl\n",
        JobState.REJECTED,
        "manifest_other_team",
    ),
    # GCS names are literal: this object is under datasets/team-a/ (team-a's), and it does not exist.
    Case("team-a/dot-dot.yaml", b"training_dataset: datasets/team-a/../t.jsonl\n", JobState.REJECTED, "object_missing"),
    *_dataset_line_cases(),
]


@pytest.fixture(scope="module")
def world(emulator_env: dict[str, str]) -> Iterator[tuple[App, storage.Bucket]]:
    client = storage.Client(project=emulator_env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"hostile-{uuid.uuid4().hex[:8]}")
    bucket.blob("datasets/t.jsonl").upload_from_string(GOOD * 3)
    bucket.blob("datasets/team-a/t.jsonl").upload_from_string(GOOD * 3)  # there, but not the default team's
    with vertex_emulator(VertexEmulator(quota=10, job_seconds=1)) as host:
        base = emulator_app(
            emulator_env,
            f"hostile{uuid.uuid4().hex[:6]}",
            vertex_tuning(host),
            settings={"TUNEDROP_BUCKET": bucket.name},
        )
        app = assemble(
            base.settings,
            store=base.store,
            publisher=ListPublisher(),
            blobs=GcsBlobStore(client),
            tuning=base.tuning,
            clock=base.clock,
        )
        yield app, bucket


def test_the_corpus_is_large_and_varied() -> None:
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name.encode("ascii", "backslashreplace").decode() for c in CASES])
def test_every_hostile_upload_ends_recorded_and_leaves_the_object_alone(
    world: tuple[App, storage.Bucket], case: Case
) -> None:
    app, bucket = world
    blob = bucket.blob(f"incoming/{case.name}")
    if case.metadata:
        blob.metadata = case.metadata
    blob.upload_from_string(case.body)
    blob.reload()
    checksum = blob.crc32c
    if case.before is not None:
        case.before(bucket, blob)
    obj = UploadedObject(
        bucket=bucket.name,
        name=blob.name,
        generation=str(blob.generation),
        metadata=dict(blob.metadata or {}),
        event_id=f"corpus-{uuid.uuid4().hex[:6]}",
    )
    app.uploads.handle(obj)  # never raises for the input's sake
    app.uploads.handle(obj)  # and a duplicate delivery changes nothing
    found = app.store.get(job_id_for(obj.bucket, obj.name, obj.generation))
    assert found is not None
    job = found.value
    assert job.state is case.state, job.validation
    if case.code is not None:
        assert case.code in job.validation["error_counts"], job.validation["error_counts"]
        report = bucket.blob(job.report_uri.split("/", 3)[3]).download_as_bytes()
        assert case.code.encode() in report
    if not case.changes_object:
        after = bucket.get_blob(blob.name)
        assert after is not None and (after.generation, after.crc32c) == (blob.generation, checksum)
