"""The one composition root: builds clients, adapters and services from Settings.

Nothing here runs at import time; entry points call `get_app()` on their first event.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from shared.adapters.gcs_uris import GcsUriChecker
from shared.adapters.identity import DeclaredOperator, OperatorIdentity, operator_identity
from shared.adapters.vertex_tokens import VertexTokenCounter
from shared.clock import Clock, system_clock
from shared.config import Settings
from shared.policy import Policies
from shared.ports import BlobStore, JobStore, Judge, ModelAnswers, Publisher, TuningService
from shared.services.alias_ops import AliasOperations
from shared.services.base import JobContext
from shared.services.completions import CompletionNotifier
from shared.services.dispatch import Dispatcher
from shared.services.gate import GateKeeper
from shared.services.lifecycle import LifecycleEvents
from shared.services.operations import Operations
from shared.services.policy_history import PolicyHistory
from shared.services.poll import Poller
from shared.services.reconcile import Reconciler
from shared.services.slots import SlotLedger
from shared.services.upload import UploadService
from shared.validation import TokenCounter, UriChecker


@dataclass(frozen=True)
class App:
    settings: Settings
    store: JobStore
    publisher: Publisher
    blobs: BlobStore
    tuning: TuningService
    clock: Clock
    ledger: SlotLedger
    completions: CompletionNotifier
    uploads: UploadService
    dispatcher: Dispatcher
    poller: Poller
    operations: Operations
    lifecycle: LifecycleEvents
    # The operators' team policies (TUNEDROP_TEAM_POLICIES), parsed and checked with the settings at cold start.
    policies: Policies
    # Who runs an operator command (the `tunedrop` CLI records it with each action), and the policies' history.
    operator_identity: OperatorIdentity
    policy_history: PolicyHistory
    # Operators' moves of aliases (tunedrop promote / rollback).
    aliases: AliasOperations
    # The evaluation gate (None when assembled without a model to ask and a judge: it then cannot run).
    gate: GateKeeper | None = None


def assemble(
    settings: Settings,
    *,
    store: JobStore,
    publisher: Publisher,
    blobs: BlobStore,
    tuning: TuningService,
    clock: Clock = system_clock,
    token_counter: TokenCounter | None = None,
    uri_checker: UriChecker | None = None,
    identity: OperatorIdentity | None = None,
    answers: ModelAnswers | None = None,
    judge: Judge | None = None,
) -> App:
    """Wire services onto the given ports (tests pass in-memory fakes here). `identity` defaults to
    TUNEDROP_OPERATOR alone; without `answers` and `judge` there is no evaluation gate."""
    ledger = SlotLedger(store, clock)
    lifecycle = LifecycleEvents(publisher, settings)
    completions = CompletionNotifier(store, publisher, settings, clock, lifecycle)
    context = JobContext(store, tuning, ledger, completions, publisher, lifecycle, settings, clock)
    return App(
        settings=settings,
        store=store,
        publisher=publisher,
        blobs=blobs,
        tuning=tuning,
        clock=clock,
        ledger=ledger,
        completions=completions,
        uploads=UploadService(
            store,
            blobs,
            publisher,
            completions,
            settings,
            clock,
            lifecycle,
            token_counter=token_counter,
            uri_checker=uri_checker,
        ),
        dispatcher=Dispatcher(context, settings.team_policies),
        poller=Poller(context, Reconciler(context, blobs), settings.team_policies),
        operations=Operations(context),
        lifecycle=lifecycle,
        policies=settings.team_policies,
        operator_identity=identity or DeclaredOperator(settings.operator),
        policy_history=PolicyHistory(store, settings.team_policies, clock),
        aliases=AliasOperations(store, publisher, settings, clock),
        gate=None
        if answers is None or judge is None
        else GateKeeper(store, blobs, answers, judge, publisher, settings, clock),
    )


def vertex_client(settings: Settings, region: str) -> object:
    from google.cloud import aiplatform_v1

    from shared.adapters.vertex_clients import regional_client

    return regional_client(aiplatform_v1.GenAiTuningServiceClient, settings.vertex_emulator_host, region)


def build_app(settings: Settings | None = None, *, environ: Mapping[str, str] | None = None) -> App:
    """Wire the real Google Cloud adapters (emulators when the *_EMULATOR_HOST variables say so)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore
    from google.cloud.pubsub_v1 import PublisherClient
    from google.cloud.storage import Client as StorageClient

    from shared.adapters.firestore_store import FirestoreJobStore
    from shared.adapters.gcs_blobs import GcsBlobStore
    from shared.adapters.pubsub_publisher import PubSubPublisher
    from shared.adapters.vertex_judge import VertexJudge, evaluation_client
    from shared.adapters.vertex_predict import VertexModelAnswers, prediction_client
    from shared.adapters.vertex_tuning import VertexTuning

    env = os.environ if environ is None else environ
    settings = settings or Settings.from_env(env)
    if env.get("STORAGE_EMULATOR_HOST"):
        gcs = StorageClient(project=settings.project, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    else:
        gcs = StorageClient(project=settings.project)
    return assemble(
        settings,
        store=FirestoreJobStore(
            firestore.Client(project=settings.project, database=settings.firestore_database),
            settings.collection_prefix,
            retention=timedelta(days=settings.retention_days),
        ),
        publisher=PubSubPublisher(PublisherClient(), settings.project),
        blobs=GcsBlobStore(gcs),
        tuning=VertexTuning(
            functools.cache(lambda region: vertex_client(settings, region)),  # type: ignore[arg-type]
            settings.project,
            settings.region,
            settings.quota_regions,
        ),
        # Only examples whose UTF-8 size could exceed the token limit are counted exactly.
        token_counter=VertexTokenCounter(settings.project, settings.region, host=settings.vertex_emulator_host),
        uri_checker=GcsUriChecker(gcs),
        # Against the emulators credentials are anonymous, so only TUNEDROP_OPERATOR can name the caller.
        identity=operator_identity(settings.operator, emulated=bool(env.get("FIRESTORE_EMULATOR_HOST"))),
        answers=VertexModelAnswers(
            functools.cache(lambda region: prediction_client(settings.vertex_emulator_host, region))
        ),
        judge=VertexJudge(
            functools.cache(lambda region: evaluation_client(settings.vertex_emulator_host, region)),
            settings.project,
            settings.region,
        ),
    )


_app: App | None = None
_app_lock = threading.Lock()


def get_app() -> App:
    """The instance's App, built once on first use (configuration is validated then)."""
    global _app
    with _app_lock:
        if _app is None:
            _app = build_app()
        return _app


def set_app(app: App | None) -> None:
    """Install the App the entry points use (functional tests install one built on fakes)."""
    global _app
    with _app_lock:
        _app = app
