"""``sluice config export|reload`` and ``sluice prices check``: the stored models and
providers as YAML, re-reading the config file in every running gateway, unpriced models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sluice.tenancy.service import Tenancy

config_app = typer.Typer(
    help="The models and providers stored through the admin API, and the config file.",
    no_args_is_help=True,
)
prices_app = typer.Typer(help="The price table of the served models.", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _stored() -> list[Any]:
    from sluice.cli_tenancy import run_with_storage

    async def work(t: Tenancy, k: object, storage: Any) -> list[Any]:
        entries: list[Any] = await storage.catalog.all()
        return entries

    return run_with_storage(work)


@config_app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Write the providers and models stored in the database as config-file YAML (to move
    them into the file under review in git; delete them from the database afterwards, since
    a name in both is an error)."""
    import yaml

    from sluice.control.catalog_view import export_entries

    text = yaml.safe_dump(export_entries(_stored()), sort_keys=False, allow_unicode=True)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}")


@config_app.command("reload")
def reload() -> None:
    """Ask every running gateway sharing this database to re-read its config file's
    providers and models (within SLUICE_KEY_REFRESH_INTERVAL_S; at once with Redis). A
    gateway also re-reads it on SIGHUP. A file that does not validate is logged and the
    served models are kept."""
    from sluice.auth.principal import MASTER
    from sluice.cli_tenancy import run_with_storage
    from sluice.control.catalog import request_file_reload

    async def work(t: Tenancy, k: object, storage: object) -> int:
        return await request_file_reload(t, MASTER)

    version = run_with_storage(work)
    out.print(f"reload requested (config version {version})")


@prices_app.command("check")
def check(
    file: Annotated[
        Path | None, typer.Option("--config", "-c", help="Config file (default: SLUICE_CONFIG).")
    ] = None,
    stored: Annotated[bool, typer.Option(help="Include the models stored in the database.")] = True,
) -> None:
    """List the served models without a known price (no prices in the config, unknown to
    genai-prices): their requests cost 0 for budgets. Exit 1 when there is any."""
    from sluice.budgets.pricing import Pricer
    from sluice.config import ConfigError, load_config, load_default_config
    from sluice.control.catalog_view import effective, unpriced
    from sluice.settings import load_settings

    path = file or load_settings().config
    try:
        config = load_config(path) if path else load_default_config()
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False)
        raise typer.Exit(2) from None
    if stored:
        config = effective(config, _stored())
    missing = unpriced(config, Pricer())
    for model, provider, upstream in missing:
        out.print(f"{model}: no price for {upstream!r} of {provider!r}", highlight=False)
    if missing:
        raise typer.Exit(1)
    out.print(f"ok: every one of {len(config.models)} models has a price")
