"""``sluice batches list|cancel``: the batches of every tenant, as the global admin, through
the same service as ``/v1/batches``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sluice.batches.service import BatchService

batches_app = typer.Typer(help="Batches (/v1/batches).", no_args_is_help=True)
out = Console(soft_wrap=True)


def _service(storage: Any) -> BatchService:
    from sluice.batches.service import BatchService
    from sluice.clock import SystemClock
    from sluice.config.batches import BatchesConfig

    return BatchService(storage.batches, config=BatchesConfig(), clock=SystemClock())


@batches_app.command("list")
def list_batches(
    limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many.")] = 20,
    user: Annotated[str | None, typer.Option(help="Only this user's batches.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's service accounts'.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Batches, newest first, with their progress."""
    from sluice.batches.model import render
    from sluice.cli_tenancy import run_with_storage
    from sluice.storage.batches import Owner

    owner = Owner(user_id=user) if user else Owner(team_id=team) if team else Owner(all=True)

    async def work(t: object, k: object, storage: object) -> list[dict[str, Any]]:
        rows, _ = await _service(storage).page(owner, after=None, limit=limit)
        return [render(b) | {"key_id": b.key_id, "user_id": b.user_id} for b in rows]

    rows = run_with_storage(work)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table()
    table.add_column("id", no_wrap=True)
    for name in ("status", "endpoint", "done", "failed", "total", "user / key"):
        table.add_column(name)
    for b in rows:
        counts = b["request_counts"]
        status = b["status"] + (f" (paused: {b['sluice_paused']})" if b["sluice_paused"] else "")
        table.add_row(
            b["id"],
            status,
            b["endpoint"],
            str(counts["completed"]),
            str(counts["failed"]),
            str(counts["total"]),
            b["user_id"] or b["key_id"],
        )
    out.print(table)


@batches_app.command("cancel")
def cancel(batch_id: Annotated[str, typer.Argument(help="The batch's id.")]) -> None:
    """Cancel a batch: no new line starts, the lines running finish, then it is cancelled
    (its output so far is kept)."""
    from sluice.auth.principal import MASTER
    from sluice.cli_tenancy import run_with_storage

    async def work(t: object, k: object, storage: object) -> str:
        return (await _service(storage).cancel(MASTER, batch_id)).status

    out.print(f"{batch_id}: {run_with_storage(work)}")
