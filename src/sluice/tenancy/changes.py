"""The unit of work every tenancy change goes through, with its audit trail.

Every mutation is checked against the actor (``rules``), then written together with its audit
entry (who, what, when, before/after; key hashes never appear) in one unit of work, so a
failure leaves neither; only after the commit is this process's key cache reloaded (other
processes follow through the change counter or Redis).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sluice.auth.keys import KeyRecord
from sluice.auth.principal import Principal
from sluice.clock import Clock
from sluice.errors import ErrorKind, GatewayError
from sluice.storage.base import KeyRepository, MetaRepository, TenancyRepository, Unit
from sluice.tenancy import rules
from sluice.tenancy.audit import snapshot
from sluice.tenancy.model import AuditEntry, AuditFilter, Directory


def new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(8).hex()}"


class Changes:
    """Audited units of work over the tenancy repositories (the base of ``Tenancy``)."""

    def __init__(
        self,
        repo: TenancyRepository,
        keys: KeyRepository,
        meta: MetaRepository,
        *,
        unit: Callable[[], AbstractAsyncContextManager[Unit]],
        clock: Clock,
        changed: Callable[[], Awaitable[None]],
        default_max_keys: int = 20,
    ) -> None:
        """``unit``: opens a unit of work (``Storage.unit``); ``repo``, ``keys`` and ``meta``
        are for reads (and writes that need no audit entry)."""
        self.repo = repo
        self._unit = unit
        self.keys = keys
        self._meta = meta
        self._clock = clock
        self._changed = changed
        self.default_max_keys = default_max_keys

    def now(self) -> float:
        return self._clock.now()

    def entry(
        self,
        actor: Principal,
        action: str,
        target: tuple[str, str],
        *,
        org_id: str | None,
        before: Any = None,
        after: Any = None,
    ) -> AuditEntry:
        """The audit entry of a change (``target``: type and id), stamped now."""
        return AuditEntry(
            at=self._clock.now(),
            actor=actor.user_id or actor.key_id,
            action=action,
            target_type=target[0],
            target_id=target[1],
            org_id=org_id,
            before=snapshot(before) if before is not None else None,
            after=snapshot(after) if after is not None else None,
        )

    @asynccontextmanager
    async def change(self, entry: AuditEntry) -> AsyncIterator[Unit]:
        """A unit of work that has staged ``entry``: write the change through the unit it
        gives; both commit when the block ends, neither when it raises. Then (never before
        the commit) the key cache is reloaded and other processes told."""
        async with self._unit() as unit:
            await unit.tenancy.audit(entry)
            yield unit
        await self._changed()

    def changing(
        self,
        actor: Principal,
        action: str,
        target: tuple[str, str],
        *,
        org_id: str | None = None,
        before: Any = None,
        after: Any = None,
    ) -> AbstractAsyncContextManager[Unit]:
        """:meth:`change` with the entry built by :meth:`entry`."""
        return self.change(
            self.entry(actor, action, target, org_id=org_id, before=before, after=after)
        )

    async def directory(self) -> Directory:
        return await self.repo.directory()

    # audit -------------------------------------------------------------------------------
    async def audit_entries(
        self,
        actor: Principal,
        *,
        org_id: str | None,
        limit: int,
        before_id: int | None,
        where: AuditFilter | None = None,
    ) -> list[AuditEntry]:
        if not actor.is_admin and (org_id is None or org_id not in actor.org_admin_of):
            raise rules.forbidden("admins see the whole audit log; org admins pass their org_id")
        return await self.repo.audit_entries(
            org_id=org_id, limit=limit, before_id=before_id, where=where
        )

    async def audit_event(
        self,
        actor: Principal,
        action: str,
        target: tuple[str, str],
        *,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Write an audit entry on its own (values already masked): for an operation that is
        deliberately not one transaction (a dead-letter replay stores each row on its own).
        A change writes its entry in its own unit instead (:meth:`changing`)."""
        async with self.changing(actor, action, target, org_id=None, after=after):
            pass

    def audit_key(
        self,
        actor: Principal,
        action: str,
        record: KeyRecord,
        *,
        before: KeyRecord | None = None,
        org_id: str | None = None,
    ) -> AbstractAsyncContextManager[Unit]:
        """:meth:`change` for a key: write the key through the unit it gives."""
        return self.changing(
            actor, action, ("key", record.id), org_id=org_id, before=before, after=record
        )


async def unique(write: Awaitable[None], kind: str, name: str) -> None:
    """Run ``write``; a refusal (the name is taken) is a 409. The unit rolls back."""
    try:
        await write
    except Exception as exc:
        raise conflict(kind, name) from exc


def conflict(kind: str, name: str) -> GatewayError:
    return GatewayError(
        ErrorKind.CALLER_BAD_REQUEST,
        f"a {kind} named {name!r} already exists",
        status=409,
        code="conflict",
    )
