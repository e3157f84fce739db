"""Alerts over SQLAlchemy Core: insert-if-absent on the unique ``dedupe_key``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.alerts.model import Alert, AlertQuery, Delivery
from sluice.storage.sql import tables as t
from sluice.storage.sql.convert import dt as _dt
from sluice.storage.sql.convert import ts as _ts
from sluice.storage.sql.engine import dialect_insert

_A = t.alerts.c


def _row(alert: Alert) -> dict[str, Any]:
    return {
        "dedupe_key": alert.dedupe_key,
        "kind": alert.kind,
        "created_at": _dt(alert.created_at),
        "message": alert.message,
        "scope": alert.scope,
        "org_id": alert.org_id,
        "team_id": alert.team_id,
        "user_id": alert.user_id,
        "deployment": alert.deployment,
        "period": alert.period,
        "period_start": alert.period_start,
        "threshold_pct": alert.threshold_pct,
        "limit_micros": alert.limit_micros,
        "spent_micros": alert.spent_micros,
        "details": alert.details,
        "delivery": alert.delivery,
        "attempts": alert.attempts,
        "last_error": alert.last_error,
        "delivered_at": _dt(alert.delivered_at),
    }


def _alert(row: Any) -> Alert:
    created = _ts(row.created_at)
    assert created is not None
    return Alert(
        kind=row.kind,
        dedupe_key=row.dedupe_key,
        message=row.message,
        created_at=created,
        scope=row.scope,
        org_id=row.org_id,
        team_id=row.team_id,
        user_id=row.user_id,
        deployment=row.deployment,
        period=row.period,
        period_start=row.period_start,
        threshold_pct=row.threshold_pct,
        limit_micros=row.limit_micros,
        spent_micros=row.spent_micros,
        details=dict(row.details or {}),
        id=row.id,
        delivery=row.delivery,
        attempts=row.attempts,
        last_error=row.last_error,
        delivered_at=_ts(row.delivered_at),
    )


class SqlAlerts:
    """:class:`~sluice.alerts.model.AlertRepository` for SQLite and PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        dialect = engine.dialect.name
        self._insert = dialect_insert(dialect)

    async def insert_if_absent(self, alert: Alert) -> Alert | None:
        stmt = (
            self._insert(t.alerts)
            .values(**_row(alert))
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(_A.id)
        )
        async with self._engine.begin() as conn:
            new_id = (await conn.execute(stmt)).scalar()
        if new_id is None:
            return None
        return replace(alert, id=int(new_id))

    async def record_delivery(
        self,
        alert_id: int,
        *,
        delivery: Delivery,
        attempts: int,
        last_error: str | None,
        at: float | None,
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(t.alerts)
                .where(_A.id == alert_id)
                .values(
                    delivery=delivery,
                    attempts=attempts,
                    last_error=last_error[:2000] if last_error else None,
                    delivered_at=_dt(at),
                )
            )

    async def latest_breaker(self, deployment: str) -> Alert | None:
        query = (
            select(t.alerts)
            .where(
                _A.deployment == deployment,
                _A.kind.in_(("breaker_open", "breaker_resolved")),
            )
            .order_by(_A.id.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _alert(row) if row is not None else None

    async def list(self, query: AlertQuery) -> list[Alert]:
        stmt = select(t.alerts).order_by(_A.id.desc()).limit(query.limit)
        if query.kinds is not None:
            stmt = stmt.where(_A.kind.in_(query.kinds))
        if query.budget_only:
            stmt = stmt.where(_A.kind == "budget")
        if query.scope is not None:
            stmt = stmt.where(_A.scope == query.scope)
        if query.since is not None:
            stmt = stmt.where(_A.created_at >= _dt(query.since))
        if query.before_id is not None:
            stmt = stmt.where(_A.id < query.before_id)
        visible = _visible(query)
        if visible is not None:
            stmt = stmt.where(visible)
        async with self._engine.connect() as conn:
            return [_alert(r) for r in await conn.execute(stmt)]


def _visible(query: AlertQuery) -> ColumnElement[bool] | None:
    sets = (
        (_A.org_id, query.visible_orgs),
        (_A.team_id, query.visible_teams),
        (_A.user_id, query.visible_users),
        (_A.scope, query.visible_scopes),
    )
    if all(values is None for _, values in sets):
        return None
    conditions = [column.in_(sorted(values)) for column, values in sets if values]
    return or_(*conditions) if conditions else false()
