"""Repositories over SQLAlchemy Core, the same SQL for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.auth.keys import KeyRecord
from sluice.storage.base import StoredCredential, StoredResponse
from sluice.storage.sql import tables as t
from sluice.storage.sql.console import SqlConsole
from sluice.storage.sql.convert import bump as _bump
from sluice.storage.sql.convert import dt as _dt
from sluice.storage.sql.convert import ts as _ts
from sluice.storage.sql.engine import create_engine
from sluice.storage.sql.tenancy import SqlTenancy
from sluice.usage.event import UsageEvent


def _key_from_row(row: Any) -> KeyRecord:
    created = _ts(row.created_at)
    assert created is not None
    return KeyRecord(
        id=row.id,
        public_id=row.public_id,
        name=row.name,
        key_hash=row.key_hash,
        preview=row.preview,
        created_at=created,
        expires_at=_ts(row.expires_at),
        revoked_at=_ts(row.revoked_at),
        last_used_at=_ts(row.last_used_at),
        models=tuple(row.models) if row.models is not None else None,
        metadata=dict(row.metadata or {}),
        user_id=row.user_id,
        service_account_id=row.service_account_id,
        team_id=row.team_id,
        models_exclude=tuple(row.models_exclude or ()),
        limits=dict(row.limits) if row.limits is not None else None,
        budget=dict(row.budget) if row.budget is not None else None,
        previous_hash=row.previous_hash,
        previous_valid_until=_ts(row.previous_valid_until),
    )


def key_values(record: KeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "public_id": record.public_id,
        "name": record.name,
        "key_hash": record.key_hash,
        "preview": record.preview,
        "created_at": _dt(record.created_at),
        "expires_at": _dt(record.expires_at),
        "revoked_at": _dt(record.revoked_at),
        "last_used_at": _dt(record.last_used_at),
        "models": list(record.models) if record.models is not None else None,
        "metadata": record.metadata,
        "user_id": record.user_id,
        "service_account_id": record.service_account_id,
        "team_id": record.team_id,
        "models_exclude": list(record.models_exclude),
        "limits": record.limits,
        "budget": record.budget,
        "previous_hash": record.previous_hash,
        "previous_valid_until": _dt(record.previous_valid_until),
    }


class SqlKeys:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, record: KeyRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(t.api_keys.insert().values(**key_values(record)))
            await _bump(conn, t.KEYS_VERSION)

    async def update(self, record: KeyRecord) -> None:
        """Replace a key's stored fields (rotation, governance); bumps the counter."""
        values = key_values(record)
        values.pop("last_used_at")
        async with self._engine.begin() as conn:
            await conn.execute(
                update(t.api_keys).where(t.api_keys.c.id == record.id).values(**values)
            )
            await _bump(conn, t.KEYS_VERSION)

    async def get(self, key_id: str) -> KeyRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id))).first()
        return _key_from_row(row) if row is not None else None

    async def list(self) -> list[KeyRecord]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(t.api_keys).order_by(t.api_keys.c.created_at, t.api_keys.c.id)
            )
            return [_key_from_row(r) for r in rows]

    async def revoke(self, key_id: str, *, at: float) -> KeyRecord | None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(t.api_keys)
                .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=_dt(at))
            )
            row = (await conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id))).first()
            if row is None:
                return None
            await _bump(conn, t.KEYS_VERSION)
        return _key_from_row(row)

    async def touch(self, last_used: Mapping[str, float]) -> None:
        if not last_used:
            return
        async with self._engine.begin() as conn:
            for key_id, ts in last_used.items():
                when = _dt(ts)
                col = t.api_keys.c.last_used_at
                await conn.execute(
                    update(t.api_keys)
                    .where(t.api_keys.c.id == key_id, (col.is_(None)) | (col < when))
                    .values(last_used_at=when)
                )

    async def version(self) -> int:
        async with self._engine.connect() as conn:
            value = await conn.scalar(select(t.meta.c.value).where(t.meta.c.name == t.KEYS_VERSION))
        return int(value) if value is not None else 0


def _usage_row(e: UsageEvent) -> dict[str, Any]:
    return {
        "request_id": e.request_id,
        "created_at": _dt(e.created_at),
        "endpoint": e.endpoint,
        "key_id": e.key_id,
        "model": e.model,
        "provider": e.provider,
        "deployment": e.deployment,
        "upstream_model": e.upstream_model,
        "prompt_tokens": e.prompt_tokens,
        "completion_tokens": e.completion_tokens,
        "cached_tokens": e.cached_tokens,
        "cache_write_tokens": e.cache_write_tokens,
        "tokens_estimated": e.tokens_estimated,
        "latency_ms": e.latency_ms,
        "ttft_ms": e.ttft_ms,
        "status": e.status,
        "error_kind": e.error_kind,
        "error_message": e.error_message[:1000] if e.error_message else None,
        "streamed": e.streamed,
        "end_user": e.end_user[:200] if e.end_user else None,
        "attempts": e.attempts,
        "attempt_errors": e.attempt_errors,
        "partial": e.partial,
        "cost_micros": e.cost_micros,
        "user_id": e.user_id,
        "team_id": e.team_id,
        "org_id": e.org_id,
    }


_USAGE_COLUMNS = tuple(c.name for c in t.usage.columns)
_SQLITE_USAGE_INSERT = (
    f"INSERT OR IGNORE INTO {t.usage.name} ({', '.join(_USAGE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _USAGE_COLUMNS)})"
)


