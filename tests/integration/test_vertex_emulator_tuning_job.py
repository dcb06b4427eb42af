"""Today's TuningJob on the emulator, through the real aiplatform_v1 gRPC client: checkpoints, evaluation
during tuning, continuous tuning, service account and CMEK, dropped examples, and quota mode "wait"."""

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
from tunedrop_local.vertex_emulator import VertexEmulator, serve

from tests.integration.vertex import NUMBER, PARENT, PROJECT, FakeClock, evaluation_config, tuning_job

pytestmark = pytest.mark.integration

State = aiplatform_v1.JobState
Aggregation = aiplatform_v1.Metric.AggregationMetric
Client = aiplatform_v1.GenAiTuningServiceClient
PREFIX = f"projects/{NUMBER}/locations/us-central1"
KEY = f"projects/{PROJECT}/locations/us-central1/keyRings/tuning/cryptoKeys/datasets"
TUNER = f"tuner@{PROJECT}.iam.gserviceaccount.com"


def _utc(day: str) -> float:
    return float(calendar.timegm(time.strptime(day + " 12", "%Y-%m-%d %H")))


@pytest.fixture
def clock() -> FakeClock:
    # After 2025-07-11 (the earliest model continuous tuning takes), before Gemini 2.5's tuning closed.
    return FakeClock(_utc("2026-08-01"))


@pytest.fixture
def emulators(clock: FakeClock) -> Iterator[Callable[..., tuple[Client, VertexEmulator]]]:
    started: list[tuple[grpc.Server, grpc.Channel]] = []

    def start(**knobs: Any) -> tuple[Client, VertexEmulator]:
        knobs.setdefault("env", {})
        emulator = VertexEmulator(clock=clock, **knobs)
        server, port = serve("127.0.0.1", 0, emulator=emulator)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        started.append((server, channel))
        return Client(transport=GenAiTuningServiceGrpcTransport(channel=channel)), emulator

    yield start
    for server, channel in started:
        channel.close()
        server.stop(None)


@pytest.fixture
def client(emulators: Callable[..., tuple[Client, VertexEmulator]]) -> Client:
    return emulators(quota=10, job_seconds=100)[0]


def create(client: Client, parent: str = PARENT, **overrides: Any) -> aiplatform_v1.TuningJob:
    return client.create_tuning_job(parent=parent, tuning_job=tuning_job(**overrides))


def spec(epochs: int = 0, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"training_dataset_uri": "gs://tunedrop-in/train.jsonl", **fields}
    if epochs:
        values["hyper_parameters"] = {"epoch_count": epochs}
    return values


def finished(client: Client, clock: FakeClock, name: str, seconds: float = 100) -> aiplatform_v1.TuningJob:
    clock.advance(seconds)
    job = client.get_tuning_job(name=name)
    assert job.state == State.JOB_STATE_SUCCEEDED, job.state
    return job


# ---- checkpoints


@pytest.mark.parametrize(
    ("epochs", "expected"),
    [
        (1, [1]),
        (4, [1, 2, 3, 4]),
        (10, list(range(1, 11))),
        (25, [3, 5, 8, 10, 13, 15, 18, 20, 23, 25]),
        (100, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]),
    ],
)
def test_one_checkpoint_per_epoch_up_to_ten_then_ten_spread_to_the_last(
    client: Client, clock: FakeClock, epochs: int, expected: list[int]
) -> None:
    job = finished(client, clock, create(client, supervised_tuning_spec=spec(epochs)).name)
    checkpoints = list(job.tuned_model.checkpoints)
    assert [c.epoch for c in checkpoints] == expected
    assert [c.checkpoint_id for c in checkpoints] == [str(i) for i in range(1, len(expected) + 1)]
    steps = [c.step for c in checkpoints]
    assert steps == sorted(steps) and steps[0] > 0
    assert steps[-1] == job.tuning_data_stats.supervised_tuning_data_stats.tuning_step_count
    endpoints = [c.endpoint for c in checkpoints]
    assert all(re.fullmatch(rf"{PREFIX}/endpoints/\d{{19}}", e) for e in endpoints), endpoints
    assert len(set(endpoints)) == len(endpoints)
    # The tuned model's endpoint is the default checkpoint's: the last one.
    assert endpoints[-1] == job.tuned_model.endpoint


