"""Batches delegated to a provider's batch API: the deployment, the upstream batch and its
state, the budget held for it.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("delegate", sa.String(200)))
        batch.add_column(sa.Column("upstream_id", sa.String(200)))
        batch.add_column(sa.Column("upstream_status", sa.String(32)))
        batch.add_column(sa.Column("reservation", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("reservation")
        batch.drop_column("upstream_status")
        batch.drop_column("upstream_id")
        batch.drop_column("delegate")
