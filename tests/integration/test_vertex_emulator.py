"""The Vertex AI tuning emulator, driven through the real aiplatform_v1 gRPC client."""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.cloud.aiplatform_v1.services.gen_ai_tuning_service.transports.grpc import (
    GenAiTuningServiceGrpcTransport,
)
from google.rpc import error_details_pb2
from tunedrop_local.vertex_emulator import JOB_SECONDS_LABEL, QUOTA_METRIC, VertexEmulator, project_number, serve

from tests.integration.vertex import NUMBER, PARENT, PROJECT, FakeClock, tuning_job

pytestmark = pytest.mark.integration

JOB_NAME_RE = re.compile(r"^projects/(\d{12})/locations/([a-z0-9-]+)/tuningJobs/(\d{19})$")
State = aiplatform_v1.JobState

Factory = Callable[..., aiplatform_v1.GenAiTuningServiceClient]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(clock: FakeClock) -> Iterator[Factory]:
    """Start an in-process emulator (knobs as kwargs, isolated from the real environment)."""
    started: list[tuple[grpc.Server, grpc.Channel]] = []

    def factory(**knobs: Any) -> aiplatform_v1.GenAiTuningServiceClient:
        knobs.setdefault("env", {})
        emulator = VertexEmulator(clock=clock, **knobs)
        server, port = serve("127.0.0.1", 0, emulator=emulator)
        assert port > 0
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        started.append((server, channel))
        return aiplatform_v1.GenAiTuningServiceClient(transport=GenAiTuningServiceGrpcTransport(channel=channel))

    yield factory
    for server, channel in started:
        channel.close()
        server.stop(None)


@pytest.fixture
def client(make_client: Factory) -> aiplatform_v1.GenAiTuningServiceClient:
    return make_client(quota=10, job_seconds=10)


def create(
    client: aiplatform_v1.GenAiTuningServiceClient, parent: str = PARENT, **overrides: Any
) -> aiplatform_v1.TuningJob:
    return client.create_tuning_job(parent=parent, tuning_job=tuning_job(**overrides))


def list_names(client: aiplatform_v1.GenAiTuningServiceClient, parent: str = PARENT, filter: str = "") -> list[str]:
    pager = client.list_tuning_jobs(request={"parent": parent, "filter": filter})
    return [job.name for job in pager]


# ---------------------------------------------------------------------------------------------


def test_create_get_list_round_trip_preserves_fields(
    client: aiplatform_v1.GenAiTuningServiceClient, clock: FakeClock
) -> None:
    created = create(
        client,
        base_model="gemini-3.1-flash-lite",
        supervised_tuning_spec={
            "training_dataset_uri": "gs://tunedrop-in/run-1/train.jsonl",
            "validation_dataset_uri": "gs://tunedrop-in/run-1/validation.jsonl",
            "hyper_parameters": {
                "epoch_count": 4,
                "learning_rate_multiplier": 0.5,
                "adapter_size": aiplatform_v1.SupervisedHyperParameters.AdapterSize.ADAPTER_SIZE_EIGHT,
            },
        },
        labels={"tunedrop-run": "run-1", "team": "ml"},
        tuned_model_display_name="support-bot v1",
        description="first drop",
        # Output-only: the server must ignore what the client sends here.
        name="projects/x/locations/y/tuningJobs/1",
        state=State.JOB_STATE_SUCCEEDED,
    )

    match = JOB_NAME_RE.match(created.name)
    assert match is not None, created.name
    assert match.group(1) == NUMBER
    assert match.group(2) == "us-central1"
    assert created.state == State.JOB_STATE_PENDING
    assert created.create_time.timestamp() == pytest.approx(clock.now)
    assert created.update_time.timestamp() == pytest.approx(clock.now)
    assert "start_time" not in created and "end_time" not in created

    fetched = client.get_tuning_job(name=created.name)
    assert fetched == created
    assert fetched.base_model == "gemini-3.1-flash-lite"
    spec = fetched.supervised_tuning_spec
    assert spec.training_dataset_uri == "gs://tunedrop-in/run-1/train.jsonl"
    assert spec.validation_dataset_uri == "gs://tunedrop-in/run-1/validation.jsonl"
    assert spec.hyper_parameters.epoch_count == 4
    assert spec.hyper_parameters.learning_rate_multiplier == pytest.approx(0.5)
    assert spec.hyper_parameters.adapter_size == aiplatform_v1.SupervisedHyperParameters.AdapterSize.ADAPTER_SIZE_EIGHT
    assert dict(fetched.labels) == {"tunedrop-run": "run-1", "team": "ml"}
    assert fetched.tuned_model_display_name == "support-bot v1"
    assert fetched.description == "first drop"

    listed = list(client.list_tuning_jobs(parent=PARENT))
    assert [job.name for job in listed] == [created.name]
    assert listed[0] == fetched


