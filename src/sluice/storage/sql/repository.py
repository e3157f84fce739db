"""Repositories over SQLAlchemy Core, the same SQL for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.auth.keys import KeyRecord
from sluice.budgets.spec import stored_budget
from sluice.limits.settings import stored_limits
from sluice.scim.store import ScimRepository
from sluice.storage.base import (
    CredentialRepository,
    IdentityRepository,
    KeyRepository,
    MetaRepository,
    StoredCredential,
    StoredResponse,
    TenancyRepository,
    TermsRepository,
)
from sluice.storage.catalog import CatalogRepository
from sluice.storage.console import ConsoleRepository
from sluice.storage.mcp_servers import McpServerRepository
from sluice.storage.sql import tables as t
from sluice.storage.sql.alerts import SqlAlerts
from sluice.storage.sql.analytics import SqlAnalytics
from sluice.storage.sql.batches import SqlBatches
from sluice.storage.sql.bodies import SqlBodies
from sluice.storage.sql.cache_analytics import SqlCacheAnalytics
from sluice.storage.sql.catalog import SqlCatalog
from sluice.storage.sql.console import SqlConsole
from sluice.storage.sql.convert import bump as _bump
from sluice.storage.sql.convert import dt as _dt
from sluice.storage.sql.convert import sqlite_time
from sluice.storage.sql.convert import ts as _ts
from sluice.storage.sql.dead_letters import SqlDeadLetters
from sluice.storage.sql.engine import DatabaseTimeouts, create_engine, dialect_insert
from sluice.storage.sql.files import SqlFiles
from sluice.storage.sql.identities import SqlIdentities
from sluice.storage.sql.mcp_analytics import SqlMcpAnalytics
from sluice.storage.sql.mcp_servers import SqlMcpServers
from sluice.storage.sql.scim import SqlScim
from sluice.storage.sql.semantic import SqlSemanticEntries
from sluice.storage.sql.tenancy import SqlTenancy
from sluice.storage.sql.terms import SqlTerms
from sluice.storage.sql.unit import Database, transaction
from sluice.storage.sql.unit_analytics import SqlUnitAnalytics
from sluice.storage.sql.usage import SqlSpend, SqlUsage
from sluice.tenancy.model import stored_names
from sluice.usage.dead_letters import DeadLetterRepository


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
        limits=stored_limits(row.limits),
        budget=stored_budget(row.budget),
        mcp_servers=stored_names(row.mcp_servers),
        mcp_servers_exclude=stored_names(row.mcp_servers_exclude) or (),
        mcp_tools=stored_names(row.mcp_tools),
        mcp_tools_exclude=stored_names(row.mcp_tools_exclude) or (),
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
        "limits": record.limits.to_json() if record.limits is not None else None,
        "budget": record.budget.to_json() if record.budget is not None else None,
        "mcp_servers": list(record.mcp_servers) if record.mcp_servers is not None else None,
        "mcp_servers_exclude": list(record.mcp_servers_exclude),
        "mcp_tools": list(record.mcp_tools) if record.mcp_tools is not None else None,
        "mcp_tools_exclude": list(record.mcp_tools_exclude),
        "previous_hash": record.previous_hash,
        "previous_valid_until": _dt(record.previous_valid_until),
    }


_SQLITE_TOUCH = (
    f"UPDATE {t.api_keys.name} SET last_used_at = ? "
    "WHERE (last_used_at IS NULL OR last_used_at < ?) AND id = ?"
)
_PG_TOUCH = (
    f"UPDATE {t.api_keys.name} SET last_used_at = $1 "
    "WHERE (last_used_at IS NULL OR last_used_at < $1) AND id = $2"
)


class SqlKeys:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, record: KeyRecord) -> None:
        async with self._db.begin() as conn:
            await conn.execute(t.api_keys.insert().values(**key_values(record)))
            await _bump(conn, t.KEYS_VERSION)

    async def update(self, record: KeyRecord) -> None:
        """Replace a key's stored fields (rotation, governance); bumps the counter."""
        values = key_values(record)
        values.pop("last_used_at")
        async with self._db.begin() as conn:
            await conn.execute(
                update(t.api_keys).where(t.api_keys.c.id == record.id).values(**values)
            )
            await _bump(conn, t.KEYS_VERSION)

    async def get(self, key_id: str) -> KeyRecord | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id))).first()
        return _key_from_row(row) if row is not None else None

    async def list(self) -> list[KeyRecord]:
        async with self._db.connect() as conn:
            rows = await conn.execute(
                select(t.api_keys).order_by(t.api_keys.c.created_at, t.api_keys.c.id)
            )
            return [_key_from_row(r) for r in rows]

    async def revoke(self, key_id: str, *, at: float) -> KeyRecord | None:
        async with self._db.begin() as conn:
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
        """Move each key's ``last_used_at`` forward to the given time (never back). One
        fixed statement for all keys: the usage writer calls this from its flushes."""
        if not last_used:
            return
        params: list[tuple[Any, ...]]
        if self._db.dialect.name == "sqlite":
            params = [(sqlite_time(ts),) * 2 + (key_id,) for key_id, ts in last_used.items()]
            statement = _SQLITE_TOUCH
        else:
            params = [(_dt(ts), key_id) for key_id, ts in last_used.items()]
            statement = _PG_TOUCH
        async with self._db.begin() as conn:
            await conn.exec_driver_sql(statement, params)

    async def version(self) -> int:
        async with self._db.connect() as conn:
            value = await conn.scalar(select(t.meta.c.value).where(t.meta.c.name == t.KEYS_VERSION))
        return int(value) if value is not None else 0


