"""GenerateContent on the Vertex AI emulator, through the real aiplatform_v1 PredictionServiceClient: which models
serve, what a tuned endpoint answers from (the training file in the storage emulator, read once), the knobs,
the refusals, and the adapter's retries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1, storage
from tunedrop_local.vertex_emulator import ConfigError, EmulatorError, VertexEmulator, approximate_tokens
from tunedrop_local.vertex_emulator.answers import generic_answer

from shared.adapters.vertex_predict import VertexModelAnswers, prediction_client, transient_retry
from shared.ports import TuningUnavailable
from tests.integration.vertex import PARENT, FakeClock, tuning_job, vertex_emulator

pytestmark = pytest.mark.integration

BASE_MODEL = f"{PARENT}/publishers/google/models/gemini-3.5-flash"
TRAINING_URI = "gs://tunedrop-itest/tunedrop-staging/job-1/training.jsonl"
ANSWERS = {
    "What is the capital of France?": "The capital of France is Paris.",
    "How many rows are in orders?": "SELECT COUNT(*) FROM orders;",
}
TRAINING = "\n".join(
    json.dumps({"contents": [{"role": "user", "parts": [{"text": q}]}, {"role": "model", "parts": [{"text": a}]}]})
    for q, a in ANSWERS.items()
)


def ask(text: str) -> list[dict[str, object]]:
    return [{"role": "user", "parts": [{"text": text}]}]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _client(host: str) -> aiplatform_v1.PredictionServiceClient:
    return prediction_client(host, "us-central1")


def _tuned(emulator: VertexEmulator, clock: FakeClock, **labels: str) -> aiplatform_v1.TuningJob:
    spec = {"training_dataset_uri": TRAINING_URI, "hyper_parameters": {"epoch_count": 4}}
    created = emulator.create_tuning_job(PARENT, tuning_job(supervised_tuning_spec=spec, labels=labels))
    clock.advance(emulator.job_seconds + 1)
    job: aiplatform_v1.TuningJob = emulator.get_tuning_job(created.name)
    assert job.state == aiplatform_v1.JobState.JOB_STATE_SUCCEEDED
    return job


@pytest.fixture
def emulated(clock: FakeClock) -> Iterator[tuple[VertexEmulator, aiplatform_v1.PredictionServiceClient]]:
    emulator = VertexEmulator(env={}, clock=clock, read_training={TRAINING_URI: TRAINING}.__getitem__)
    with vertex_emulator(emulator) as host:
        yield emulator, _client(host)


def test_a_tuned_endpoint_reads_its_training_file_from_the_storage_emulator_once(
    emulator_env: dict[str, str], clock: FakeClock
) -> None:
    gcs = storage.Client(project=emulator_env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials())
    bucket = gcs.create_bucket(f"gate-{uuid.uuid4().hex[:8]}")
    blob = bucket.blob("tunedrop-staging/job-1/training.jsonl")
    blob.upload_from_string(TRAINING)
    emulator = VertexEmulator(env={"STORAGE_EMULATOR_HOST": emulator_env["STORAGE_EMULATOR_HOST"]}, clock=clock)
    spec = {"training_dataset_uri": f"gs://{bucket.name}/{blob.name}"}
    created = emulator.create_tuning_job(PARENT, tuning_job(supervised_tuning_spec=spec))
    clock.advance(emulator.job_seconds + 1)
    endpoint = emulator.get_tuning_job(created.name).tuned_model.endpoint
    with vertex_emulator(emulator) as host:
        client = _client(host)
        first = client.generate_content(model=endpoint, contents=ask("What's the capital of France?"))
        assert first.candidates[0].content.parts[0].text == "The capital of France is Paris."
        blob.delete()  # read once: the emulator answers from what it read
        again = client.generate_content(model=endpoint, contents=ask("How many rows are in orders today?"))
        assert again.candidates[0].content.parts[0].text == "SELECT COUNT(*) FROM orders;"


def test_without_a_storage_emulator_a_tuned_endpoint_refuses_saying_why(clock: FakeClock) -> None:
    emulator = VertexEmulator(env={}, clock=clock)
    endpoint = _tuned(emulator, clock).tuned_model.endpoint
    with vertex_emulator(emulator) as host, pytest.raises(exceptions.FailedPrecondition, match="STORAGE_EMULATOR_HOST"):
        _client(host).generate_content(model=endpoint, contents=ask("hi"))


def test_the_answer_carries_one_candidate_and_the_usage(
    emulated: tuple[VertexEmulator, aiplatform_v1.PredictionServiceClient], clock: FakeClock
) -> None:
    emulator, client = emulated
    job = _tuned(emulator, clock)
    asked = "What is the capital of France, please?"
    response = client.generate_content(
        request={
            "model": job.tuned_model.endpoint,
            "contents": ask(asked),
            "system_instruction": {"parts": [{"text": "Be brief."}]},
        }
    )
    (candidate,) = response.candidates
    assert candidate.finish_reason == aiplatform_v1.Candidate.FinishReason.STOP
    assert candidate.content.role == "model"
    usage = response.usage_metadata
    assert usage.prompt_token_count == approximate_tokens(asked) + approximate_tokens("Be brief.")
    assert usage.candidates_token_count == approximate_tokens("The capital of France is Paris.")
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert response.model_version == job.tuned_model.model


def test_checkpoint_endpoints_answer_and_earlier_ones_know_less(
    emulated: tuple[VertexEmulator, aiplatform_v1.PredictionServiceClient], clock: FakeClock
) -> None:
    emulator, client = emulated
    job = _tuned(emulator, clock)
    prompts = [f"How many rows are in orders of shop {n}?" for n in range(60)]

    def from_training(endpoint: str) -> int:
        texts = [
            client.generate_content(model=endpoint, contents=ask(p)).candidates[0].content.parts[0].text
            for p in prompts
        ]
        return sum(text in ANSWERS.values() for text in texts)

    checkpoints = list(job.tuned_model.checkpoints)
    assert [c.checkpoint_id for c in checkpoints] == ["1", "2", "3", "4"]
    assert checkpoints[-1].endpoint == job.tuned_model.endpoint
    first, last = from_training(checkpoints[0].endpoint), from_training(job.tuned_model.endpoint)
    assert last == len(prompts)
    assert first < len(prompts) // 2  # the first of 4 epochs answers about a quarter from training


def test_the_quality_knob_from_the_environment_and_a_label_overriding_it(clock: FakeClock) -> None:
    emulator = VertexEmulator(
        env={"TUNEDROP_EMULATOR_TUNED_QUALITY": "0"}, clock=clock, read_training={TRAINING_URI: TRAINING}.__getitem__
    )
    worse = _tuned(emulator, clock).tuned_model.endpoint
    better = _tuned(emulator, clock, emulator_quality="100").tuned_model.endpoint
    asked = "What is the capital of France?"
    with vertex_emulator(emulator) as host:
        client = _client(host)
        assert client.generate_content(model=worse, contents=ask(asked)).candidates[0].content.parts[0].text == (
            generic_answer(asked)
        )
        assert (
            client.generate_content(model=better, contents=ask(asked)).candidates[0].content.parts[0].text
            == (ANSWERS[asked])
        )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"TUNEDROP_EMULATOR_TUNED_QUALITY": "101"}, "TUNEDROP_EMULATOR_TUNED_QUALITY"),
        ({"TUNEDROP_EMULATOR_TUNED_NOISE": "some"}, "TUNEDROP_EMULATOR_TUNED_NOISE"),
    ],
)
def test_invalid_answer_knobs_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        VertexEmulator(env=env)


@pytest.mark.parametrize(("label", "value"), [("emulator_quality", "101"), ("emulator_noise", "half")])
def test_a_job_with_an_invalid_answer_label_is_refused_naming_it(clock: FakeClock, label: str, value: str) -> None:
    emulator = VertexEmulator(env={}, clock=clock)
    with pytest.raises(EmulatorError, match=label) as refused:
        emulator.create_tuning_job(PARENT, tuning_job(labels={label: value}))
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_an_endpoint_serves_only_once_its_job_succeeded_and_only_in_its_location(clock: FakeClock) -> None:
    emulator = VertexEmulator(env={}, clock=clock, read_training={TRAINING_URI: TRAINING}.__getitem__)
    created = emulator.create_tuning_job(
        PARENT, tuning_job(supervised_tuning_spec={"training_dataset_uri": TRAINING_URI})
    )
    with vertex_emulator(emulator) as host:
        client = _client(host)
        clock.advance(1.0)  # RUNNING: no endpoint yet
        job = emulator.get_tuning_job(created.name)
        assert job.state == aiplatform_v1.JobState.JOB_STATE_RUNNING
        clock.advance(emulator.job_seconds)
        endpoint = emulator.get_tuning_job(created.name).tuned_model.endpoint
        elsewhere = endpoint.replace("/locations/us-central1/", "/locations/europe-west4/")
        with pytest.raises(exceptions.NotFound, match="Endpoint"):
            client.generate_content(model=elsewhere, contents=ask("hi"))
        # Named by project id rather than number, it is the same endpoint.
        by_id = endpoint.replace(endpoint.split("/")[1], "tunedrop-dev", 1)
        assert client.generate_content(model=by_id, contents=ask("hi")).candidates


@pytest.mark.parametrize(
    ("request_fields", "error", "match"),
    [
        ({"model": "gemini-3.5-flash", "contents": ask("hi")}, exceptions.InvalidArgument, "model"),
        ({"model": BASE_MODEL, "contents": []}, exceptions.InvalidArgument, "contents is required"),
        (
            {"model": BASE_MODEL, "contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]},
            exceptions.InvalidArgument,
            r"contents\[0\].role",
        ),
        (
            {"model": BASE_MODEL, "contents": [*ask("a"), {"role": "user"}]},
            exceptions.InvalidArgument,
            r"contents\[1\].parts",
        ),
        (
            {"model": f"{PARENT}/publishers/google/models/gemini-1.0-pro-002", "contents": ask("hi")},
            exceptions.NotFound,
            "Publisher Model",
        ),
        (
            {"model": f"{PARENT}/publishers/google/models/not-a-model", "contents": ask("hi")},
            exceptions.NotFound,
            "Publisher Model",
        ),
        ({"model": f"{PARENT}/endpoints/42", "contents": ask("hi")}, exceptions.NotFound, "Endpoint"),
    ],
    ids=["bare-model", "no-contents", "bad-role", "no-parts", "retired-model", "unknown-model", "unknown-endpoint"],
)
def test_what_the_service_refuses(
    emulated: tuple[VertexEmulator, aiplatform_v1.PredictionServiceClient],
    request_fields: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    _, client = emulated
    with pytest.raises(error, match=match):
        client.generate_content(request=request_fields)


def test_the_adapter_retries_unavailable_answers_and_gives_up_within_its_bound(clock: FakeClock) -> None:
    flaky = VertexEmulator(env={}, clock=clock, unavailable_rate=0.5, seed=3)
    with vertex_emulator(flaky) as host:
        answers = VertexModelAnswers(lambda region: _client(host), retry=transient_retry(deadline=30.0, initial=0.001))
        got = [answers.generate(BASE_MODEL, ask(f"question {n}")) for n in range(10)]
        assert [g.text for g in got] == [generic_answer(f"question {n}") for n in range(10)]
    down = VertexEmulator(env={}, clock=clock, unavailable_rate=1.0)
    with vertex_emulator(down) as host:
        answers = VertexModelAnswers(lambda region: _client(host), retry=transient_retry(deadline=0.2, initial=0.01))
        with pytest.raises(TuningUnavailable, match="generating an answer"):
            answers.generate(BASE_MODEL, ask("hi"))
