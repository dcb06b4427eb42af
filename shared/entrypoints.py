"""What every function does around its one service call: log context and error mapping.

A PermanentError is logged and acknowledged (returning normally gives the push a 2xx);
anything else is raised so Pub/Sub redelivers, and after enough tries dead-letters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared import logs
from shared.bootstrap import App, get_app
from shared.errors import ConfigError, PermanentError
from shared.triggers import evaluation_request, uploaded_object


def _run(name: str, event: Any, work: Callable[[App], Any], app: App | None = None) -> None:
    with logs.log_context(event_id=str(event["id"]), function=name):
        try:
            result = work(app or get_app())
        except PermanentError as exc:
            logs.error("permanent error; message acknowledged", error=str(exc), error_type=type(exc).__name__)
            return
        except Exception as exc:
            logs.error("transient error; message will be redelivered", error=str(exc), error_type=type(exc).__name__)
            raise
        logs.info(f"{name} done", result=result)


def handle_upload(event: Any, app: App | None = None) -> None:
    def work(app: App) -> str:
        obj = uploaded_object(event)
        return "ignored: not a finalize event" if obj is None else app.uploads.handle(obj).value

    _run("upload", event, work, app)


def handle_dispatch(event: Any, app: App | None = None) -> None:
    def work(app: App) -> list[str]:
        # The deployed policies' version is kept once per process (never raises); here, not in get_app(),
        # which the CLI also uses with an operator's shell settings.
        app.policy_history.note_deployed()
        return app.dispatcher.dispatch()

    _run("dispatch", event, work, app)


def handle_evaluate(event: Any, app: App | None = None) -> None:
    def work(app: App) -> str:
        job_id = evaluation_request(event)
        if app.gate is None:
            raise ConfigError("the evaluation gate has no model to ask or judge: see shared/bootstrap.py")
        with logs.log_context(job_id=job_id):
            return app.gate.evaluate(job_id)

    _run("evaluate", event, work, app)


def handle_poll(event: Any, app: App | None = None) -> None:
    _run("poll", event, lambda app: app.poller.poll(), app)
