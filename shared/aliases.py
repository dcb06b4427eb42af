"""Aliases: a name a team's applications resolve to its champion tuned model, moved only by the evaluation gate
(a `better` verdict) or by the team's operators (`tunedrop promote`, `tunedrop rollback`).

One Firestore document per alias (`<prefix>_aliases/<alias>`), written by compare-and-set on its update time, with
the champion and every earlier one: a rollback restores the one before. An alias belongs to the team whose job first
asked for it; other teams' jobs and manifests cannot move it. Tunedrop stays out of the serving path: applications
learn the champion from the `tunedrop.model.v1.promoted` event (README: The evaluation gate), never from this store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

MAX_HISTORY = 100  # earlier champions kept on the document (a Firestore document holds at most 1 MiB)


class AliasError(Exception):
    """An alias cannot be moved as asked (another team's, nothing to roll back to, ...)."""


class Champion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A tuned model an alias named, from when, by whom (an operator's identity; "" for the gate) and why."""

    job_id: str
    tuned_model: str
    endpoint: str
    promoted_at: datetime
    checkpoint_id: str = ""
    base_model: str = ""
    actor: str = ""
    reason: str = ""


class Announcement(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An operator's move of the alias, written with the move and cleared once its event is published: a command
    that died in between announces it when run again (same ce-id), rather than moving the alias a second time."""

    event_id: str
    action: str  # promote or rollback
    actor: str
    reason: str


class Alias(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    team: str
    champion: Champion | None = None
    history: tuple[Champion, ...] = ()  # earlier champions, oldest first
    revision: int = 0  # moves so far: an operator's move is announced as <alias>/<revision>
    retired: tuple[str, ...] = ()  # jobs an operator rolled the alias back from: the gate never promotes them again
    pending: Announcement | None = None

    def promoted(self, champion: Champion) -> Alias:
        """The alias with `champion` in use; the one it replaces goes to the history."""
        if self.champion is not None and self.champion.job_id == champion.job_id:
            return self  # already the champion: a redelivered verdict moves nothing
        earlier = (*self.history, self.champion) if self.champion is not None else self.history
        return msgspec.structs.replace(self, champion=champion, history=earlier[-MAX_HISTORY:])

    def rolled_back(self) -> Alias:
        """The alias back on the champion before this one (the current one is dropped from it)."""
        if not self.history:
            raise AliasError(f"alias {self.name} has no earlier champion to roll back to")
        retired = (*self.retired, self.champion.job_id) if self.champion is not None else self.retired
        return msgspec.structs.replace(
            self, champion=self.history[-1], history=self.history[:-1], retired=retired[-MAX_HISTORY:]
        )


def alias_document(alias: Alias) -> dict[str, Any]:
    """The alias as stored (plain data; datetimes stay datetimes, as Firestore takes them)."""
    document: dict[str, Any] = msgspec.to_builtins(alias, builtin_types=(datetime,))
    for sequence in ("history", "retired"):
        document[sequence] = list(document[sequence])  # Firestore stores arrays, not tuples
    return document


def alias_from_document(document: dict[str, object]) -> Alias:
    return msgspec.convert(_plain_datetimes(document), Alias, builtin_types=(datetime,))


def _plain_datetimes(value: Any) -> Any:
    """Firestore gives its own datetime subclass (with nanoseconds), which msgspec takes only as text: read as it."""
    if isinstance(value, datetime):
        return datetime.fromisoformat(value.isoformat())
    if isinstance(value, dict):
        return {key: _plain_datetimes(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_datetimes(item) for item in value]
    return value
