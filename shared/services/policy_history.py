"""The history of the team policies: each distinct version the functions ran with, kept once, with who changed it
and why (the ``change`` metadata Terraform renders into TUNEDROP_TEAM_POLICIES; see shared/policy.py).

A record's id is the sha256 of the policies' canonical JSON (``Policies.digest``) with who applied them and why
(``PolicyRecord.record_id``), and the store keeps a record only if it has none with that id
(``JobStore.record_policy`` is create-only), so any number of instances noting the same deployment keep it once:
the first seen_at. Going back to an earlier version, with its own change note, is a record of its own, so the
newest record is the version deployed (unless a deployment repeats an earlier one's note word for word).
Policies that are Tunedrop's built-in defaults, without change metadata, are nothing anyone changed: not kept.
"""

from __future__ import annotations

import threading

from shared import logs
from shared.clock import Clock
from shared.policy import Policies
from shared.ports import JobStore, PolicyRecord

# How many versions `tunedrop policy history` lists unless asked for more.
DEFAULT_HISTORY_LIMIT = 50


class PolicyHistory:
    def __init__(self, store: JobStore, policies: Policies, clock: Clock) -> None:
        self._store = store
        self._policies = policies
        self._clock = clock
        self._noted = False
        self._lock = threading.Lock()

    def note_deployed(self) -> bool:
        """Keep the policies this instance runs with, once per instance (a failed write is tried again at the next
        call). True when this call kept a version no instance had kept before."""
        with self._lock:
            if self._noted:
                return False
            if not self._policies.configured and not self._policies.change.changed_by:
                self._noted = True
                return False
            record = self.deployed_record()
            try:
                kept = self._store.record_policy(record)
            except Exception as exc:  # the history must never stop the dispatcher; the next pass tries again
                logs.warning("could not keep the team policies' version; trying again later", error=str(exc))
                return False
            self._noted = True
        if kept:
            logs.info(
                "team policies version kept",
                digest=record.digest,
                changed_by=record.changed_by,
                reason=record.reason,
            )
        return kept

    def deployed_record(self) -> PolicyRecord:
        """The record of the policies this instance runs with, as note_deployed keeps it."""
        return PolicyRecord(
            digest=self._policies.digest,
            policies=self._policies.canonical_json(),
            changed_by=self._policies.change.changed_by,
            reason=self._policies.change.reason,
            seen_at=self._clock(),
        )

    def history(self, limit: int = DEFAULT_HISTORY_LIMIT) -> list[PolicyRecord]:
        """The kept versions, newest first."""
        return self._store.policy_history(limit)

    def current(self) -> PolicyRecord | None:
        """The newest kept version: the one the functions run with (once any of them noted it)."""
        newest = self._store.policy_history(1)
        return newest[0] if newest else None
