"""Usage rows record the time spent waiting on upstreams and the request's trace id.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("upstream_ms", sa.Float))
        batch.add_column(sa.Column("trace_id", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("trace_id")
        batch.drop_column("upstream_ms")
