"""``sluice sso check``: what a set of claims would map to (organisation, roles, teams),
without signing anyone in; the same function as every sign-in and the admin API's dry run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sluice.tenancy.model import Directory

sso_app = typer.Typer(help="Single sign-on: check the group mapping.", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@sso_app.command("check")
def check(
    *,
    idp: Annotated[str, typer.Option("--idp", help="Identity provider name (auth.oidc).")],
    groups: Annotated[
        str, typer.Option("--groups", help="The groups claim, comma-separated.")
    ] = "",
    email: Annotated[str | None, typer.Option("--email", help="The e-mail claim.")] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Gateway YAML config (default: $SLUICE_CONFIG).", dir_okay=False
        ),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not read the database (as if it were empty).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show what a sign-in with these claims would map to. Exit status 1 when refused."""
    from sluice.auth.oidc.mapping import dry_run
    from sluice.config import ConfigError
    from sluice.errors import GatewayError
    from sluice.runtime import resolve_config
    from sluice.settings import load_settings

    settings = load_settings(config=config) if config else load_settings()
    try:
        auth = resolve_config(settings).auth
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False)
        raise typer.Exit(2) from None
    directory = None if offline else _directory(settings.resolved_database_url())
    claimed = tuple(g.strip() for g in groups.split(",") if g.strip())
    try:
        plan = dry_run(auth.oidc, idp, groups=claimed, email=email, directory=directory)
    except GatewayError as exc:
        err.print(f"error: {exc.message}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    if as_json:
        out.print_json(json.dumps(plan.to_json()))
    else:
        for line in plan.lines():
            out.print(line, highlight=False, markup=False)
    if plan.refused is not None:
        raise typer.Exit(1)


def _directory(url: str) -> Directory | None:
    """What exists in the database, or ``None`` (with a note) when it cannot be read."""
    from sluice.storage.sql.repository import SqlStorage

    async def read() -> Directory:
        storage = SqlStorage.from_url(url)
        try:
            return await storage.tenancy.directory()
        finally:
            await storage.close()

    try:
        return asyncio.run(read())
    except Exception as exc:  # a dry run still answers from the config alone
        err.print(
            f"note: the database was not read ({type(exc).__name__}); "
            "organisations are taken as not existing yet",
            highlight=False,
        )
        return None
