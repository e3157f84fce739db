"""Usage rows the database refused (``sluice.usage.dead_letters``), stored for admins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from sluice.storage.sql import tables as t
from sluice.storage.sql.convert import dt, ts
from sluice.storage.sql.unit import Database
from sluice.storage.sql.usage import refusal
from sluice.usage.dead_letters import (
    ERROR_CHARS,
    DeadLetter,
    RowRejected,
    event_from_json,
    event_json,
)

_T = t.dead_letters


def _letter(r: Any) -> DeadLetter:
    return DeadLetter(
        request_id=r.request_id,
        created_at=ts(r.created_at) or 0.0,
        failed_at=ts(r.failed_at) or 0.0,
        event=event_from_json(r.event),
        error=r.error,
        id=r.id,
    )


class SqlDeadLetters:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        rows = [
            {
                "request_id": d.request_id[:64],
                "created_at": dt(d.created_at),
                "failed_at": dt(d.failed_at),
                "event": event_json(d.event),
                "error": _ascii(d.error),
            }
            for d in letters
        ]
        try:
            async with self._db.begin() as conn:
                await conn.execute(insert(_T), rows)
        except Exception as exc:
            reason = refusal(exc)
            if reason is None:
                raise
            raise RowRejected(reason) from exc

    async def page(self, *, limit: int, before_id: int | None = None) -> list[DeadLetter]:
        query = select(_T).order_by(_T.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(_T.c.id < before_id)
        async with self._db.connect() as conn:
            return [_letter(r) for r in await conn.execute(query)]

    async def get(self, ids: Sequence[int]) -> list[DeadLetter]:
        if not ids:
            return []
        query = select(_T).where(_T.c.id.in_(list(ids))).order_by(_T.c.id)
        async with self._db.connect() as conn:
            return [_letter(r) for r in await conn.execute(query)]

    async def failed_again(self, letter_id: int, *, error: str, at: float) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                update(_T).where(_T.c.id == letter_id).values(error=_ascii(error), failed_at=dt(at))
            )

    async def delete(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        async with self._db.begin() as conn:
            result = await conn.execute(delete(_T).where(_T.c.id.in_(list(ids))))
            return int(result.rowcount or 0)

    async def count(self) -> int:
        async with self._db.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(_T)) or 0)


def _ascii(error: str) -> str:
    """The error text, storable whatever it quotes (non-ASCII escaped, as in the JSON)."""
    text = error[:ERROR_CHARS].replace("\x00", "\\x00")
    return text.encode("ascii", "backslashreplace").decode("ascii")
