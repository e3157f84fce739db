"""Session records shared between replicas: what another gateway process needs to rebuild a
client session it does not hold (``Sessions`` keeps the live session in memory).

A record lives ``ttl_s`` (``mcp.session_idle_s``) after its last use on any replica. The
Redis store keeps one hash per session under ``{prefix}{session id}``; the memory store is
the in-tree fake (one process, several ``Sessions`` over it stand for several replicas).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from mcp.types import InitializeRequestParams

from sluice.clock import Clock

if TYPE_CHECKING:
    from redis.asyncio import Redis

REDIS_DEADLINE_S = 2.0
"""Deadline of each Redis round trip made for MCP sessions."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One gateway session as other replicas see it."""

    key_id: str
    """The key that created it: only that key may use it."""
    endpoint: str
    """The view it is bound to: the server's name, ``""`` for the aggregated ``/mcp``."""
    client_params: InitializeRequestParams
    """The client's ``initialize`` params (its capabilities decide which server->client
    requests are relayed)."""
    protocol_version: str
    """The protocol version negotiated at ``initialize``."""
    created: float
    last_used: float


class SessionStore(Protocol):
    """Where session records live. Every method has a deadline; failures raise."""

    async def save(self, session_id: str, record: SessionRecord) -> None:
        """Store (or replace) a record, alive for the store's TTL."""

    async def load(self, session_id: str) -> SessionRecord | None:
        """The record, ``None`` when it was forgotten or expired."""

    async def touch(self, session_ids: list[str], *, now: float) -> list[bool]:
        """Mark these sessions used at ``now`` (their TTL starts again); for each, whether
        its record still exists (a forgotten or expired record is not recreated)."""

    async def exists(self, session_ids: list[str]) -> list[bool]:
        """For each session, whether its record exists (nothing is refreshed)."""

    async def forget(self, session_id: str) -> None:
        """Remove a record (the session was deleted): no replica may use it any more."""


def encode(record: SessionRecord) -> dict[str, str]:
    return {
        "key_id": record.key_id,
        "endpoint": record.endpoint,
        "client_params": record.client_params.model_dump_json(by_alias=True, exclude_none=True),
        "protocol_version": record.protocol_version,
        "created": repr(record.created),
        "last_used": repr(record.last_used),
    }


def decode(fields: dict[str, str]) -> SessionRecord:
    return SessionRecord(
        key_id=fields["key_id"],
        endpoint=fields["endpoint"],
        client_params=InitializeRequestParams.model_validate_json(fields["client_params"]),
        protocol_version=fields["protocol_version"],
        created=float(fields["created"]),
        last_used=float(fields["last_used"]),
    )


class MemorySessionStore:
    """Records in this process, expired by the injected clock."""

    def __init__(self, *, ttl_s: float, clock: Clock) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._records: dict[str, tuple[dict[str, str], float]] = {}

    async def save(self, session_id: str, record: SessionRecord) -> None:
        self._records[session_id] = (encode(record), self._clock.now() + self._ttl_s)

    async def load(self, session_id: str) -> SessionRecord | None:
        found = self._live(session_id)
        return None if found is None else decode(found)

    async def touch(self, session_ids: list[str], *, now: float) -> list[bool]:
        alive: list[bool] = []
        for session_id in session_ids:
            found = self._live(session_id)
            if found is not None:
                found["last_used"] = repr(now)
                self._records[session_id] = (found, self._clock.now() + self._ttl_s)
            alive.append(found is not None)
        return alive

    async def exists(self, session_ids: list[str]) -> list[bool]:
        return [self._live(session_id) is not None for session_id in session_ids]

    async def forget(self, session_id: str) -> None:
        self._records.pop(session_id, None)

    def _live(self, session_id: str) -> dict[str, str] | None:
        found = self._records.get(session_id)
        if found is None:
            return None
        if found[1] <= self._clock.now():
            del self._records[session_id]
            return None
        return found[0]


_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_used', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisSessionStore:
    """Records as Redis hashes ``{prefix}{session id}`` with a TTL."""

    def __init__(self, redis: Redis, *, ttl_s: float, prefix: str = "sluice:mcp:s:") -> None:
        self._redis = redis
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._prefix = prefix
        self._touch = redis.register_script(_TOUCH)

    async def save(self, session_id: str, record: SessionRecord) -> None:
        key = self._prefix + session_id
        fields: dict[Any, Any] = {**encode(record)}  # redis-py's key type is invariant
        with anyio.fail_after(REDIS_DEADLINE_S):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(key, mapping=fields)
                pipe.pexpire(key, self._ttl_ms)
                await pipe.execute()

    async def load(self, session_id: str) -> SessionRecord | None:
        with anyio.fail_after(REDIS_DEADLINE_S):
            raw = await self._redis.hgetall(self._prefix + session_id)
        if not raw:
            return None
        return decode({_text(k): _text(v) for k, v in raw.items()})

    async def touch(self, session_ids: list[str], *, now: float) -> list[bool]:
        if not session_ids:
            return []
        with anyio.fail_after(REDIS_DEADLINE_S):
            async with self._redis.pipeline(transaction=False) as pipe:
                for session_id in session_ids:
                    await self._touch(
                        keys=[self._prefix + session_id],
                        args=[repr(now), self._ttl_ms],
                        client=pipe,
                    )
                done = await pipe.execute()
        return [bool(x) for x in done]

    async def exists(self, session_ids: list[str]) -> list[bool]:
        if not session_ids:
            return []
        with anyio.fail_after(REDIS_DEADLINE_S):
            async with self._redis.pipeline(transaction=False) as pipe:
                for session_id in session_ids:
                    pipe.exists(self._prefix + session_id)
                done = await pipe.execute()
        return [bool(x) for x in done]

    async def forget(self, session_id: str) -> None:
        with anyio.fail_after(REDIS_DEADLINE_S):
            await self._redis.delete(self._prefix + session_id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
