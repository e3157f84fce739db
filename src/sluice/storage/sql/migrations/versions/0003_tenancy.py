"""Tenancy: organisations, teams, users, memberships, service accounts, audit log; key owners,
governance and rotation columns.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _governance() -> list[sa.Column[object]]:
    return [
        sa.Column("models", sa.JSON),
        sa.Column("models_exclude", sa.JSON),
        sa.Column("limits", sa.JSON),
        sa.Column("budget", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        for column in (
            sa.Column("user_id", sa.String(32)),
            sa.Column("service_account_id", sa.String(32)),
            sa.Column("team_id", sa.String(32)),
            sa.Column("models_exclude", sa.JSON),
            sa.Column("limits", sa.JSON),
            sa.Column("budget", sa.JSON),
            sa.Column("previous_hash", sa.String(64)),
            sa.Column("previous_valid_until", sa.DateTime(timezone=True)),
        ):
            batch.add_column(column)
        batch.create_index("ix_api_keys_user_id", ["user_id"])
        batch.create_index("ix_api_keys_team_id", ["team_id"])
    op.create_table(
        "orgs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("default_team_id", sa.String(32)),
        *_governance(),
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("org_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        *_governance(),
    )
    op.create_index("ux_teams_org_name", "teams", ["org_id", "name"], unique=True)
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("max_keys", sa.Integer),
        *_governance(),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("team_id", sa.String(32), primary_key=True),
        sa.Column("role", sa.String(32), nullable=False),
    )
    op.create_index("ix_memberships_team_id", "memberships", ["team_id"])
    op.create_table(
        "org_roles",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("org_id", sa.String(32), primary_key=True),
        sa.Column("role", sa.String(32), nullable=False),
    )
    op.create_table(
        "service_accounts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ux_service_accounts_team_name", "service_accounts", ["team_id", "name"], unique=True
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target_type", sa.String(50), nullable=False),
        sa.Column("target_id", sa.String(100), nullable=False),
        sa.Column("org_id", sa.String(32)),
        sa.Column("before", sa.JSON),
        sa.Column("after", sa.JSON),
    )
    op.create_index("ix_audit_log_org_id_at", "audit_log", ["org_id", "at"])


def downgrade() -> None:
    for table in (
        "audit_log",
        "service_accounts",
        "org_roles",
        "memberships",
        "users",
        "teams",
        "orgs",
    ):
        op.drop_table(table)
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_team_id")
        batch.drop_index("ix_api_keys_user_id")
        for name in (
            "previous_valid_until",
            "previous_hash",
            "budget",
            "limits",
            "models_exclude",
            "team_id",
            "service_account_id",
            "user_id",
        ):
            batch.drop_column(name)