def test_checkpoints_appear_on_success_only_and_the_experiment_once_running(client: Client, clock: FakeClock) -> None:
    name = create(client, supervised_tuning_spec=spec(4)).name
    assert client.get_tuning_job(name=name).experiment == ""
    clock.advance(50)
    running = client.get_tuning_job(name=name)
    assert running.state == State.JOB_STATE_RUNNING
    assert "tuned_model" not in running
    assert re.fullmatch(
        rf"{PREFIX}/metadataStores/default/contexts/tuning-experiment-20260801120000\d\d", running.experiment
    ), running.experiment
    assert len(finished(client, clock, name, 50).tuned_model.checkpoints) == 4


def test_export_last_checkpoint_only_keeps_the_last(client: Client, clock: FakeClock) -> None:
    job = finished(client, clock, create(client, supervised_tuning_spec=spec(6, export_last_checkpoint_only=True)).name)
    assert job.supervised_tuning_spec.export_last_checkpoint_only
    [only] = job.tuned_model.checkpoints
    assert (only.checkpoint_id, only.epoch, only.endpoint) == ("1", 6, job.tuned_model.endpoint)


def test_checkpoints_are_deterministic_per_seed(emulators: Callable[..., tuple[Client, VertexEmulator]]) -> None:
    def run() -> list[aiplatform_v1.TunedModelCheckpoint]:
        clock = FakeClock(_utc("2026-08-01"))
        emulator = VertexEmulator(clock=clock, env={}, quota=2, job_seconds=10, seed=3)
        name = emulator.create_tuning_job(PARENT, tuning_job(supervised_tuning_spec=spec(3))).name
        clock.advance(10)
        return list(emulator.get_tuning_job(name).tuned_model.checkpoints)

    assert run() == run()


# ---- evaluation during tuning


def test_each_checkpoint_is_evaluated_as_it_is_saved(client: Client, clock: FakeClock) -> None:
    config = evaluation_config()
    name = create(
        client,
        supervised_tuning_spec=spec(
            4, validation_dataset_uri="gs://tunedrop-in/validation.jsonl", evaluation_config=config
        ),
    ).name
    assert list(client.get_tuning_job(name=name).evaluate_dataset_runs) == []
    clock.advance(1 + 99 * 0.5)  # RUNNING from 1 s; checkpoints at epochs 1 and 2 of 4 are saved
    halfway = client.get_tuning_job(name=name)
    assert [run.checkpoint_id for run in halfway.evaluate_dataset_runs] == ["1", "2"]

    job = finished(client, clock, name, 50)
    runs = list(job.evaluate_dataset_runs)
    assert [run.checkpoint_id for run in runs] == ["1", "2", "3", "4"]
    assert [c.checkpoint_id for c in job.tuned_model.checkpoints] == ["1", "2", "3", "4"]
    for run in runs:
        assert re.fullmatch(rf"{PREFIX}/evaluationRuns/\d{{19}}", run.evaluation_run), run.evaluation_run
        assert run.operation_name == ""  # deprecated in favour of evaluation_run
        response = run.evaluate_dataset_response
        assert list(response.aggregation_output.dataset.gcs_source.uris) == ["gs://tunedrop-in/validation.jsonl"]
        assert response.output_info.gcs_output_directory.startswith("gs://tunedrop-out/reports/job-1/evaluation/")
        results = list(response.aggregation_output.aggregation_results)
        # One result per metric and aggregation, in the config's order.
        assert [r.aggregation_metric for r in results] == [
            Aggregation.AVERAGE,
            Aggregation.STANDARD_DEVIATION,
            Aggregation.AVERAGE,
        ]
        assert 1.0 <= results[0].pointwise_metric_result.score <= 5.0
        assert results[1].pointwise_metric_result.score > 0.0
        assert 0.0 <= results[2].bleu_metric_value.score <= 1.0
    averages = [run.evaluate_dataset_response.aggregation_output.aggregation_results[0] for run in runs]
    assert averages[-1].pointwise_metric_result.score > averages[0].pointwise_metric_result.score


