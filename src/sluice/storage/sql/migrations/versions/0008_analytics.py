"""Usage rollups (hourly and daily, full and coarse) for analytics, and logged
request/response bodies.

Existing usage rows are summed into the rollups here, so budgets and dashboards that read
the rollups see the history recorded before this revision.

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from sluice.usage.event import UsageEvent
from sluice.usage.rollup import DAY_S, HOUR_S, GroupKey, Sums, aggregate

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

DIMENSIONS = ("org_id", "team_id", "user_id", "key_id", "model", "provider")
LATENCY = tuple(f"lat_{i:02d}" for i in range(26))
METRICS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cost_micros",
)
READ_CHUNK = 5_000
"""Raw rows read per query by the backfill."""
WRITE_BATCH = 1_000
"""Rollup rows per INSERT by the backfill."""


OWNERS = ("org_id", "team_id", "user_id", "key_id")
MODELS = ("org_id", "model", "provider")
COARSE = (
    # (table, dimensions, the full rollup it is summed from)
    ("usage_rollup_hourly_models", MODELS, "usage_rollup_hourly"),
    ("usage_rollup_daily_models", MODELS, "usage_rollup_daily"),
    ("usage_rollup_hourly_teams", ("org_id", "team_id"), "usage_rollup_hourly"),
    ("usage_rollup_daily_teams", ("org_id", "team_id"), "usage_rollup_daily"),
    ("usage_rollup_daily_owners", OWNERS, "usage_rollup_daily"),
)
OWNER_INDEXED = ("usage_rollup_hourly", "usage_rollup_daily", "usage_rollup_daily_owners")


def _rollup_columns(dims: tuple[str, ...] = DIMENSIONS) -> list[sa.Column[Any]]:
    return [
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        *(sa.Column(d, sa.String(200), primary_key=True) for d in dims),
        *(sa.Column(m, sa.BigInteger, nullable=False) for m in METRICS),
        sa.Column("latency_ms_sum", sa.Float, nullable=False),
        sa.Column("ttft_ms_sum", sa.Float, nullable=False),
        sa.Column("ttft_count", sa.BigInteger, nullable=False),
        *(sa.Column(c, sa.BigInteger, nullable=False) for c in LATENCY),
    ]


def upgrade() -> None:
    hourly = op.create_table("usage_rollup_hourly", *_rollup_columns())
    daily = op.create_table("usage_rollup_daily", *_rollup_columns())
    for name, dims, _ in COARSE:
        op.create_table(name, *_rollup_columns(dims))
    for name in OWNER_INDEXED:
        for d in OWNERS:
            op.create_index(f"ix_{name}_{d}_bucket", name, [d, "bucket"])
    op.create_table(
        "usage_bodies",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(32)),
        sa.Column("team_id", sa.String(32)),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("truncated", sa.Boolean, nullable=False),
    )
    op.create_index("ix_usage_bodies_created_at", "usage_bodies", ["created_at"])
    assert hourly is not None
    assert daily is not None
    _backfill(hourly, daily)
    for name, dims, source in COARSE:
        _derive(name, dims, source)
    if op.get_bind().dialect.name == "sqlite":
        for name, dims, source in COARSE:
            _sqlite_triggers(name, dims, source)


def _sqlite_triggers(name: str, dims: tuple[str, ...], source: str) -> None:
    """On SQLite the coarse rollups follow their full rollup through triggers: every
    insert or upsert-update of a full row adds its change to the coarse row, inside
    SQLite's own code (the usage writer sends only the full rows). PostgreSQL's writer sums
    them server-side in the same statement instead (``storage/sql/rollups.py``)."""
    metrics = [*METRICS, "latency_ms_sum", "ttft_ms_sum", "ttft_count", *LATENCY]
    keys = ("bucket", *dims)
    columns = ", ".join((*keys, *metrics))
    adds = ", ".join(f"{m} = {m} + excluded.{m}" for m in metrics)
    conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {adds}"
    for event, change in (
        ("INSERT", "NEW.{m}"),
        ("UPDATE", "NEW.{m} - OLD.{m}"),
    ):
        values = ", ".join((*(f"NEW.{k}" for k in keys), *(change.format(m=m) for m in metrics)))
        op.execute(
            f"CREATE TRIGGER {name}_on_{event.lower()} AFTER {event} ON {source} BEGIN "
            f"INSERT INTO {name} ({columns}) VALUES ({values}) {conflict}; END"
        )


def _row(key: GroupKey, s: Sums) -> dict[str, Any]:
    row: dict[str, Any] = {"bucket": key[0], **dict(zip(DIMENSIONS, key[1:], strict=True))}
    row.update({m: getattr(s, m) for m in METRICS})
    row.update(latency_ms_sum=s.latency_ms_sum, ttft_ms_sum=s.ttft_ms_sum)
    row["ttft_count"] = s.ttft_count
    row.update(zip(LATENCY, s.latency, strict=True))
    return row


def _backfill(hourly: sa.Table, daily: sa.Table) -> None:
    """Sum the existing raw rows into the rollups, oldest first, one page of ``READ_CHUNK``
    rows per query (keyset on created_at, request_id: no long-lived cursor, each page an
    index range). A bucket is written, ``WRITE_BATCH`` rows per statement, once the pages
    have moved past it, so memory holds one page and the buckets still open (the current
    hour's and day's groups)."""
    conn = op.get_bind()
    usage = sa.table(
        "usage_events",
        *(sa.column(c) for c in ("request_id", "created_at", "status", "latency_ms", "ttft_ms")),
        *(sa.column(c) for c in (*DIMENSIONS, *METRICS[2:])),
    )
    open_: dict[int, dict[GroupKey, Sums]] = {HOUR_S: {}, DAY_S: {}}
    tables = {HOUR_S: hourly, DAY_S: daily}
    page = sa.select(usage).order_by(usage.c.created_at, usage.c.request_id).limit(READ_CHUNK)
    after: tuple[Any, Any] | None = None
    while True:
        stmt = page
        if after is not None:
            at, rid = after  # as read back, so the comparison is the ORDER BY's own
            stmt = page.where(
                usage.c.created_at >= at,
                sa.or_(usage.c.created_at > at, usage.c.request_id > rid),
            )
        rows = conn.execute(stmt).all()
        if not rows:
            break
        after = (rows[-1].created_at, rows[-1].request_id)
        events = [_event(r) for r in rows]
        newest = events[-1].created_at
        for width, pending in open_.items():
            for key, sums in aggregate(events, width).items():
                if key in pending:
                    pending[key].merge(sums)
                else:
                    pending[key] = sums
            done = [k for k in pending if k[0] + width <= newest]
            _write(conn, tables[width], [(k, pending.pop(k)) for k in done])
        if len(rows) < READ_CHUNK:
            break
    for width, pending in open_.items():
        _write(conn, tables[width], list(pending.items()))


def _write(conn: Any, table: sa.Table, groups: list[tuple[GroupKey, Sums]]) -> None:
    for at in range(0, len(groups), WRITE_BATCH):
        conn.execute(table.insert(), [_row(k, s) for k, s in groups[at : at + WRITE_BATCH]])


def _derive(name: str, dims: tuple[str, ...], source: str) -> None:
    """A coarse rollup summed from a full one, in the database (one statement)."""
    metrics = [*METRICS, "latency_ms_sum", "ttft_ms_sum", "ttft_count", *LATENCY]
    keys = ", ".join(("bucket", *dims))
    op.execute(
        f"INSERT INTO {name} ({keys}, {', '.join(metrics)}) "
        f"SELECT {keys}, {', '.join(f'SUM({m})' for m in metrics)} FROM {source} "
        f"GROUP BY {keys}"
    )


def _event(r: Any) -> UsageEvent:
    created = r.created_at
    if isinstance(created, str):  # SQLite hands back text when the column is not typed here
        from datetime import datetime

        created = datetime.fromisoformat(created)
    if created.tzinfo is None:
        from datetime import UTC

        created = created.replace(tzinfo=UTC)
    return UsageEvent(
        request_id=r.request_id,
        created_at=created.timestamp(),
        endpoint="",
        key_id=r.key_id,
        model=r.model,
        provider=r.provider,
        prompt_tokens=r.prompt_tokens or 0,
        completion_tokens=r.completion_tokens or 0,
        cached_tokens=r.cached_tokens or 0,
        cache_write_tokens=r.cache_write_tokens or 0,
        latency_ms=r.latency_ms or 0.0,
        ttft_ms=r.ttft_ms,
        status=r.status,
        cost_micros=r.cost_micros,
        user_id=r.user_id,
        team_id=r.team_id,
        org_id=r.org_id,
    )


def downgrade() -> None:
    op.drop_index("ix_usage_bodies_created_at", "usage_bodies")
    op.drop_table("usage_bodies")
    for name in OWNER_INDEXED:
        for d in OWNERS:
            op.drop_index(f"ix_{name}_{d}_bucket", name)
    for name, _, _ in COARSE:
        op.drop_table(name)
    op.drop_table("usage_rollup_daily")
    op.drop_table("usage_rollup_hourly")
