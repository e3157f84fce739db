"""SQL repository of federated identities."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from sluice.storage.base import Grants, IdentityRecord
from sluice.storage.sql import tables as t
from sluice.storage.sql.convert import dt as _dt
from sluice.storage.sql.convert import ts as _ts
from sluice.storage.sql.unit import Database


def _record(row: Any) -> IdentityRecord:
    created, last = _ts(row.created_at), _ts(row.last_sign_in_at)
    assert created is not None
    assert last is not None
    return IdentityRecord(
        row.issuer,
        row.subject,
        row.user_id,
        row.email,
        tuple(str(g) for g in row.groups or ()),
        created,
        last,
        Grants.from_json(row.grants),
    )


class SqlIdentities:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, issuer: str, subject: str) -> IdentityRecord | None:
        i = t.identities
        query = select(i).where(i.c.issuer == issuer, i.c.subject == subject)
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return _record(row) if row is not None else None

    async def for_user(self, user_id: str) -> list[IdentityRecord]:
        i = t.identities
        query = select(i).where(i.c.user_id == user_id).order_by(i.c.created_at)
        async with self._db.connect() as conn:
            return [_record(row) for row in await conn.execute(query)]

    async def all(self) -> list[IdentityRecord]:
        query = select(t.identities).order_by(t.identities.c.created_at)
        async with self._db.connect() as conn:
            return [_record(row) for row in await conn.execute(query)]

    async def create(self, record: IdentityRecord) -> bool:
        try:
            async with self._db.begin() as conn:
                await conn.execute(
                    t.identities.insert().values(
                        issuer=record.issuer,
                        subject=record.subject,
                        user_id=record.user_id,
                        email=record.email,
                        groups=list(record.groups),
                        created_at=_dt(record.created_at),
                        last_sign_in_at=_dt(record.last_sign_in_at),
                        grants=record.grants.to_json() if record.grants else None,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def signed_in(
        self,
        issuer: str,
        subject: str,
        *,
        at: float,
        email: str | None,
        groups: tuple[str, ...],
        grants: Grants | None = None,
    ) -> None:
        i = t.identities
        values: dict[str, Any] = {"last_sign_in_at": _dt(at), "email": email}
        values["groups"] = list(groups)
        if grants is not None:
            values["grants"] = grants.to_json()
        async with self._db.begin() as conn:
            await conn.execute(
                update(i).where(i.c.issuer == issuer, i.c.subject == subject).values(**values)
            )