def test_a_failed_job_keeps_the_evaluations_of_the_checkpoints_it_saved(
    emulators: Callable[..., tuple[Client, VertexEmulator]], clock: FakeClock
) -> None:
    client = emulators(quota=2, job_seconds=100, fail_rate=1.0)[0]
    evaluated = spec(
        4, validation_dataset_uri="gs://tunedrop-in/validation.jsonl", evaluation_config=evaluation_config()
    )
    name = create(client, supervised_tuning_spec=evaluated).name
    clock.advance(100)
    job = client.get_tuning_job(name=name)
    assert job.state == State.JOB_STATE_FAILED
    assert [run.checkpoint_id for run in job.evaluate_dataset_runs] == ["1", "2", "3"]
    assert "tuned_model" not in job


@pytest.mark.parametrize(
    ("parent", "changes", "fragment"),
    [
        (PARENT.replace("us-central1", "europe-west4"), {}, "available in us-central1 only, not in europe-west4"),
        (PARENT, {"validation_dataset_uri": ""}, "needs supervised_tuning_spec.validation_dataset_uri"),
        (PARENT, {"metrics": []}, "evaluation_config.metrics is required"),
        (
            PARENT,
            {"metrics": [{"predefined_metric_spec": {"metric_spec_name": "fluency_v1"}}]},
            "not predefined_metric_spec",
        ),
        (
            PARENT,
            {"metrics": [{"aggregation_metrics": ["AVERAGE"]}]},
            "metrics[0] must set one of pointwise_metric_spec",
        ),
        (
            PARENT,
            {"metrics": [{"pointwise_metric_spec": {"system_instruction": "x"}}]},
            "metric_prompt_template is required",
        ),
        (PARENT, {"output_config": {}}, "output_uri_prefix is required"),
        (
            PARENT,
            {"output_config": {"gcs_destination": {"output_uri_prefix": "/tmp/out"}}},
            "must be a Cloud Storage URI",
        ),
        (PARENT, {"autorater_config": {"sampling_count": 33}}, "sampling_count must be between 1 and 32, got 33"),
        (PARENT, {"autorater_config": {"autorater_model": "gemini-2.5-pro"}}, "autorater_model must be"),
    ],
)
def test_an_evaluation_config_the_service_would_not_run_is_refused(
    client: Client, parent: str, changes: dict[str, Any], fragment: str
) -> None:
    validation = changes.pop("validation_dataset_uri", "gs://tunedrop-in/validation.jsonl")
    config = {**evaluation_config(), **changes}
    with pytest.raises(exceptions.InvalidArgument, match=re.escape(fragment)):
        create(
            client,
            parent=parent,
            supervised_tuning_spec=spec(2, validation_dataset_uri=validation, evaluation_config=config),
        )
    assert list(client.list_tuning_jobs(parent=parent)) == []


# ---- service account and CMEK


def test_service_account_and_key_are_echoed(client: Client) -> None:
    created = create(
        client,
        base_model="gemini-2.5-flash",
        service_account=TUNER,
        encryption_spec={"kms_key_name": KEY},
        description="refresh",
    )
    fetched = client.get_tuning_job(name=created.name)
    assert (fetched.service_account, fetched.encryption_spec.kms_key_name, fetched.description) == (
        TUNER,
        KEY,
        "refresh",
    )
    assert fetched == created
    default_compute = f"{NUMBER}-compute@developer.gserviceaccount.com"
    assert create(client, service_account=default_compute).service_account == default_compute


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"service_account": "tuner"}, "service_account must be a service account email"),
        ({"service_account": "someone@example.com"}, "service_account must be a service account email"),
        ({"service_account": TUNER + "\n"}, "service_account must be a service account email"),
        ({"encryption_spec": {"kms_key_name": KEY + "\n"}}, "kms_key_name must be projects/{project}"),
        ({"encryption_spec": {"kms_key_name": "datasets"}}, "kms_key_name must be projects/{project}"),
        (
            {"encryption_spec": {"kms_key_name": KEY.replace("us-central1", "europe-west4")}},
            "the key must be in the tuning job's region, us-central1",
        ),
        # The registry records "CMEK support: Not supported" for the Gemini 3.x tuning tables.
        (
            {"base_model": "gemini-3.5-flash", "encryption_spec": {"kms_key_name": KEY}},
            "not supported for tuning gemini-3.5-flash",
        ),
    ],
)
def test_malformed_service_accounts_and_keys_are_refused(
    client: Client, overrides: dict[str, Any], fragment: str
) -> None:
    overrides.setdefault("base_model", "gemini-2.5-flash")
    with pytest.raises(exceptions.InvalidArgument, match=re.escape(fragment)):
        create(client, **overrides)
    assert list(client.list_tuning_jobs(parent=PARENT)) == []


