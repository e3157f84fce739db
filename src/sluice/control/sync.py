"""Keeps this process's key cache in step with the database, and tells other processes.

Every admin change bumps the database's change counter; each process reloads its keys,
directory and stored credentials when the counter moved (polled, or at once when a Redis
message on :data:`KEYS_CHANNEL` says so) and seeds the budgets it has not seen yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sluice.auth.cache import KeyCache
from sluice.budgets import seed_budgets
from sluice.budgets.base import BudgetStore
from sluice.budgets.seed import SpentSince
from sluice.clock import Clock
from sluice.storage.base import KeyRepository, TenancyRepository
from sluice.tenancy.resolve import DirectoryIndex
from sluice.tenancy.terms import TermsGate

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("sluice")

KEYS_CHANNEL = "sluice:keys"
"""The Redis channel on which a change is announced (the message carries no data)."""


async def publish_key_change(redis: Redis) -> None:
    """Tell every process subscribed to :data:`KEYS_CHANNEL` to reload now."""
    await redis.publish(KEYS_CHANNEL, b"1")


class KeySync:
    """Reloads the key cache when the database changed; announces this process's changes."""

    def __init__(
        self,
        cache: KeyCache,
        *,
        keys: KeyRepository,
        tenancy: TenancyRepository,
        spent_since: SpentSince,
        budgets: BudgetStore,
        load_credentials: Callable[[], Awaitable[None]],
        clock: Clock,
        redis: Redis | None,
        load_terms: Callable[[], Awaitable[TermsGate | None]] | None = None,
        load_mcp_servers: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``load_credentials``: reloads the stored provider credentials (with the keys,
        since both move the same change counter); ``load_terms``: who accepted the current
        terms of service (an acceptance moves the counter too); ``load_mcp_servers``: hands
        the stored MCP servers to the registry (their writes move the counter too)."""
        self._cache = cache
        self._keys = keys
        self._tenancy = tenancy
        self._spent_since = spent_since
        self._budgets = budgets
        self._load_credentials = load_credentials
        self._clock = clock
        self._redis = redis
        self._load_terms = load_terms
        self._load_mcp_servers = load_mcp_servers
        self._seeded: set[tuple[str, str]] = set()
        self.changed = asyncio.Event()
        """Set when another process announced a change (the poll loop waits on it)."""

    async def refresh(self, *, force: bool = False) -> None:
        """Reload keys, the directory, stored credentials and stored MCP servers when
        anything changed."""
        version = await self._keys.version()
        if force or version != self._cache.version:
            terms = await self._load_terms() if self._load_terms is not None else None
            index = DirectoryIndex.build(await self._tenancy.directory(), terms=terms)
            await self._load_credentials()
            if self._load_mcp_servers is not None:
                await self._load_mcp_servers()
            self._cache.replace(await self._keys.list(), version=version, index=index)
            await self._seed_budgets()

    async def after_change(self) -> None:
        """This process changed something: reload now, then tell the others."""
        await self.refresh(force=True)
        await self.announce()

    async def announce(self) -> None:
        """Tell other processes to reload keys now (they also poll)."""
        if self._redis is not None:
            try:
                await publish_key_change(self._redis)
            except Exception:
                log.warning("could not publish a key change to Redis", exc_info=True)

    async def _seed_budgets(self) -> None:
        """Load this period's recorded spend of every budget not seen before, so budgets
        hold across restarts (and for budgets set while running)."""
        fresh = [
            (scope, spec)
            for scope, spec in self._cache.budget_checks()
            if (scope, spec.period) not in self._seeded
        ]
        if not fresh:
            return
        await seed_budgets(
            self._budgets, fresh, spent_since=self._spent_since, now=self._clock.now()
        )
        self._seeded.update((scope, spec.period) for scope, spec in fresh)
