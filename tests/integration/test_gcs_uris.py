"""GcsUriChecker on fake-gcs-server: each object's size from one metadata request, and the validator's
gs:// checks (missing files, files over their media kind's size limit) through it."""

from __future__ import annotations

import dataclasses
import io
import json
import uuid

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from shared.adapters.gcs_uris import GcsUriChecker
from shared.validation import get_model, validate_dataset
from shared.validation.uris import StoredObject

pytestmark = pytest.mark.integration


@pytest.fixture
def bucket(emulator_env: dict[str, str]) -> storage.Bucket:
    anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
    client = storage.Client(project=emulator_env["GOOGLE_CLOUD_PROJECT"], credentials=anonymous)
    return client.create_bucket(f"uris-{uuid.uuid4().hex[:8]}")


def test_the_checker_answers_each_objects_size_or_none(bucket: storage.Bucket) -> None:
    bucket.blob("media/cat.png").upload_from_string(b"x" * 1234)
    bucket.blob("media/empty.png").upload_from_string(b"")
    checker = GcsUriChecker(bucket.client)
    assert checker(f"gs://{bucket.name}/media/cat.png") == StoredObject(size_bytes=1234)
    assert checker(f"gs://{bucket.name}/media/empty.png") == StoredObject(size_bytes=0)
    assert checker(f"gs://{bucket.name}/media/dog.png") is None
    assert checker(f"gs://no-such-bucket-{uuid.uuid4().hex[:8]}/cat.png") is None
    assert checker(f"gs://{bucket.name}") is None


def test_validation_reports_missing_and_oversized_files_through_the_adapter(bucket: storage.Bucket) -> None:
    found = get_model("gemini-2.5-flash")
    assert found is not None
    # A 2 KiB image limit stands in for the real 20 MB one, so the test uploads kilobytes.
    model = dataclasses.replace(
        found, media={**found.media, "image": dataclasses.replace(found.media["image"], max_file_bytes=2048)}
    )
    bucket.blob("small.png").upload_from_string(b"x" * 2048)
    bucket.blob("large.png").upload_from_string(b"x" * 2049)
    lines = [
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [{"fileData": {"mimeType": "image/png", "fileUri": f"gs://{bucket.name}/{n}"}}],
                },
                {"role": "model", "parts": [{"text": "a picture"}]},
            ]
        }
        for n in ("small.png", "large.png", "gone.png")
    ]
    data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    report = validate_dataset(
        io.BytesIO(data), file="gs://ds/train.jsonl", model=model, uri_checker=GcsUriChecker(bucket.client)
    )
    assert [(i.line, i.code) for i in report.sorted_issues()] == [(2, "media_file_too_large"), (3, "missing_file")]
    assert "2,049 bytes" in report.sorted_issues()[0].message
    assert not report.warnings