# ---- continuous tuning


def test_continuous_tuning_from_a_checkpoint_makes_a_new_version(client: Client, clock: FakeClock) -> None:
    first = finished(
        client, clock, create(client, tuned_model_display_name="support-bot", supervised_tuning_spec=spec(3)).name
    )
    model = first.tuned_model.model.split("@", 1)[0]
    assert first.tuned_model.model == f"{model}@1"

    second = create(
        client,
        base_model=None,
        pre_tuned_model={"tuned_model_name": first.tuned_model.model, "checkpoint_id": "2"},
        supervised_tuning_spec=spec(2),
    )
    assert second.base_model == ""  # base_model and pre_tuned_model are one oneof
    assert second.pre_tuned_model.tuned_model_name == first.tuned_model.model
    assert second.pre_tuned_model.checkpoint_id == "2"
    assert second.pre_tuned_model.base_model == "gemini-3.5-flash"  # output only: what the model was tuned from
    assert second.tuned_model_display_name == "support-bot"  # inherited
    # Version 2 exists once the job that tunes it has succeeded.
    with pytest.raises(exceptions.NotFound, match="does not exist"):
        create(client, base_model=None, pre_tuned_model={"tuned_model_name": f"{model}@2"})
    done = finished(client, clock, second.name)
    assert done.tuned_model.model == f"{model}@2"  # the parent's last version + 1
    assert done.tuned_model.endpoint != first.tuned_model.endpoint

    # The bare model name is its default (newest) version; a new display name makes a new model at version 1.
    third = create(
        client,
        base_model=None,
        pre_tuned_model={"tuned_model_name": model},
        tuned_model_display_name="support-bot-eu",
        supervised_tuning_spec=spec(1),
    )
    assert third.pre_tuned_model.base_model == "gemini-3.5-flash"
    renamed = finished(client, clock, third.name).tuned_model.model
    assert renamed.endswith("@1") and not renamed.startswith(model + "@")


def test_continuous_tuning_from_a_model_tuned_before_july_2025_is_refused(
    emulators: Callable[..., tuple[Client, VertexEmulator]],
) -> None:
    clock = FakeClock(_utc("2025-07-01"))
    emulator = VertexEmulator(clock=clock, env={}, quota=2, job_seconds=10)
    old = emulator.create_tuning_job(PARENT, tuning_job(base_model="gemini-2.5-flash"))
    clock.advance(10)
    model = emulator.get_tuning_job(old.name).tuned_model.model
    clock.now = _utc("2026-08-01")
    request = tuning_job(base_model=None, pre_tuned_model={"tuned_model_name": model})
    with pytest.raises(Exception, match=re.escape("only models tuned on or after 2025-07-11 can be tuned further")):
        emulator.create_tuning_job(PARENT, request)


