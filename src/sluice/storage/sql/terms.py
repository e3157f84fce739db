"""SQL repository of terms-of-service acceptances."""

from __future__ import annotations

from sqlalchemy import select

from sluice.storage.base import TermsAcceptance
from sluice.storage.sql import tables as t
from sluice.storage.sql.convert import bump
from sluice.storage.sql.convert import dt as _dt
from sluice.storage.sql.convert import ts as _ts
from sluice.storage.sql.engine import dialect_insert
from sluice.storage.sql.unit import Database


class SqlTerms:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def accept(self, user_id: str, version: str, *, at: float) -> bool:
        insert = dialect_insert(self._db.dialect.name)
        statement = (
            insert(t.terms_acceptances)
            .values(user_id=user_id, version=version, accepted_at=_dt(at))
            .on_conflict_do_nothing(index_elements=["user_id", "version"])
        )
        async with self._db.begin() as conn:
            result = await conn.execute(statement)
            if not result.rowcount:
                return False
            await bump(conn, t.KEYS_VERSION)
        return True

    async def accepted_by(self, version: str) -> frozenset[str]:
        a = t.terms_acceptances
        async with self._db.connect() as conn:
            rows = await conn.execute(select(a.c.user_id).where(a.c.version == version))
            return frozenset(str(row.user_id) for row in rows)

    async def list(
        self, *, version: str | None = None, user_id: str | None = None
    ) -> list[TermsAcceptance]:
        a = t.terms_acceptances
        query = select(a).order_by(a.c.accepted_at.desc(), a.c.user_id)
        if version is not None:
            query = query.where(a.c.version == version)
        if user_id is not None:
            query = query.where(a.c.user_id == user_id)
        async with self._db.connect() as conn:
            return [
                TermsAcceptance(row.user_id, row.version, _ts(row.accepted_at) or 0.0)
                for row in await conn.execute(query)
            ]