def test_state_progresses_pending_running_succeeded(
    client: aiplatform_v1.GenAiTuningServiceClient, clock: FakeClock
) -> None:
    created = create(client)
    t0 = clock.now

    clock.advance(0.5)  # RUNNING starts at min(10% of 10 s, 1 s) = 1 s
    assert client.get_tuning_job(name=created.name).state == State.JOB_STATE_PENDING

    clock.advance(0.5)
    running = client.get_tuning_job(name=created.name)
    assert running.state == State.JOB_STATE_RUNNING
    assert running.start_time.timestamp() == pytest.approx(t0 + 1.0)
    assert "end_time" not in running
    assert "tuned_model" not in running

    clock.advance(8.75)
    assert client.get_tuning_job(name=created.name).state == State.JOB_STATE_RUNNING

    clock.advance(0.25)
    done = client.get_tuning_job(name=created.name)
    assert done.state == State.JOB_STATE_SUCCEEDED
    assert done.end_time.timestamp() == pytest.approx(t0 + 10.0)
    assert done.update_time.timestamp() == pytest.approx(t0 + 10.0)
    assert done.error.code == 0
    prefix = f"projects/{NUMBER}/locations/us-central1"
    assert re.fullmatch(rf"{prefix}/models/\d{{19}}@1", done.tuned_model.model), done.tuned_model.model
    assert re.fullmatch(rf"{prefix}/endpoints/\d{{19}}", done.tuned_model.endpoint), done.tuned_model.endpoint
    stats = done.tuning_data_stats.supervised_tuning_data_stats
    assert stats.tuning_dataset_example_count > 0
    assert stats.total_billable_token_count > 0
    assert stats.tuning_step_count > 0
    assert stats.total_truncated_example_count == 0

    clock.advance(1000)  # terminal states are sticky
    assert client.get_tuning_job(name=created.name) == done


@pytest.mark.parametrize(("job_seconds", "running_after"), [(60.0, 1.0), (5.0, 0.5)])
def test_running_starts_after_a_tenth_of_the_duration_capped_at_one_second(
    make_client: Factory, clock: FakeClock, job_seconds: float, running_after: float
) -> None:
    client = make_client(job_seconds=job_seconds)
    name = create(client).name
    # Steps are exact binary fractions so float rounding cannot blur the boundaries.
    clock.advance(running_after - 0.25)
    assert client.get_tuning_job(name=name).state == State.JOB_STATE_PENDING
    clock.advance(0.25)
    assert client.get_tuning_job(name=name).state == State.JOB_STATE_RUNNING
    clock.advance(job_seconds - running_after - 0.25)
    assert client.get_tuning_job(name=name).state == State.JOB_STATE_RUNNING
    clock.advance(0.25)
    assert client.get_tuning_job(name=name).state == State.JOB_STATE_SUCCEEDED


def test_poll_after_the_end_still_reports_start_time(
    client: aiplatform_v1.GenAiTuningServiceClient, clock: FakeClock
) -> None:
    created = create(client)
    clock.advance(60)  # never observed RUNNING
    done = client.get_tuning_job(name=created.name)
    assert done.state == State.JOB_STATE_SUCCEEDED
    assert done.create_time < done.start_time < done.end_time


