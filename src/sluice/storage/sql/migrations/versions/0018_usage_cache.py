"""The response cache's columns of usage rows: what the cache did and what a hit saved.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("cache", sa.String(8)))
        batch.add_column(sa.Column("cost_saved_micros", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("cost_saved_micros")
        batch.drop_column("cache")
