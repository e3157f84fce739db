"""SQL repository of file metadata (``files``), the same statements for SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.files.base import FileRecord
from sluice.files.owner import FileOwner
from sluice.storage.sql import tables as t
from sluice.storage.sql.convert import dt, ts
from sluice.storage.sql.unit import transaction

_f = t.files


def _record(row: Any) -> FileRecord:
    created = ts(row.created_at)
    assert created is not None
    expires = ts(row.expires_at)
    return FileRecord(
        id=row.id,
        purpose=row.purpose,
        filename=row.filename,
        bytes=int(row.bytes),
        created_at=round(created),
        expires_at=round(expires) if expires is not None else None,
        user_id=row.user_id,
        team_id=row.team_id,
        key_id=row.key_id,
    )


def _owned(owner: FileOwner) -> ColumnElement[bool]:
    if owner.user_id is not None:
        return _f.c.user_id == owner.user_id
    if owner.team_id is not None:
        return and_(_f.c.team_id == owner.team_id, _f.c.user_id.is_(None))
    return and_(_f.c.key_id == owner.key_id, _f.c.user_id.is_(None), _f.c.team_id.is_(None))


def _live(now: float) -> ColumnElement[bool]:
    return or_(_f.c.expires_at.is_(None), _f.c.expires_at > dt(now))


class SqlFiles:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, record: FileRecord, *, quota_bytes: int | None, now: float) -> bool:
        owner = FileOwner(record.user_id, record.team_id, record.key_id)
        # SQLite: the transaction holds the write lock from its start (BEGIN IMMEDIATE), so
        # the sum and the insert of two uploads never interleave. PostgreSQL: a lock per
        # owner, held until commit, does the same across processes.
        async with transaction(self._engine) as db, db.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:scope))"),
                    {"scope": f"sluice.files:{owner.scope}"},
                )
            if quota_bytes is not None:
                used = await conn.scalar(
                    select(func.coalesce(func.sum(_f.c.bytes), 0)).where(_owned(owner), _live(now))
                )
                if int(used or 0) + record.bytes > quota_bytes:
                    return False
            await conn.execute(
                _f.insert().values(
                    id=record.id,
                    purpose=record.purpose,
                    filename=record.filename,
                    bytes=record.bytes,
                    created_at=dt(record.created_at),
                    expires_at=dt(record.expires_at),
                    user_id=record.user_id,
                    team_id=record.team_id,
                    key_id=record.key_id,
                )
            )
        return True

    async def get(self, file_id: str, owner: FileOwner, *, now: float) -> FileRecord | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(_f).where(_f.c.id == file_id, _owned(owner), _live(now)))
            ).first()
        return _record(row) if row is not None else None

    async def page(
        self,
        owner: FileOwner,
        *,
        now: float,
        after: FileRecord | None,
        limit: int,
        descending: bool,
        purpose: str | None,
    ) -> list[FileRecord]:
        query = select(_f).where(_owned(owner), _live(now))
        if purpose is not None:
            query = query.where(_f.c.purpose == purpose)
        if after is not None:
            at = dt(after.created_at)
            if descending:
                query = query.where(
                    or_(_f.c.created_at < at, and_(_f.c.created_at == at, _f.c.id < after.id))
                )
            else:
                query = query.where(
                    or_(_f.c.created_at > at, and_(_f.c.created_at == at, _f.c.id > after.id))
                )
        if descending:
            query = query.order_by(_f.c.created_at.desc(), _f.c.id.desc())
        else:
            query = query.order_by(_f.c.created_at, _f.c.id)
        async with self._engine.connect() as conn:
            rows = await conn.execute(query.limit(limit))
            return [_record(r) for r in rows]

    async def used_bytes(self, owner: FileOwner, *, now: float) -> int:
        async with self._engine.connect() as conn:
            used = await conn.scalar(
                select(func.coalesce(func.sum(_f.c.bytes), 0)).where(_owned(owner), _live(now))
            )
        return int(used or 0)

    async def delete(self, file_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(_f.delete().where(_f.c.id == file_id))
        return bool(result.rowcount)

    async def expired(self, *, now: float, limit: int) -> list[FileRecord]:
        query = (
            select(_f)
            .where(_f.c.expires_at.is_not(None), _f.c.expires_at <= dt(now))
            .order_by(_f.c.expires_at, _f.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = await conn.execute(query)
            return [_record(r) for r in rows]