def test_a_label_sets_one_jobs_duration(make_client: Factory, clock: FakeClock) -> None:
    client = make_client(quota=5, job_seconds=5)
    long = create(client, labels={JOB_SECONDS_LABEL: "60"})
    short = create(client)
    clock.advance(5)
    assert client.get_tuning_job(name=short.name).state == State.JOB_STATE_SUCCEEDED
    assert client.get_tuning_job(name=long.name).state == State.JOB_STATE_RUNNING
    clock.advance(55)
    ended = client.get_tuning_job(name=long.name)
    assert ended.state == State.JOB_STATE_SUCCEEDED
    assert ended.end_time.timestamp() - ended.create_time.timestamp() == pytest.approx(60)


@pytest.mark.parametrize("value", ["0", "1.5", "soon"])
def test_a_malformed_duration_label_is_refused(client: aiplatform_v1.GenAiTuningServiceClient, value: str) -> None:
    with pytest.raises(exceptions.InvalidArgument, match=JOB_SECONDS_LABEL):
        create(client, labels={JOB_SECONDS_LABEL: value})
    assert list_names(client) == []


def test_fail_rate_one_fails_every_job_with_error(make_client: Factory, clock: FakeClock) -> None:
    client = make_client(quota=5, job_seconds=5, fail_rate=1.0)
    names = [create(client).name for _ in range(3)]
    clock.advance(5)
    for name in names:
        job = client.get_tuning_job(name=name)
        assert job.state == State.JOB_STATE_FAILED
        assert job.error.code != 0
        assert job.error.message
        assert "end_time" in job
        assert not job.tuned_model.model


def test_cancel(client: aiplatform_v1.GenAiTuningServiceClient, clock: FakeClock) -> None:
    created = create(client)
    clock.advance(2)
    assert client.get_tuning_job(name=created.name).state == State.JOB_STATE_RUNNING

    client.cancel_tuning_job(name=created.name)
    cancelled = client.get_tuning_job(name=created.name)
    assert cancelled.state == State.JOB_STATE_CANCELLED
    assert cancelled.error.code == 1  # google.rpc.Code.CANCELLED, as the real service reports
    assert cancelled.end_time.timestamp() == pytest.approx(clock.now)

    clock.advance(100)  # the job's would-be end does not resurrect it
    assert client.get_tuning_job(name=created.name).state == State.JOB_STATE_CANCELLED

    with pytest.raises(exceptions.FailedPrecondition, match="JOB_STATE_CANCELLED"):
        client.cancel_tuning_job(name=created.name)

    finished = create(client)
    clock.advance(10)
    with pytest.raises(exceptions.FailedPrecondition, match="JOB_STATE_SUCCEEDED"):
        client.cancel_tuning_job(name=finished.name)

    missing = f"projects/{NUMBER}/locations/us-central1/tuningJobs/1234567890123456789"
    with pytest.raises(exceptions.NotFound):
        client.cancel_tuning_job(name=missing)
    with pytest.raises(exceptions.NotFound):
        client.get_tuning_job(name=missing)
    # Same id in another location is another resource.
    with pytest.raises(exceptions.NotFound):
        client.get_tuning_job(name=created.name.replace("us-central1", "europe-west4"))


def test_cancel_pending_job_has_no_start_time(client: aiplatform_v1.GenAiTuningServiceClient) -> None:
    created = create(client)
    client.cancel_tuning_job(name=created.name)
    job = client.get_tuning_job(name=created.name)
    assert job.state == State.JOB_STATE_CANCELLED
    assert "start_time" not in job
    assert "end_time" in job


def _quota_failure(err: exceptions.GoogleAPICallError) -> error_details_pb2.QuotaFailure:
    failures = [d for d in err.details if isinstance(d, error_details_pb2.QuotaFailure)]
    assert len(failures) == 1, err.details
    return failures[0]


