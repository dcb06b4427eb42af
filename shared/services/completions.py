"""Publishing completion events once in effect: record first, publish, then mark published.

Before publishing, the job's cost is settled in its team's spend (shared/services/budgets.py): it is then
retried with the publish, until both are done (settling twice changes nothing)."""

from __future__ import annotations

import json
from datetime import timedelta

from shared import logs
from shared.clock import Clock
from shared.config import Settings
from shared.errors import TransientError
from shared.events import completion_event
from shared.jobs import Job, JobState
from shared.ports import JobStore, Publisher
from shared.services.budgets import BudgetBook
from shared.services.lifecycle import LifecycleEvents

FLUSH_GRACE = timedelta(seconds=20)


class CompletionNotifier:
    def __init__(
        self, store: JobStore, publisher: Publisher, settings: Settings, clock: Clock, lifecycle: LifecycleEvents
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._settings = settings
        self._clock = clock
        self._lifecycle = lifecycle
        self._budgets = BudgetBook(store, settings.team_policies, clock, settings.tuning_prices)

    def publish(self, job: Job) -> None:
        """Publish the job's completion event, then clear its pending mark.

        A crash anywhere in between leaves the mark set, and the next attempt publishes the
        same event (same data, same ce-id) again: subscribers de-duplicate on ce-id.
        """
        if not job.completion_pending:
            return
        self._budgets.settle(job)
        event = completion_event(job, project=self._settings.project)
        message_id = self._publisher.publish(self._settings.completions_topic, event.data, event.attributes)
        logs.info(
            "completion event published",
            job_id=job.job_id,
            ce_id=job.completion_event_id,
            ce_type=event.attributes["ce-type"],
            message_id=message_id,
        )
        if job.state is JobState.SUCCEEDED and job.promote_as:
            # The evaluation gate judges it next: asked before the mark, so a crash asks again (it is idempotent).
            request = json.dumps({"job_id": job.job_id}).encode()
            self._publisher.publish(self._settings.evaluate_topic, request, {"job_id": job.job_id})
        self._mark_published(job.job_id, job.completion_event_id)
        self._lifecycle.emit(job, "finished", event_type=event.attributes["ce-type"])

    def _mark_published(self, job_id: str, event_id: str) -> None:
        def mark(job: Job) -> Job | None:
            if not job.completion_pending or job.completion_event_id != event_id:
                return None  # marked already, or a newer outcome (a retry) owns the mark now
            return job.with_fields(completion_pending=False)

        self._store.update(job_id, mark)

    def flush_pending(self, grace: timedelta = FLUSH_GRACE) -> int:
        """Publish completions recorded at least `grace` ago but still not published (crash recovery).

        The grace leaves a live publisher time to finish, so the safety net rarely duplicates it.
        """
        cutoff = self._clock() - grace
        published = 0
        for pending in self._store.completion_pending():
            if pending.value.updated_at <= cutoff:
                try:
                    self.publish(pending.value)
                except TransientError as exc:  # the next tick tries again; the other jobs go on now
                    logs.warning("completion event not republished", job_id=pending.value.job_id, error=str(exc))
                    continue
                published += 1
        return published
