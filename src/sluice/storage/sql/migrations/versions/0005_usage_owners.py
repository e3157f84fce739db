"""Usage rows carry the user, team and organisation billed (for budgets and analytics).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("user_id", sa.String(32)))
        batch.add_column(sa.Column("team_id", sa.String(32)))
        batch.add_column(sa.Column("org_id", sa.String(32)))
    op.create_index("ix_usage_events_user_id_created_at", "usage_events", ["user_id", "created_at"])
    op.create_index("ix_usage_events_team_id_created_at", "usage_events", ["team_id", "created_at"])
    op.create_index("ix_usage_events_org_id_created_at", "usage_events", ["org_id", "created_at"])


def downgrade() -> None:
    for name in ("org_id", "team_id", "user_id"):
        op.drop_index(f"ix_usage_events_{name}_created_at", "usage_events")
    with op.batch_alter_table("usage_events") as batch:
        for name in ("org_id", "team_id", "user_id"):
            batch.drop_column(name)