def test_quota_is_global_across_locations_and_projects(make_client: Factory, clock: FakeClock) -> None:
    client = make_client(quota=1, job_seconds=5)
    first = create(client, parent=f"projects/{PROJECT}/locations/us-central1")

    with pytest.raises(exceptions.ResourceExhausted) as caught:
        create(client, parent=f"projects/{PROJECT}/locations/europe-west4")
    err = caught.value
    assert err.grpc_status_code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.message == f"The following quota metrics exceed quota limits: {QUOTA_METRIC}"
    violation = _quota_failure(err).violations[0]
    assert violation.quota_metric == QUOTA_METRIC == "aiplatform.googleapis.com/global_concurrent_tuning_jobs"
    assert violation.api_service == "aiplatform.googleapis.com"
    assert violation.quota_value == 1
    assert violation.subject == f"projects/{NUMBER}"

    with pytest.raises(exceptions.ResourceExhausted):
        create(client, parent="projects/other-project/locations/us-central1")

    # The rejected creates left nothing behind.
    assert list_names(client, f"projects/{PROJECT}/locations/europe-west4") == []
    assert list_names(client) == [first.name]


def test_quota_slot_frees_when_job_ends_or_is_cancelled(make_client: Factory, clock: FakeClock) -> None:
    client = make_client(quota=1, job_seconds=5)
    first = create(client)
    clock.advance(4.9)
    with pytest.raises(exceptions.ResourceExhausted):
        create(client, parent=f"projects/{PROJECT}/locations/europe-west4")

    clock.advance(0.1)  # first job reaches SUCCEEDED, no Get needed to notice
    second = create(client, parent=f"projects/{PROJECT}/locations/europe-west4")
    assert client.get_tuning_job(name=first.name).state == State.JOB_STATE_SUCCEEDED

    with pytest.raises(exceptions.ResourceExhausted):
        create(client)
    client.cancel_tuning_job(name=second.name)
    create(client)


def test_quota_from_environment(make_client: Factory) -> None:
    client = make_client(env={"TUNEDROP_QUOTA": "2"})
    create(client)
    create(client)
    with pytest.raises(exceptions.ResourceExhausted) as caught:
        create(client)
    assert _quota_failure(caught.value).violations[0].quota_value == 2


def test_list_filter_by_label_and_state(client: aiplatform_v1.GenAiTuningServiceClient, clock: FakeClock) -> None:
    a1 = create(client, labels={"team": "a", "tunedrop-run": "r1"}).name
    clock.advance(1)  # a1 RUNNING from here on
    a2 = create(client, labels={"team": "a"}).name
    b1 = create(client, labels={"team": "b"}).name
    plain = create(client).name
    other_location = create(client, parent=f"projects/{PROJECT}/locations/europe-west4", labels={"team": "a"}).name

    assert list_names(client) == [plain, b1, a2, a1]  # newest first, parent-scoped
    assert other_location not in list_names(client)
    assert list_names(client, filter='labels.team="a"') == [a2, a1]
    assert list_names(client, filter="labels.team=b") == [b1]
    assert list_names(client, filter="labels.team:*") == [b1, a2, a1]
    assert list_names(client, filter='labels.team!="a"') == [plain, b1]
    assert list_names(client, filter='labels.tunedrop-run="r1"') == [a1]
    assert list_names(client, filter="labels.missing:*") == []
    assert list_names(client, filter="state=JOB_STATE_RUNNING") == [a1]
    assert list_names(client, filter='state="JOB_STATE_PENDING"') == [plain, b1, a2]
    assert list_names(client, filter='state!=JOB_STATE_RUNNING AND labels.team="a"') == [a2]
    assert list_names(client, filter='labels.team="a" AND labels.tunedrop-run:* AND state=JOB_STATE_RUNNING') == [a1]

    for bad in ("display_name=x", "state=RUNNING", 'labels.team="a" OR state=JOB_STATE_RUNNING', "labels.team:a b"):
        with pytest.raises(exceptions.InvalidArgument):
            list_names(client, filter=bad)


