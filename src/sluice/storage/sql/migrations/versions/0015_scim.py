"""SCIM 2.0 provisioning: which users and teams an identity provider manages through SCIM.

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scim_users",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("org_id", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("name", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_scim_users_org_id", "scim_users", ["org_id"])
    op.create_table(
        "scim_groups",
        sa.Column("team_id", sa.String(32), primary_key=True),
        sa.Column("org_id", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_scim_groups_org_id", "scim_groups", ["org_id"])


def downgrade() -> None:
    op.drop_index("ix_scim_groups_org_id", table_name="scim_groups")
    op.drop_table("scim_groups")
    op.drop_index("ix_scim_users_org_id", table_name="scim_users")
    op.drop_table("scim_users")
