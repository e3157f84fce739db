"""Run Alembic migrations programmatically on an async engine."""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.storage.sql.engine import create_engine
from sluice.storage.sql.tables import HEAD_REVISION

if TYPE_CHECKING:
    from alembic.config import Config


def _config(connection: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("sluice.storage.sql").joinpath("migrations"))
    )
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(_config(connection), "head")


def script_head(connection: Connection) -> str | None:
    """The newest revision among the migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(connection)).get_current_head()


def _is_current(connection: Connection) -> bool:
    # Read the version table directly so that a started process imports Alembic only when
    # there is something to migrate.
    if not inspect(connection).has_table("alembic_version"):
        return False
    version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return version == HEAD_REVISION


async def upgrade_engine(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (a no-op when it is already there)."""
    async with engine.connect() as conn:
        if await conn.run_sync(_is_current):
            return
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


def upgrade(url: str) -> None:
    """Synchronous entry for the CLI."""

    async def run() -> None:
        engine = create_engine(url)
        try:
            await upgrade_engine(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