class SqlResponses:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(self, record: StoredResponse) -> None:
        async with self._db.begin() as conn:
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
        async with self._db.connect() as conn:
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
        async with self._db.begin() as conn:
            result = await conn.execute(
                t.responses.delete().where(
                    t.responses.c.id == response_id, t.responses.c.key_id == key_id
                )
            )
        return bool(result.rowcount)


class SqlMeta:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, name: str) -> str | None:
        async with self._db.connect() as conn:
            value = await conn.scalar(select(t.meta.c.value).where(t.meta.c.name == name))
        return str(value) if value is not None else None

    async def put(self, name: str, value: str, *, bump: str | None = None) -> None:
        async with self._db.begin() as conn:
            result = await conn.execute(
                update(t.meta).where(t.meta.c.name == name).values(value=value)
            )
            if not result.rowcount:
                await conn.execute(t.meta.insert().values(name=name, value=value))
            if bump is not None:
                await _bump(conn, bump)

    async def increment(self, name: str) -> int:
        async with self._db.begin() as conn:
            return await _bump(conn, name)

    async def set_if_absent(self, name: str, value: str) -> str:
        insert = dialect_insert(self._db.dialect.name)
        async with self._db.begin() as conn:
            await conn.execute(
                insert(t.meta)
                .values(name=name, value=value)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            stored = await conn.scalar(select(t.meta.c.value).where(t.meta.c.name == name))
        return str(stored)


class SqlCredentials:
    """Sealed provider credentials; every write bumps the change counter."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, record: StoredCredential) -> None:
        async with self._db.begin() as conn:
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
        async with self._db.begin() as conn:
            result = await conn.execute(
                t.provider_credentials.delete().where(t.provider_credentials.c.provider == provider)
            )
            await _bump(conn, t.KEYS_VERSION)
        return bool(result.rowcount)

    async def all(self) -> list[StoredCredential]:
        async with self._db.connect() as conn:
            rows = await conn.execute(select(t.provider_credentials))
            return [
                StoredCredential(r.provider, bytes(r.sealed), r.preview, _ts(r.updated_at) or 0.0)
                for r in rows
            ]


class SqlUnit:
    """The repositories an admin change writes through, bound to one transaction."""

    def __init__(self, db: Database) -> None:
        # Typed as the protocols: ``Unit``'s members are invariant.
        self.keys: KeyRepository = SqlKeys(db)
        self.meta: MetaRepository = SqlMeta(db)
        self.tenancy: TenancyRepository = SqlTenancy(db)
        self.credentials: CredentialRepository = SqlCredentials(db)
        self.console: ConsoleRepository = SqlConsole(db)
        self.dead_letters: DeadLetterRepository = SqlDeadLetters(db)
        self.scim: ScimRepository = SqlScim(db)
        self.terms: TermsRepository = SqlTerms(db)
        self.identities: IdentityRepository = SqlIdentities(db)
        self.mcp_servers: McpServerRepository = SqlMcpServers(db)
        self.catalog: CatalogRepository = SqlCatalog(db)


class SqlStorage:
    """The storage for one database URL; owns its engine (closed by :meth:`close`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.keys = SqlKeys(engine)
        self.usage = SqlUsage(engine)
        self.dead_letters = SqlDeadLetters(engine)
        self.meta = SqlMeta(engine)
        self.responses = SqlResponses(engine)
        self.tenancy = SqlTenancy(engine)
        self.credentials = SqlCredentials(engine)
        self.spend = SqlSpend(engine)
        self.alerts = SqlAlerts(engine)
        self.analytics = SqlAnalytics(engine)
        self.mcp_analytics = SqlMcpAnalytics(engine)
        self.cache_analytics = SqlCacheAnalytics(engine)
        self.unit_analytics = SqlUnitAnalytics(engine)
        self.bodies = SqlBodies(engine)
        self.console = SqlConsole(engine)
        self.identities = SqlIdentities(engine)
        self.scim = SqlScim(engine)
        self.terms = SqlTerms(engine)
        self.mcp_servers = SqlMcpServers(engine)
        self.catalog = SqlCatalog(engine)
        self.batches = SqlBatches(engine)
        self.files = SqlFiles(engine)
        self.semantic = SqlSemanticEntries(engine)

    @classmethod
    def from_url(cls, url: str, *, timeouts: DatabaseTimeouts | None = None) -> SqlStorage:
        return cls(create_engine(url, timeouts=timeouts))

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[SqlUnit]:
        async with transaction(self.engine) as db:
            yield SqlUnit(db)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
