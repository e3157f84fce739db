"""Archived organisations, teams and users: ``archived_at`` on each (``NULL``: live).

Revision ID: 0025
Revises: 0021
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

TABLES = ("orgs", "teams", "users")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("archived_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "archived_at")
