"""A sign-in between the redirect to the IdP and its callback: state, nonce, PKCE verifier,
where to go after, and which browser started it.

Stored on the server, keyed by ``state``, taken exactly once (a replayed or forged callback
finds nothing), expiring after ``TTL_S``. In process memory for one process; in Redis when
the gateway shares state through Redis, so the callback may land on another replica.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol

import orjson

from sluice.clock import Clock

if TYPE_CHECKING:
    from redis.asyncio import Redis

TTL_S = 600.0
"""A sign-in must come back from the IdP within ten minutes."""
MAX_PENDING = 10_000
"""Sign-ins kept in memory at most (the oldest are dropped beyond)."""
_REDIS_PREFIX = "sluice:sso:tx:"


@dataclass(frozen=True, slots=True)
class Transaction:
    idp: str
    nonce: str
    verifier: str
    """The PKCE code verifier (S256)."""
    next: str
    browser: str
    """SHA-256 of the random value in the browser's sign-in cookie."""
    redirect_uri: str
    created_at: float


class TransactionStore(Protocol):
    async def put(self, state: str, tx: Transaction) -> None:
        """Keep ``tx`` under ``state`` for ``TTL_S``."""
        ...

    async def take(self, state: str) -> Transaction | None:
        """The transaction of ``state``, removed as it is read (single use); ``None`` when
        unknown, already taken or expired."""
        ...


class MemoryTransactions:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._items: dict[str, Transaction] = {}

    async def put(self, state: str, tx: Transaction) -> None:
        now = self._clock.now()
        if len(self._items) >= MAX_PENDING:
            self._items = {s: t for s, t in self._items.items() if now - t.created_at < TTL_S}
            while len(self._items) >= MAX_PENDING:
                self._items.pop(next(iter(self._items)))
        self._items[state] = tx

    async def take(self, state: str) -> Transaction | None:
        tx = self._items.pop(state, None)
        if tx is None or self._clock.now() - tx.created_at >= TTL_S:
            return None
        return tx


class RedisTransactions:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def put(self, state: str, tx: Transaction) -> None:
        await self._redis.set(_REDIS_PREFIX + state, orjson.dumps(asdict(tx)), ex=int(TTL_S))

    async def take(self, state: str) -> Transaction | None:
        raw = await self._redis.getdel(_REDIS_PREFIX + state)
        if raw is None:
            return None
        return Transaction(**orjson.loads(raw))


def transaction_store(clock: Clock, redis: Redis | None) -> TransactionStore:
    """Redis when the process has one (replicas share sign-ins), else memory."""
    return RedisTransactions(redis) if redis is not None else MemoryTransactions(clock)
