"""``sluice routing check|reload``: validate policy files; make running gateways reload."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sluice.settings import load_settings

routing_app = typer.Typer(help="Routing policies (Cedar).", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@routing_app.command("check")
def check(
    paths: Annotated[list[Path], typer.Argument(help="Policy files or directories.")],
) -> None:
    """Load policy files as the gateway would; print every problem with file and line."""
    from sluice.routing.policy import PolicyEngine, PolicyLoadError

    try:
        result = PolicyEngine(paths).load()
    except PolicyLoadError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False)
        raise typer.Exit(2) from None
    out.print(f"ok: {len(result.policies)} policies from {len(result.files)} files")
    for policy_id in result.policies:
        out.print(f"  {policy_id}")


@routing_app.command("reload")
def reload() -> None:
    """Ask every running gateway sharing this database to reload its policy files (within
    SLUICE_KEY_REFRESH_INTERVAL_S; at once with Redis)."""
    from sluice.lifespan import KEYS_CHANNEL, POLICIES_VERSION
    from sluice.storage.sql.migrate import upgrade_engine
    from sluice.storage.sql.repository import SqlStorage

    settings = load_settings()

    async def main() -> int:
        storage = SqlStorage.from_url(settings.resolved_database_url())
        try:
            await upgrade_engine(storage.engine)
            version = int(await storage.meta.get(POLICIES_VERSION) or 0) + 1
            await storage.meta.put(POLICIES_VERSION, str(version))
        finally:
            await storage.close()
        if settings.redis_url:
            from redis.asyncio import Redis

            redis = Redis.from_url(settings.redis_url)
            try:
                await redis.publish(KEYS_CHANNEL, b"1")
            finally:
                await redis.aclose()
        return version

    version = asyncio.run(main())
    out.print(f"reload requested (policies version {version})")
