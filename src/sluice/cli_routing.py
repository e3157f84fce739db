"""``sluice routing check|reload``: validate policy files; make running gateways reload."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sluice.tenancy.service import Tenancy

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
    from sluice.auth.principal import MASTER
    from sluice.cli_tenancy import run_with_storage
    from sluice.control.policies import request_reload

    async def work(t: Tenancy, k: object, storage: object) -> int:
        # The request and its audit entry in one unit; gateways are told after the commit.
        return await request_reload(t, MASTER)

    version = run_with_storage(work)
    out.print(f"reload requested (policies version {version})")
