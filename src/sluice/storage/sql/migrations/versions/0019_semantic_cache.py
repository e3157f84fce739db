"""The semantic response cache's entries.

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "semantic_cache",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("partition", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("params", sa.String(128), nullable=False),
        sa.Column("embedder", sa.String(200), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_semantic_cache_partition_created", "semantic_cache", ["partition", "created_at"]
    )
    op.create_index("ix_semantic_cache_expires", "semantic_cache", ["expires_at"])
    op.create_index("ix_semantic_cache_model_scope", "semantic_cache", ["model", "scope"])


def downgrade() -> None:
    op.drop_table("semantic_cache")
