"""Billed units of media requests on usage rows: how many, and of what (audio seconds,
characters, images, rerank searches).

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("units", sa.Float))
        batch.add_column(sa.Column("unit_kind", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("unit_kind")
        batch.drop_column("units")