def _sqlite_row(e: UsageEvent) -> tuple[Any, ...]:
    """A usage row as SQLAlchemy would store it in SQLite (so it reads back the same)."""
    row = _usage_row(e)
    row["created_at"] = datetime.fromtimestamp(e.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    row["tokens_estimated"] = int(e.tokens_estimated)
    row["streamed"] = int(e.streamed)
    row["partial"] = int(e.partial)
    if e.attempt_errors is not None:
        row["attempt_errors"] = orjson.dumps(e.attempt_errors).decode()
    return tuple(row[c] for c in _USAGE_COLUMNS)


class SqlUsage:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        dialect = engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    async def insert_many(self, events: Sequence[UsageEvent]) -> None:
        if not events:
            return
        if self._sqlite:
            # The writer's hot loop: plain tuples straight to the driver. Preparing rows
            # through the statement compiler costs ~25 µs each on the event loop.
            rows = [_sqlite_row(e) for e in events]
            async with self._engine.begin() as conn:
                await conn.exec_driver_sql(_SQLITE_USAGE_INSERT, rows)
            return
        stmt = self._insert(t.usage).on_conflict_do_nothing(index_elements=["request_id"])
        async with self._engine.begin() as conn:
            await conn.execute(stmt, [_usage_row(e) for e in events])

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(t.usage)) or 0)

    async def recent(self, *, limit: int = 100) -> list[UsageEvent]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(t.usage).order_by(t.usage.c.created_at.desc()).limit(limit)
            )
            out = []
            for r in rows:
                data = dict(r._mapping)
                data["created_at"] = _ts(data["created_at"])
                out.append(UsageEvent(**data))
            return out


class SqlResponses:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def save(self, record: StoredResponse) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                t.responses.insert().values(
                    id=record.id,
                    key_id=record.key_id,
                    created_at=_dt(record.created_at),
                    model=record.model,
                    conversation=record.conversation,
                    body=record.body,
                )
            )

    async def get(self, response_id: str, *, key_id: str) -> StoredResponse | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.responses).where(
                        t.responses.c.id == response_id, t.responses.c.key_id == key_id
                    )
                )
            ).first()
        if row is None:
            return None
        created = _ts(row.created_at)
        assert created is not None
        return StoredResponse(
            row.id, row.key_id, created, row.model, list(row.conversation), dict(row.body)
        )

    async def delete(self, response_id: str, *, key_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                t.responses.delete().where(
                    t.responses.c.id == response_id, t.responses.c.key_id == key_id
                )
            )
        return bool(result.rowcount)


class SqlSpend:
    """Spend sums from the usage rows, for seeding budgets."""

    _COLUMNS = {
        "key": t.usage.c.key_id,
        "user": t.usage.c.user_id,
        "team": t.usage.c.team_id,
        "org": t.usage.c.org_id,
    }

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def spent_since(self, scope: str, start: int) -> int:
        """Micro-dollars billed to ``scope`` (``key:ID``, ``user:ID``, ``team:ID``,
        ``org:ID``) since ``start`` (epoch seconds)."""
        kind, _, ident = scope.partition(":")
        column = self._COLUMNS.get(kind)
        if column is None or not ident or ":" in ident:
            return 0
        query = select(func.coalesce(func.sum(t.usage.c.cost_micros), 0)).where(
            column == ident, t.usage.c.created_at >= _dt(float(start))
        )
        async with self._engine.connect() as conn:
            return int(await conn.scalar(query) or 0)


class SqlMeta:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, name: str) -> str | None:
        async with self._engine.connect() as conn:
            value = await conn.scalar(select(t.meta.c.value).where(t.meta.c.name == name))
        return str(value) if value is not None else None

    async def put(self, name: str, value: str, *, bump: str | None = None) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(t.meta).where(t.meta.c.name == name).values(value=value)
            )
            if not result.rowcount:
                await conn.execute(t.meta.insert().values(name=name, value=value))
            if bump is not None:
                await _bump(conn, bump)

    async def set_if_absent(self, name: str, value: str) -> str:
        insert = postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(t.meta)
                .values(name=name, value=value)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            stored = await conn.scalar(select(t.meta.c.value).where(t.meta.c.name == name))
        return str(stored)


class SqlCredentials:
    """Sealed provider credentials; every write bumps the change counter."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def put(self, record: StoredCredential) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                t.provider_credentials.delete().where(
                    t.provider_credentials.c.provider == record.provider
                )
            )
            await conn.execute(
                t.provider_credentials.insert().values(
                    provider=record.provider,
                    sealed=record.sealed,
                    preview=record.preview,
                    updated_at=_dt(record.updated_at),
                )
            )
            await _bump(conn, t.KEYS_VERSION)

    async def delete(self, provider: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                t.provider_credentials.delete().where(t.provider_credentials.c.provider == provider)
            )
            await _bump(conn, t.KEYS_VERSION)
        return bool(result.rowcount)

    async def all(self) -> list[StoredCredential]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(t.provider_credentials))
            return [
                StoredCredential(r.provider, bytes(r.sealed), r.preview, _ts(r.updated_at) or 0.0)
                for r in rows
            ]


class SqlStorage:
    """The storage for one database URL; owns its engine (closed by :meth:`close`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.keys = SqlKeys(engine)
        self.usage = SqlUsage(engine)
        self.meta = SqlMeta(engine)
        self.responses = SqlResponses(engine)
        self.tenancy = SqlTenancy(engine)
        self.credentials = SqlCredentials(engine)
        self.spend = SqlSpend(engine)
        self.console = SqlConsole(engine)

    @classmethod
    def from_url(cls, url: str) -> SqlStorage:
        return cls(create_engine(url))

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