@pytest.mark.parametrize(
    ("pre_tuned", "error", "fragment"),
    [
        ({"tuned_model_name": f"{PREFIX}/models/1234567890123456789"}, exceptions.NotFound, "does not exist"),
        ({"tuned_model_name": "{model}@7"}, exceptions.NotFound, "does not exist"),
        ({"tuned_model_name": "{model}@latest"}, exceptions.NotFound, "does not exist"),
        ({"tuned_model_name": "support-bot"}, exceptions.InvalidArgument, "tuned_model_name must be projects/"),
        ({"tuned_model_name": "{model}", "checkpoint_id": "9"}, exceptions.InvalidArgument, "its checkpoints: 1, 2"),
        ({"tuned_model_name": ""}, exceptions.InvalidArgument, "tuned_model_name is required"),
        (
            {"tuned_model_name": "{model}", "key": KEY},
            exceptions.InvalidArgument,
            "must be the key the pre-tuned model was tuned with (none)",
        ),
    ],
)
def test_continuous_tuning_needs_a_tuned_model_and_checkpoint_of_this_project(
    client: Client, clock: FakeClock, pre_tuned: dict[str, str], error: type, fragment: str
) -> None:
    tuned = finished(client, clock, create(client, base_model="gemini-2.5-flash", supervised_tuning_spec=spec(2)).name)
    model = tuned.tuned_model.model.split("@", 1)[0]
    key = pre_tuned.pop("key", "")
    pre_tuned["tuned_model_name"] = pre_tuned["tuned_model_name"].format(model=model)
    with pytest.raises(error, match=re.escape(fragment)):
        create(
            client,
            base_model=None,
            pre_tuned_model=pre_tuned,
            encryption_spec={"kms_key_name": key} if key else None,
        )
    assert len(list(client.list_tuning_jobs(parent=PARENT))) == 1


def test_continuous_tuning_keeps_the_pre_tuned_models_key(client: Client, clock: FakeClock) -> None:
    encrypted = {"kms_key_name": KEY}
    tuned = finished(client, clock, create(client, base_model="gemini-2.5-flash", encryption_spec=encrypted).name)
    request: dict[str, Any] = {"base_model": None, "pre_tuned_model": {"tuned_model_name": tuned.tuned_model.model}}
    with pytest.raises(exceptions.InvalidArgument, match=re.escape(f"tuned with ({KEY}), got none")):
        create(client, **request)
    continued = create(client, **request, encryption_spec=encrypted)
    assert continued.encryption_spec.kms_key_name == KEY
    assert continued.pre_tuned_model.base_model == "gemini-2.5-flash"


# ---- dropped examples


def test_dropped_examples_are_counted_with_reasons(
    emulators: Callable[..., tuple[Client, VertexEmulator]], clock: FakeClock
) -> None:
    client = emulators(quota=5, job_seconds=10, dropped_examples=3)[0]
    by_knob = create(client).name
    by_label = create(client, labels={"tunedrop_emulator_dropped_examples": "25"}).name
    clock.advance(10)
    knob_stats = client.get_tuning_job(name=by_knob).tuning_data_stats.supervised_tuning_data_stats
    assert knob_stats.total_truncated_example_count == 3
    assert len(knob_stats.truncated_example_indices) == len(knob_stats.dropped_example_reasons) == 3
    indices = list(knob_stats.truncated_example_indices)
    assert indices == sorted(indices) and all(1 <= i <= knob_stats.tuning_dataset_example_count for i in indices)
    for index, reason in zip(indices, knob_stats.dropped_example_reasons, strict=True):
        assert re.fullmatch(
            rf"Example {index} has \d+ tokens, more than the 131072 tokens allowed per example\.", reason
        )

    label_stats = client.get_tuning_job(name=by_label).tuning_data_stats.supervised_tuning_data_stats
    assert label_stats.total_truncated_example_count == 25
    assert len(label_stats.truncated_example_indices) == 10  # "a partial sample"


def test_dropped_examples_leave_the_billable_tokens_of_the_kept_examples(
    emulators: Callable[..., tuple[Client, VertexEmulator]], clock: FakeClock
) -> None:
    def stats(**knobs: Any) -> aiplatform_v1.SupervisedTuningDataStats:
        emulator = emulators(quota=1, job_seconds=10, seed=5, **knobs)[1]
        name = emulator.create_tuning_job(PARENT, tuning_job(supervised_tuning_spec=spec(2))).name
        clock.advance(10)
        job: aiplatform_v1.TuningJob = emulator.get_tuning_job(name)
        return job.tuning_data_stats.supervised_tuning_data_stats

    plain, dropping = stats(), stats(dropped_examples=50)
    assert plain.total_truncated_example_count == 0 and list(plain.dropped_example_reasons) == []
    assert dropping.tuning_dataset_example_count == plain.tuning_dataset_example_count
    assert dropping.total_billable_token_count < plain.total_billable_token_count
    per_example = plain.total_billable_token_count / plain.tuning_dataset_example_count
    kept = plain.tuning_dataset_example_count - 50
    assert dropping.total_billable_token_count == pytest.approx(per_example * kept, rel=1e-3)


