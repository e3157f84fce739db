"""Terms of service: who accepted which version, and when.

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "terms_acceptances",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_terms_acceptances_version", "terms_acceptances", ["version"])


def downgrade() -> None:
    op.drop_index("ix_terms_acceptances_version", table_name="terms_acceptances")
    op.drop_table("terms_acceptances")