def test_list_pagination(client: aiplatform_v1.GenAiTuningServiceClient) -> None:
    names = [create(client, labels={"i": str(i)}).name for i in range(5)]
    newest_first = names[::-1]

    pages = list(client.list_tuning_jobs(request={"parent": PARENT, "page_size": 2}).pages)
    assert [[job.name for job in page.tuning_jobs] for page in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:5],
    ]
    assert pages[0].next_page_token and pages[1].next_page_token
    assert pages[-1].next_page_token == ""

    # A job created between pages does not shift or duplicate later pages.
    first = client.list_tuning_jobs(request={"parent": PARENT, "page_size": 2})
    first_page = next(iter(first.pages))
    create(client)
    second = client.list_tuning_jobs(
        request={"parent": PARENT, "page_size": 2, "page_token": first_page.next_page_token}
    )
    assert [job.name for job in next(iter(second.pages)).tuning_jobs] == newest_first[2:4]

    # Tokens are bound to their query.
    with pytest.raises(exceptions.InvalidArgument):
        list_names_with_token(client, first_page.next_page_token, filter="labels.i:*")
    with pytest.raises(exceptions.InvalidArgument):
        list_names_with_token(client, "not-a-token")
    with pytest.raises(exceptions.InvalidArgument):
        client.list_tuning_jobs(request={"parent": PARENT, "page_size": -1})


def list_names_with_token(client: aiplatform_v1.GenAiTuningServiceClient, token: str, filter: str = "") -> list[str]:
    response = client.list_tuning_jobs(request={"parent": PARENT, "page_token": token, "filter": filter})
    return [job.name for job in response]


def test_unavailable_rate_one(make_client: Factory) -> None:
    client = make_client(unavailable_rate=1.0)
    with pytest.raises(exceptions.ServiceUnavailable):
        create(client)
    with pytest.raises(exceptions.ServiceUnavailable):
        client.list_tuning_jobs(parent=PARENT)
    with pytest.raises(exceptions.ServiceUnavailable):
        client.get_tuning_job(name=f"{PARENT}/tuningJobs/1")


def test_unavailable_rate_is_a_seeded_share(make_client: Factory) -> None:
    client = make_client(quota=1000, unavailable_rate=0.5, seed=7)
    outcomes = []
    for _ in range(200):
        try:
            client.list_tuning_jobs(parent=PARENT)
            outcomes.append(True)
        except exceptions.ServiceUnavailable:
            outcomes.append(False)
    assert 50 < outcomes.count(False) < 150


@pytest.mark.parametrize(
    ("parent", "overrides", "fragment"),
    [
        ("projects/p", {}, "Invalid parent"),
        ("projects/p/locations/us-central1/extra", {}, "Invalid parent"),
        (PARENT, {"base_model": ""}, "base_model is required"),
        (PARENT, {"supervised_tuning_spec": {}}, "training_dataset_uri is required"),
        (PARENT, {"supervised_tuning_spec": {"training_dataset_uri": "/tmp/train.jsonl"}}, "gs://"),
        (
            PARENT,
            {"supervised_tuning_spec": {"training_dataset_uri": "https://storage.googleapis.com/b/t.jsonl"}},
            "Cloud Storage URI",
        ),
        (
            PARENT,
            {
                "supervised_tuning_spec": {
                    "training_dataset_uri": "gs://b/t.jsonl",
                    "validation_dataset_uri": "s3://b/v.jsonl",
                }
            },
            "validation_dataset_uri",
        ),
        (PARENT, {"labels": {"Team": "a"}}, "label key"),
        (PARENT, {"labels": {"team": "A B"}}, "label"),
    ],
)
def test_invalid_create_requests(
    client: aiplatform_v1.GenAiTuningServiceClient, parent: str, overrides: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument, match=re.escape(fragment)):
        create(client, parent=parent, **overrides)
    assert list_names(client) == []


