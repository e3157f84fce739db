"""SQL repository of the SCIM links (users and teams an identity provider manages)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete, select

from sluice.scim.store import GroupLink, UserLink
from sluice.storage.sql import tables as t
from sluice.storage.sql.convert import dt as _dt
from sluice.storage.sql.convert import ts as _ts
from sluice.storage.sql.unit import Database


def _times(row: Any) -> tuple[float, float]:
    created, updated = _ts(row.created_at), _ts(row.updated_at)
    assert created is not None
    assert updated is not None
    return created, updated


class SqlScim:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def user_links(self, org_id: str) -> dict[str, UserLink]:
        u = t.scim_users
        async with self._db.connect() as conn:
            rows = await conn.execute(select(u).where(u.c.org_id == org_id))
            return {
                r.user_id: UserLink(
                    r.user_id, r.org_id, r.external_id, dict(r.name) if r.name else None, *_times(r)
                )
                for r in rows
            }

    async def group_links(self, org_id: str) -> dict[str, GroupLink]:
        g = t.scim_groups
        async with self._db.connect() as conn:
            rows = await conn.execute(select(g).where(g.c.org_id == org_id))
            return {
                r.team_id: GroupLink(r.team_id, r.org_id, r.external_id, *_times(r)) for r in rows
            }

    async def put_user(self, link: UserLink) -> None:
        await self._replace(
            t.scim_users,
            user_id=link.user_id,
            org_id=link.org_id,
            external_id=link.external_id,
            name=link.name,
            created_at=_dt(link.created_at),
            updated_at=_dt(link.updated_at),
        )

    async def put_group(self, link: GroupLink) -> None:
        await self._replace(
            t.scim_groups,
            team_id=link.team_id,
            org_id=link.org_id,
            external_id=link.external_id,
            created_at=_dt(link.created_at),
            updated_at=_dt(link.updated_at),
        )

    async def _replace(self, table: Table, **values: Any) -> None:
        """Write one link row, replacing the one with the same primary key."""
        (key,) = table.primary_key.columns
        async with self._db.begin() as conn:
            await conn.execute(delete(table).where(key == values[key.name]))
            await conn.execute(table.insert().values(**values))

    async def delete_user(self, user_id: str) -> None:
        async with self._db.begin() as conn:
            await conn.execute(delete(t.scim_users).where(t.scim_users.c.user_id == user_id))

    async def delete_group(self, team_id: str) -> None:
        async with self._db.begin() as conn:
            await conn.execute(delete(t.scim_groups).where(t.scim_groups.c.team_id == team_id))
