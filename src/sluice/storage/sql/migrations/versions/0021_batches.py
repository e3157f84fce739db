"""Batches and their lines; the batch id on usage rows.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("input_file_id", sa.String(64), nullable=False),
        sa.Column("completion_window", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ending", sa.String(16)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32)),
        sa.Column("team_id", sa.String(32)),
        sa.Column("org_id", sa.String(32)),
        sa.Column("service_account_id", sa.String(32)),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("completed", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("metadata", sa.JSON),
        sa.Column("times", sa.JSON, nullable=False),
        sa.Column("output_file_id", sa.String(64)),
        sa.Column("error_file_id", sa.String(64)),
        sa.Column("paused", sa.String(16)),
        sa.Column("resume_at", sa.Float),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.Float),
    )
    op.create_index("ix_batches_status", "batches", ["status"])
    op.create_index("ix_batches_user_id_created_at", "batches", ["user_id", "created_at"])
    op.create_index("ix_batches_team_id_created_at", "batches", ["team_id", "created_at"])
    op.create_table(
        "batch_lines",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("line", sa.Integer, primary_key=True),
        sa.Column("custom_id", sa.String(512), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("done", sa.Boolean, nullable=False),
        sa.Column("owner", sa.String(64)),
        sa.Column("lease_until", sa.Float),
        sa.Column("claims", sa.Integer, nullable=False),
        sa.Column("failed", sa.Boolean),
        sa.Column("output", sa.Text),
        sa.UniqueConstraint("batch_id", "custom_id", name="uq_batch_lines_custom_id"),
    )
    op.create_index("ix_batch_lines_batch_id_done", "batch_lines", ["batch_id", "done"])
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(64)))
    # Partial: live rows (no batch) are never in it, so their inserts do not maintain it.
    op.create_index(
        "ix_usage_events_batch_id",
        "usage_events",
        ["batch_id"],
        sqlite_where=sa.text("batch_id IS NOT NULL"),
        postgresql_where=sa.text("batch_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_usage_events_batch_id", table_name="usage_events")
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("batch_id")
    op.drop_index("ix_batch_lines_batch_id_done", table_name="batch_lines")
    op.drop_table("batch_lines")
    op.drop_index("ix_batches_team_id_created_at", table_name="batches")
    op.drop_index("ix_batches_user_id_created_at", table_name="batches")
    op.drop_index("ix_batches_status", table_name="batches")
    op.drop_table("batches")