def test_invalid_names(client: aiplatform_v1.GenAiTuningServiceClient) -> None:
    for name in ("tuningJobs/1", f"{PARENT}/tuningJobs", f"{PARENT}/customJobs/1"):
        with pytest.raises(exceptions.InvalidArgument):
            client.get_tuning_job(name=name)
        with pytest.raises(exceptions.InvalidArgument):
            client.cancel_tuning_job(name=name)
    with pytest.raises(exceptions.InvalidArgument):
        client.list_tuning_jobs(parent="locations/us-central1")


def test_project_id_and_number_are_interchangeable(client: aiplatform_v1.GenAiTuningServiceClient) -> None:
    assert re.fullmatch(r"[1-9]\d{11}", NUMBER)
    assert project_number(PROJECT) == NUMBER  # stable
    assert project_number("another-project") != NUMBER
    assert project_number(NUMBER) == NUMBER

    created = create(client, parent=f"projects/{PROJECT}/locations/us-central1")
    assert created.name.startswith(f"projects/{NUMBER}/")
    job_id = created.name.rsplit("/", 1)[1]
    by_id = f"projects/{PROJECT}/locations/us-central1/tuningJobs/{job_id}"

    assert client.get_tuning_job(name=by_id).name == created.name
    assert list_names(client, f"projects/{NUMBER}/locations/us-central1") == [created.name]
    assert list_names(client, f"projects/{PROJECT}/locations/us-central1") == [created.name]
    assert list_names(client, "projects/another-project/locations/us-central1") == []

    # Creating under the number lands in the same project.
    second = create(client, parent=f"projects/{NUMBER}/locations/us-central1")
    assert list_names(client, PARENT) == [second.name, created.name]

    client.cancel_tuning_job(name=by_id)
    assert client.get_tuning_job(name=created.name).state == State.JOB_STATE_CANCELLED


def test_ids_are_seeded(make_client: Factory) -> None:
    def ids(seed: int) -> list[str]:
        client = make_client(quota=5, seed=seed)
        return [create(client).name.rsplit("/", 1)[1] for _ in range(3)]

    first, again, other = ids(1), ids(1), ids(2)
    assert first == again
    assert first != other
    assert len(set(first)) == 3


def test_unimplemented_method_is_unimplemented(client: aiplatform_v1.GenAiTuningServiceClient) -> None:
    with pytest.raises(exceptions.MethodNotImplemented):
        client.rebase_tuned_model(
            parent=PARENT, tuned_model_ref=aiplatform_v1.TunedModelRef(tuning_job=f"{PARENT}/tuningJobs/1")
        )


@pytest.mark.parametrize(
    ("day", "model", "error", "fragment"),
    [
        # Retired: the "Publisher Model ... was not found" answer Vertex AI gives for retired model ids.
        ("2026-11-29", "gemini-1.5-pro-002", exceptions.NotFound, "publishers/google/models/gemini-1.5-pro-002`"),
        ("2026-11-29", "gemini-2.0-flash", exceptions.NotFound, "was not found or your project does not have access"),
        # New tuning closed (the month before retirement): refused, naming the model.
        ("2026-09-20", "gemini-2.5-flash", exceptions.InvalidArgument, "gemini-2.5-flash is no longer available"),
        ("2026-11-29", "gemini-9-ultra", exceptions.InvalidArgument, "gemini-9-ultra is not supported"),
    ],
)
def test_a_base_model_that_cannot_be_tuned_is_refused_as_the_service_does(
    client: aiplatform_v1.GenAiTuningServiceClient, clock: FakeClock, day: str, model: str, error: type, fragment: str
) -> None:
    clock.now = _utc_noon(day)
    with pytest.raises(error, match=re.escape(fragment)):
        create(client, base_model=model)
    assert list_names(client) == []
    clock.now = _utc_noon("2026-08-01")  # before 2.5 Flash closed: the same request goes through
    if model == "gemini-2.5-flash":
        assert create(client, base_model=model).state == State.JOB_STATE_PENDING


def _utc_noon(day: str) -> float:
    return float(calendar.timegm(time.strptime(day + " 12", "%Y-%m-%d %H")))
