"""Routing-policy reloads: this process reloads its Cedar files, and every other process
follows through a counter in the database (:data:`POLICIES_VERSION`), bumped atomically in
the same unit of work as the audit entry."""

from __future__ import annotations

import asyncio
import logging

from sluice.auth.principal import Principal
from sluice.routing.policy import PolicyEngine
from sluice.routing.policy.engine import ReloadResult
from sluice.storage.base import MetaRepository
from sluice.tenancy.rules import forbidden
from sluice.tenancy.service import Tenancy

log = logging.getLogger("sluice")

POLICIES_VERSION = "policies_version"
"""The meta counter of requested policy reloads."""


def admin_only(actor: Principal) -> None:
    if not actor.is_admin:
        raise forbidden("only admins manage routing policies")


async def request_reload(tenancy: Tenancy, actor: Principal) -> int:
    """Ask every running process to reload its policy files, without loading them here (the
    CLI's way); returns the new counter. The request and its audit entry commit together."""
    admin_only(actor)
    async with tenancy.changing(actor, "routing.reload_request", ("routing", "policies")) as unit:
        return await unit.meta.increment(POLICIES_VERSION)


class PolicyService:
    """Reloads routing policies here and asks every other process to follow."""

    def __init__(self, engine: PolicyEngine, meta: MetaRepository, tenancy: Tenancy) -> None:
        self.engine = engine
        self._meta = meta
        self._tenancy = tenancy
        self.version = 0
        """The reload counter this process's policies reflect."""

    async def reload(self, actor: Principal) -> ReloadResult:
        """Reload the policy files here (a bad set keeps the active one), audit it and, when
        the files loaded, bump the counter so the other processes reload too."""
        admin_only(actor)
        result = await asyncio.to_thread(self.engine.reload)
        version = None
        async with self._tenancy.changing(
            actor,
            "routing.reload",
            ("routing", "policies"),
            after={"ok": result.ok, "generation": result.generation},
        ) as unit:
            if result.ok:
                version = await unit.meta.increment(POLICIES_VERSION)
        if version is not None:
            self.version = version
        return result

    async def follow(self) -> None:
        """Reload the policy files when another process asked for it since the last time."""
        if not self.engine.enabled:
            return
        version = int(await self._meta.get(POLICIES_VERSION) or 0)
        if version != self.version:
            self.version = version
            result = await asyncio.to_thread(self.engine.reload)
            if not result.ok:
                log.error(
                    "routing policy reload failed; keeping the active set: %s",
                    "; ".join(str(p) for p in result.problems),
                )
