"""Operators move aliases by hand: `tunedrop promote ALIAS JOB_ID` and `tunedrop rollback ALIAS`, each recorded on
the alias with who and why, and announced like the gate's promotions (tunedrop.model.v1.promoted).

The move and its announcement are one compare-and-set write (the alias's `pending` announcement), then the publish,
then a write that clears it: a command that dies in between, run again, publishes the same event (same ce-id) and
moves nothing further."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from shared import logs
from shared.aliases import Alias, AliasError, Announcement, Champion
from shared.clock import Clock
from shared.config import Settings
from shared.errors import JobNotFound, NotAllowed, TransientError
from shared.events import champion_event
from shared.jobs import JobState
from shared.ports import JobStore, Publisher
from shared.services.operations import OperatorRequest

MAX_ALIAS_ATTEMPTS = 5  # compare-and-set rounds before the command gives up and says to run it again


class AliasOperations:
    def __init__(self, store: JobStore, publisher: Publisher, settings: Settings, clock: Clock) -> None:
        self._store = store
        self._publisher = publisher
        self._settings = settings
        self._clock = clock

    def promote(self, name: str, job_id: str, request: OperatorRequest) -> Alias:
        """Make the job's tuned model the alias's champion (a new alias takes the job's team)."""
        found = self._store.get(job_id)
        if found is None:
            raise JobNotFound(f"no job {job_id}")
        job = found.value
        if job.state is not JobState.SUCCEEDED or not job.tuned_model:
            raise NotAllowed(f"job {job_id} is {job.state.value} without a tuned model: only a SUCCEEDED job's model")
        team = job.team or self._settings.default_team
        verdict = job.verdict or {}
        champion = Champion(
            job_id=job.job_id,
            tuned_model=job.tuned_model,
            endpoint=str(verdict.get("candidate_model") or job.endpoint),
            promoted_at=self._clock(),
            checkpoint_id=str(verdict.get("checkpoint_id") or ""),
            base_model=job.base_model,
            actor=request.actor,
            reason=request.reason,
        )

        def move(alias: Alias | None) -> Alias:
            current = alias or Alias(name, team)
            if current.team != team:
                raise NotAllowed(f"alias {name} is team {current.team}'s, and job {job_id} is team {team}'s")
            return current.promoted(champion)

        return self._move(name, move, request, "promote")

    def rollback(self, name: str, request: OperatorRequest) -> Alias:
        """Put the alias back on the champion before the current one."""

        def back(alias: Alias | None) -> Alias:
            if alias is None:
                raise JobNotFound(f"no alias {name}")
            try:
                return alias.rolled_back()
            except AliasError as exc:
                raise NotAllowed(str(exc)) from exc

        return self._move(name, back, request, "rollback")

    def _move(self, name: str, change: Callable[[Alias | None], Alias], request: OperatorRequest, action: str) -> Alias:
        for _ in range(MAX_ALIAS_ATTEMPTS):
            found = self._store.read_alias(name)
            if found is not None and found.value.pending is not None:
                # An earlier command moved it and died before announcing: announce that move, and stop there.
                logs.warning("an earlier move of the alias was not announced: announcing it now", alias=name)
                return self._announce(found.value)
            moved = change(found.value if found is not None else None)
            if found is not None and moved == found.value:
                return moved  # already so: nothing to write or announce
            revision = moved.revision + 1
            pending = Announcement(f"{name}/{revision}", action, request.actor, request.reason)
            moved = msgspec.structs.replace(moved, revision=revision, pending=pending)
            if self._store.write_alias(moved, found.version if found is not None else None):
                return self._announce(moved)
        raise TransientError(f"alias {name} kept changing; run the command again")

    def _announce(self, alias: Alias) -> Alias:
        """Publish the alias's pending announcement, then clear it from the alias as stored now (the gate may have
        promoted meanwhile: its champion is kept, and no stale announcement is left for the next command)."""
        pending = alias.pending
        assert pending is not None
        event = champion_event(
            alias,
            project=self._settings.project,
            now=self._clock(),
            actor=pending.actor,
            reason=pending.reason,
            event_id=pending.event_id,
        )
        self._publisher.publish(self._settings.completions_topic, event.data, event.attributes)
        announced = msgspec.structs.replace(alias, pending=None)
        for _ in range(MAX_ALIAS_ATTEMPTS):
            found = self._store.read_alias(alias.name)
            if found is None or found.value.pending != pending:
                break  # cleared already (another command announced it)
            if self._store.write_alias(msgspec.structs.replace(found.value, pending=None), found.version):
                break
        champion = alias.champion.job_id if alias.champion else ""
        logs.info("alias moved by an operator", alias=alias.name, action=pending.action, champion=champion)
        return announced
