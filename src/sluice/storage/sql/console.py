"""SQL repository of the web console's passwords and sessions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update

from sluice.storage.console import LoginRecord, SessionRecord
from sluice.storage.sql import tables as t
from sluice.storage.sql.convert import dt as _dt
from sluice.storage.sql.convert import ts as _ts
from sluice.storage.sql.unit import Database


def _when(value: Any) -> float:
    out = _ts(value)
    assert out is not None
    return out


class SqlConsole:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def login_record(self, email: str) -> LoginRecord | None:
        query = select(t.users.c.id, t.users.c.password_hash, t.users.c.disabled).where(
            func.lower(t.users.c.email) == email.strip().lower()
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return LoginRecord(row.id, row.password_hash, row.disabled) if row is not None else None

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> bool:
        async with self._db.begin() as conn:
            result = await conn.execute(
                update(t.users).where(t.users.c.id == user_id).values(password_hash=password_hash)
            )
        return bool(result.rowcount)

    async def users_with_password(self) -> set[str]:
        query = select(t.users.c.id).where(t.users.c.password_hash.is_not(None))
        async with self._db.connect() as conn:
            return {row.id for row in await conn.execute(query)}

    async def create_session(self, record: SessionRecord) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                t.console_sessions.insert().values(
                    id_hash=record.id_hash,
                    user_id=record.user_id,
                    csrf_token=record.csrf_token,
                    method=record.method,
                    created_at=_dt(record.created_at),
                    expires_at=_dt(record.expires_at),
                    last_seen_at=_dt(record.last_seen_at),
                )
            )

    async def get_session(self, id_hash: str) -> SessionRecord | None:
        s = t.console_sessions
        async with self._db.connect() as conn:
            row = (await conn.execute(select(s).where(s.c.id_hash == id_hash))).first()
        if row is None:
            return None
        return SessionRecord(
            row.id_hash,
            row.user_id,
            row.csrf_token,
            row.method,
            _when(row.created_at),
            _when(row.expires_at),
            _when(row.last_seen_at),
        )

    async def touch_session(self, id_hash: str, *, at: float) -> None:
        s = t.console_sessions
        async with self._db.begin() as conn:
            await conn.execute(
                update(s)
                .where(s.c.id_hash == id_hash, s.c.last_seen_at < _dt(at))
                .values(last_seen_at=_dt(at))
            )

    async def delete_session(self, id_hash: str) -> None:
        s = t.console_sessions
        async with self._db.begin() as conn:
            await conn.execute(delete(s).where(s.c.id_hash == id_hash))

    async def delete_user_sessions(self, user_id: str) -> int:
        s = t.console_sessions
        async with self._db.begin() as conn:
            result = await conn.execute(delete(s).where(s.c.user_id == user_id))
        return int(result.rowcount or 0)

    async def purge_sessions(self, *, before: float) -> int:
        s = t.console_sessions
        async with self._db.begin() as conn:
            result = await conn.execute(delete(s).where(s.c.expires_at < _dt(before)))
        return int(result.rowcount or 0)
