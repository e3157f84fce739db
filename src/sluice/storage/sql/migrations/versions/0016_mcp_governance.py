"""MCP governance: access lists on every level (orgs, teams, users, keys) and the MCP
columns of usage rows (server, tool, bytes in and out, JSON-RPC error code).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_LEVELS = ("orgs", "teams", "users", "api_keys")
_ACCESS = ("mcp_servers", "mcp_servers_exclude", "mcp_tools", "mcp_tools_exclude")


def upgrade() -> None:
    for table in _LEVELS:
        with op.batch_alter_table(table) as batch:
            for column in _ACCESS:
                batch.add_column(sa.Column(column, sa.JSON))
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("mcp_server", sa.String(64)))
        batch.add_column(sa.Column("mcp_tool", sa.String(200)))
        batch.add_column(sa.Column("bytes_in", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("bytes_out", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("rpc_error", sa.Integer))
    # Partial: model rows (no server) are never in it, so their inserts do not maintain it.
    op.create_index(
        "ix_usage_events_mcp_server_created_at",
        "usage_events",
        ["mcp_server", "created_at"],
        sqlite_where=sa.text("mcp_server IS NOT NULL"),
        postgresql_where=sa.text("mcp_server IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_usage_events_mcp_server_created_at", table_name="usage_events")
    with op.batch_alter_table("usage_events") as batch:
        for column in ("rpc_error", "bytes_out", "bytes_in", "mcp_tool", "mcp_server"):
            batch.drop_column(column)
    for table in reversed(_LEVELS):
        with op.batch_alter_table(table) as batch:
            for column in reversed(_ACCESS):
                batch.drop_column(column)
