"""Alerts: budget thresholds and circuit-breaker events, each recorded once.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(400), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("scope", sa.String(200)),
        sa.Column("org_id", sa.String(32)),
        sa.Column("team_id", sa.String(32)),
        sa.Column("user_id", sa.String(32)),
        sa.Column("deployment", sa.String(300)),
        sa.Column("period", sa.String(16)),
        sa.Column("period_start", sa.BigInteger),
        sa.Column("threshold_pct", sa.Integer),
        sa.Column("limit_micros", sa.BigInteger),
        sa.Column("spent_micros", sa.BigInteger),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("delivery", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ux_alerts_dedupe_key", "alerts", ["dedupe_key"], unique=True)
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])
    op.create_index("ix_alerts_scope_created_at", "alerts", ["scope", "created_at"])
    op.create_index("ix_alerts_deployment_id", "alerts", ["deployment", "id"])


def downgrade() -> None:
    op.drop_table("alerts")