def test_a_malformed_dropped_examples_label_is_refused(client: Client) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="tunedrop_emulator_dropped_examples"):
        create(client, labels={"tunedrop_emulator_dropped_examples": "some"})


# ---- quota mode "wait"


def test_wait_mode_holds_jobs_pending_until_a_slot_frees(
    emulators: Callable[..., tuple[Client, VertexEmulator]], clock: FakeClock
) -> None:
    client, emulator = emulators(quota=2, job_seconds=10, quota_mode="wait")
    t0 = clock.now
    names = [create(client).name for _ in range(5)]
    assert (emulator.active_job_count(), emulator.waiting_job_count()) == (2, 3)

    clock.advance(5)
    jobs = [client.get_tuning_job(name=name) for name in names]
    assert [job.state for job in jobs] == [State.JOB_STATE_RUNNING] * 2 + [State.JOB_STATE_PENDING] * 3
    assert all("start_time" not in job for job in jobs[2:])

    clock.advance(5)  # the first two end at t0 + 10: two waiting jobs take their slots then
    assert (emulator.active_job_count(), emulator.waiting_job_count()) == (2, 1)
    clock.advance(1)
    third = client.get_tuning_job(name=names[2])
    assert third.state == State.JOB_STATE_RUNNING
    # start_time is when it actually started: admitted at t0 + 10, RUNNING 1 s later.
    assert third.start_time.timestamp() == pytest.approx(t0 + 11)

    client.cancel_tuning_job(name=names[3])  # a cancel frees a slot at once for the last one
    assert (emulator.active_job_count(), emulator.waiting_job_count()) == (2, 0)
    clock.advance(100)
    ended = [client.get_tuning_job(name=name) for name in names]
    assert [job.state for job in ended] == [State.JOB_STATE_SUCCEEDED] * 3 + [
        State.JOB_STATE_CANCELLED,
        State.JOB_STATE_SUCCEEDED,
    ]
    assert ended[4].start_time.timestamp() == pytest.approx(t0 + 12)


def test_wait_mode_admits_through_a_long_gap_in_order(
    emulators: Callable[..., tuple[Client, VertexEmulator]], clock: FakeClock
) -> None:
    """Nobody looks for a while: each waiting job still started when the slot before it freed."""
    client, _ = emulators(quota=1, job_seconds=10, quota_mode="wait")
    t0 = clock.now
    names = [create(client).name for _ in range(4)]
    clock.advance(1000)
    jobs = [client.get_tuning_job(name=name) for name in names]
    assert all(job.state == State.JOB_STATE_SUCCEEDED for job in jobs)
    assert [job.end_time.timestamp() - t0 for job in jobs] == pytest.approx([10, 20, 30, 40])
    assert [job.start_time.timestamp() - t0 for job in jobs] == pytest.approx([1, 11, 21, 31])


def test_a_waiting_job_can_be_cancelled_without_ever_starting(
    emulators: Callable[..., tuple[Client, VertexEmulator]], clock: FakeClock
) -> None:
    client, emulator = emulators(quota=1, job_seconds=10, quota_mode="wait")
    running, waiting = create(client).name, create(client).name
    client.cancel_tuning_job(name=waiting)
    clock.advance(20)
    cancelled = client.get_tuning_job(name=waiting)
    assert cancelled.state == State.JOB_STATE_CANCELLED and "start_time" not in cancelled
    assert client.get_tuning_job(name=running).state == State.JOB_STATE_SUCCEEDED
    assert emulator.waiting_job_count() == 0


def test_refuse_mode_is_the_default(emulators: Callable[..., tuple[Client, VertexEmulator]]) -> None:
    client, emulator = emulators(quota=1, job_seconds=10)
    assert emulator.config.quota_mode == "refuse"
    create(client)
    with pytest.raises(exceptions.ResourceExhausted):
        create(client)
    assert emulator.waiting_job_count() == 0
