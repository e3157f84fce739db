"""Alembic environment: runs on the connection handed over by ``sluice.storage.sql.migrate``."""

from __future__ import annotations

from alembic import context

from sluice.storage.sql.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `sluice migrate` (sluice.storage.sql.migrate)")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
