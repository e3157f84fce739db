"""SQL repositories of batches and their lines (the same SQL for SQLite and PostgreSQL).

Claims are one ``UPDATE ... RETURNING`` whose ``WHERE`` states the line is free (not done,
no lease or an expired one): PostgreSQL re-checks that condition on a row another
transaction changed meanwhile, SQLite runs one writer at a time, so two processes never
lease the same line. A result is written by a conditional update on the lease holder and a
line not done yet, in the same transaction as the batch's counter.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select

from sluice.storage.batches import (
    ACTIVE,
    ClaimedLine,
    LineOutcome,
    LineResult,
    NewLine,
    Owner,
    StoredBatch,
)
from sluice.storage.sql import tables as t
from sluice.storage.sql.unit import Database

_INSERT_CHUNK = 500
"""Lines inserted per statement (SQLite allows 32,766 parameters per statement)."""

b = t.batches
ln = t.batch_lines


def _batch(row: Any) -> StoredBatch:
    return StoredBatch(
        id=row.id,
        endpoint=row.endpoint,
        input_file_id=row.input_file_id,
        completion_window=row.completion_window,
        status=row.status,
        created_at=row.created_at,
        expires_at=row.expires_at,
        key_id=row.key_id,
        user_id=row.user_id,
        team_id=row.team_id,
        org_id=row.org_id,
        service_account_id=row.service_account_id,
        total=row.total,
        completed=row.completed,
        failed=row.failed,
        metadata=dict(row.metadata) if row.metadata is not None else None,
        times=dict(row.times or {}),
        output_file_id=row.output_file_id,
        error_file_id=row.error_file_id,
        ending=row.ending,
        paused=row.paused,
        resume_at=row.resume_at,
        delegate=row.delegate,
        upstream_id=row.upstream_id,
        upstream_status=row.upstream_status,
        reservation=dict(row.reservation) if row.reservation is not None else None,
    )


def _owned(owner: Owner) -> Any:
    if owner.all:
        return b.c.id.is_not(None)
    if owner.user_id is not None:
        return b.c.user_id == owner.user_id
    if owner.team_id is not None:
        return and_(
            b.c.team_id == owner.team_id,
            b.c.user_id.is_(None),
            b.c.service_account_id.is_not(None),
        )
    return and_(b.c.key_id == owner.key_id, b.c.user_id.is_(None), b.c.service_account_id.is_(None))


def _free(now: float) -> Any:
    return and_(ln.c.done.is_(False), or_(ln.c.lease_until.is_(None), ln.c.lease_until < now))


class SqlBatches:
    """Both repositories of ``sluice.storage.batches`` and the worker's batch steps."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- the API's side -------------------------------------------------------------

    async def create(self, batch: StoredBatch, lines: list[NewLine]) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                b.insert().values(
                    id=batch.id,
                    endpoint=batch.endpoint,
                    input_file_id=batch.input_file_id,
                    completion_window=batch.completion_window,
                    status=batch.status,
                    ending=batch.ending,
                    created_at=batch.created_at,
                    expires_at=batch.expires_at,
                    key_id=batch.key_id,
                    user_id=batch.user_id,
                    team_id=batch.team_id,
                    org_id=batch.org_id,
                    service_account_id=batch.service_account_id,
                    total=batch.total,
                    completed=0,
                    failed=0,
                    metadata=batch.metadata,
                    times=batch.times,
                    delegate=batch.delegate,
                )
            )
            for start in range(0, len(lines), _INSERT_CHUNK):
                chunk = lines[start : start + _INSERT_CHUNK]
                await conn.execute(
                    ln.insert(),
                    [
                        {
                            "batch_id": batch.id,
                            "line": x.line,
                            "custom_id": x.custom_id,
                            "body": x.body,
                            "done": False,
                            "claims": 0,
                        }
                        for x in chunk
                    ],
                )

    async def get(self, batch_id: str) -> StoredBatch | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(select(b).where(b.c.id == batch_id))).first()
        return _batch(row) if row is not None else None

    async def page(self, owner: Owner, *, after: str | None, limit: int) -> list[StoredBatch]:
        query = select(b).where(_owned(owner))
        async with self._db.connect() as conn:
            if after is not None:
                mark = (
                    await conn.execute(select(b.c.created_at, b.c.id).where(b.c.id == after))
                ).first()
                if mark is None:
                    return []
                query = query.where(
                    or_(
                        b.c.created_at < mark.created_at,
                        and_(b.c.created_at == mark.created_at, b.c.id < mark.id),
                    )
                )
            rows = await conn.execute(
                query.order_by(b.c.created_at.desc(), b.c.id.desc()).limit(limit)
            )
            return [_batch(r) for r in rows]

    async def count_active(self, owner: Owner) -> int:
        query = select(func.count()).select_from(b).where(_owned(owner), b.c.status.in_(ACTIVE))
        async with self._db.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def cancel(self, batch_id: str, *, at: float) -> bool:
        async with self._db.begin() as conn:
            row = (
                await conn.execute(select(b.c.times, b.c.status).where(b.c.id == batch_id))
            ).first()
            if row is None or row.status != "in_progress":
                return False
            times = {**dict(row.times or {}), "cancelling_at": at}
            result = await conn.execute(
                b.update()
                .where(b.c.id == batch_id, b.c.status == "in_progress")
                .values(status="cancelling", ending="cancelled", times=times)
            )
        return bool(result.rowcount)

    # --- the worker's side ----------------------------------------------------------

    async def active(self, *, limit: int) -> list[StoredBatch]:
        query = select(b).where(b.c.status.in_(ACTIVE)).order_by(b.c.created_at, b.c.id)
        async with self._db.connect() as conn:
            return [_batch(r) for r in await conn.execute(query.limit(limit))]

    async def claim(
        self, batch_id: str, *, owner: str, n: int, now: float, until: float
    ) -> list[ClaimedLine]:
        if n <= 0:
            return []
        pick = (
            select(ln.c.line)
            .where(ln.c.batch_id == batch_id, _free(now))
            .order_by(ln.c.line)
            .limit(n)
            .scalar_subquery()
        )
        running = (
            select(b.c.id)
            .where(b.c.id == batch_id, b.c.status == "in_progress", b.c.ending.is_(None))
            .exists()
        )
        statement = (
            ln.update()
            .where(ln.c.batch_id == batch_id, ln.c.line.in_(pick), _free(now), running)
            .values(owner=owner, lease_until=until, claims=ln.c.claims + 1)
            .returning(ln.c.line, ln.c.custom_id, ln.c.body, ln.c.claims)
        )
        async with self._db.begin() as conn:
            rows = (await conn.execute(statement)).all()
        claimed = [ClaimedLine(r.line, r.custom_id, r.body, r.claims) for r in rows]
        return sorted(claimed, key=lambda c: c.line)

    async def renew(self, owner: str, *, until: float) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                ln.update()
                .where(ln.c.owner == owner, ln.c.done.is_(False), ln.c.lease_until.is_not(None))
                .values(lease_until=until)
            )
            await conn.execute(
                b.update()
                .where(b.c.lease_owner == owner, b.c.status == "finalizing")
                .values(lease_until=until)
            )

    async def finish(
        self, batch_id: str, line: int, *, owner: str, output: str, failed: bool
    ) -> bool:
        async with self._db.begin() as conn:
            result = await conn.execute(
                ln.update()
                .where(
                    ln.c.batch_id == batch_id,
                    ln.c.line == line,
                    ln.c.owner == owner,
                    ln.c.done.is_(False),
                )
                .values(done=True, failed=failed, output=output, lease_until=None)
            )
            if not result.rowcount:
                return False
            counter = b.c.failed if failed else b.c.completed
            await conn.execute(
                b.update().where(b.c.id == batch_id).values({counter.key: counter + 1})
            )
        return True

    async def release(self, batch_id: str, line: int, *, owner: str, count: bool = False) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                ln.update()
                .where(
                    ln.c.batch_id == batch_id,
                    ln.c.line == line,
                    ln.c.owner == owner,
                    ln.c.done.is_(False),
                )
                .values(owner=None, lease_until=None, claims=ln.c.claims - (0 if count else 1))
            )

    async def release_all(self, owner: str) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                ln.update()
                .where(ln.c.owner == owner, ln.c.done.is_(False), ln.c.lease_until.is_not(None))
                .values(owner=None, lease_until=None, claims=ln.c.claims - 1)
            )
            await conn.execute(  # delegated batches this process was polling
                b.update()
                .where(b.c.lease_owner == owner, b.c.status.in_(("in_progress", "cancelling")))
                .values(lease_owner=None, lease_until=None)
            )

    # --- delegated batches ----------------------------------------------------------

    async def hold(self, batch_id: str, *, owner: str, now: float, until: float) -> bool:
        async with self._db.begin() as conn:
            result = await conn.execute(
                b.update()
                .where(
                    b.c.id == batch_id,
                    b.c.status.in_(("in_progress", "cancelling")),
                    or_(
                        b.c.lease_owner.is_(None),
                        b.c.lease_owner == owner,
                        b.c.lease_until < now,
                    ),
                )
                .values(lease_owner=owner, lease_until=until)
            )
        return bool(result.rowcount)

    async def pending(self, batch_id: str) -> list[ClaimedLine]:
        query = (
            select(ln.c.line, ln.c.custom_id, ln.c.body, ln.c.claims)
            .where(ln.c.batch_id == batch_id, ln.c.done.is_(False))
            .order_by(ln.c.line)
        )
        async with self._db.connect() as conn:
            rows = await conn.execute(query)
            return [ClaimedLine(r.line, r.custom_id, r.body, r.claims) for r in rows]

    async def write_lines(
        self, batch_id: str, *, owner: str, outcomes: list[LineOutcome], **values: Any
    ) -> bool:
        async with self._db.begin() as conn:
            held = (
                await conn.execute(
                    select(b.c.id).where(b.c.id == batch_id, b.c.lease_owner == owner)
                )
            ).first()
            if held is None:
                return False
            completed = failed = 0
            for outcome in outcomes:
                result = await conn.execute(
                    ln.update()
                    .where(
                        ln.c.batch_id == batch_id,
                        ln.c.line == outcome.line,
                        ln.c.done.is_(False),
                    )
                    .values(
                        done=True, failed=outcome.failed, output=outcome.output, lease_until=None
                    )
                )
                if result.rowcount:
                    failed += outcome.failed
                    completed += not outcome.failed
            await conn.execute(
                b.update()
                .where(b.c.id == batch_id)
                .values(completed=b.c.completed + completed, failed=b.c.failed + failed, **values)
            )
        return True

    async def running(self, batch_id: str, *, now: float) -> int:
        query = (
            select(func.count())
            .select_from(ln)
            .where(ln.c.batch_id == batch_id, ln.c.done.is_(False), ln.c.lease_until >= now)
        )
        async with self._db.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def update(self, batch_id: str, *, where: tuple[str, ...], **values: Any) -> bool:
        async with self._db.begin() as conn:
            if "times" in values:
                row = (await conn.execute(select(b.c.times).where(b.c.id == batch_id))).first()
                stored = dict(row.times or {}) if row is not None else {}
                values["times"] = {**stored, **values["times"]}
            result = await conn.execute(
                b.update().where(b.c.id == batch_id, b.c.status.in_(where)).values(**values)
            )
        return bool(result.rowcount)

    async def finalize(self, batch_id: str, *, owner: str, now: float, until: float) -> bool:
        async with self._db.begin() as conn:
            row = (await conn.execute(select(b.c.times).where(b.c.id == batch_id))).first()
            if row is None:
                return False
            times = dict(row.times or {})
            times.setdefault("finalizing_at", now)
            result = await conn.execute(
                b.update()
                .where(
                    b.c.id == batch_id,
                    or_(
                        b.c.status.in_(("in_progress", "cancelling")),
                        and_(
                            b.c.status == "finalizing",
                            or_(b.c.lease_until.is_(None), b.c.lease_until < now),
                        ),
                    ),
                )
                .values(status="finalizing", lease_owner=owner, lease_until=until, times=times)
            )
        return bool(result.rowcount)

    async def results(self, batch_id: str) -> list[LineResult]:
        query = (
            select(ln.c.line, ln.c.custom_id, ln.c.output, ln.c.failed)
            .where(ln.c.batch_id == batch_id)
            .order_by(ln.c.line)
        )
        async with self._db.connect() as conn:
            rows = await conn.execute(query)
            return [LineResult(r.line, r.custom_id, r.output, bool(r.failed)) for r in rows]

    async def end(
        self,
        batch_id: str,
        *,
        owner: str,
        status: str,
        output_file_id: str | None,
        error_file_id: str | None,
        failed: int,
        at: float,
    ) -> bool:
        async with self._db.begin() as conn:
            row = (await conn.execute(select(b.c.times).where(b.c.id == batch_id))).first()
            if row is None:
                return False
            times = {**dict(row.times or {}), f"{status}_at": at}
            result = await conn.execute(
                b.update()
                .where(b.c.id == batch_id, b.c.status == "finalizing", b.c.lease_owner == owner)
                .values(
                    status=status,
                    output_file_id=output_file_id,
                    error_file_id=error_file_id,
                    failed=failed,
                    times=times,
                    lease_owner=None,
                    lease_until=None,
                    paused=None,
                    resume_at=None,
                )
            )
        return bool(result.rowcount)
