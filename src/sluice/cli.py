"""The ``sluice`` command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from sluice import (
    __version__,
    cli_console,  # noqa: F401  (adds `users create-admin`, `users set-password`)
)
from sluice.cli_batches import batches_app
from sluice.cli_cache import cache_app
from sluice.cli_catalog import config_app, prices_app
from sluice.cli_routing import routing_app
from sluice.cli_sso import sso_app
from sluice.cli_tenancy import create_key as create_owned_key
from sluice.cli_tenancy import orgs_app, teams_app, users_app
from sluice.settings import Settings, load_settings

if TYPE_CHECKING:
    from sluice.auth.keys import KeyRecord

app = typer.Typer(
    help=(
        "Sluice: a self-hosted AI gateway (OpenAI- and Anthropic-compatible) with keys, teams,"
        " limits, budgets, routing, analytics and a web console."
    ),
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Create, list and revoke gateway API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(orgs_app, name="orgs")
app.add_typer(teams_app, name="teams")
app.add_typer(users_app, name="users")
app.add_typer(routing_app, name="routing")
app.add_typer(sso_app, name="sso")
app.add_typer(batches_app, name="batches")
app.add_typer(cache_app, name="cache")
app.add_typer(config_app, name="config")
app.add_typer(prices_app, name="prices")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Gateway YAML config (default: $SLUICE_CONFIG or the built-in demo config).",
        exists=True,
        dir_okay=False,
    ),
]


def _settings(config: Path | None = None) -> Settings:
    return load_settings(config=config) if config else load_settings()


def _run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(factory())


def _check(settings: Settings, *, host: str, port: int) -> None:
    """Everything known to fail a start, before the database is touched and the one-time
    admin key generated: the config, the files it names, the port."""
    from sluice.config import ConfigError
    from sluice.preflight import file_problems, port_problem
    from sluice.runtime import resolve_config

    try:
        problems = [str(p) for p in file_problems(resolve_config(settings))]
    except ConfigError as exc:
        problems = [str(p) for p in exc.problems]
    busy = port_problem(host, port)
    for problem in [*problems, *([busy] if busy else [])]:
        err.print(f"[red]error[/red] {problem}", highlight=False)
    if problems:
        raise typer.Exit(2)
    if busy:
        raise typer.Exit(1)


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 4000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run migrations, then serve the gateway: data plane, admin API, web console, metrics."""
    import uvicorn

    settings = _settings(config)
    _check(settings, host=host, port=port)
    url = settings.resolved_database_url()

    generated, prepared = _prepare(settings, url)
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    out.print(f"[bold]Sluice {__version__}[/bold] on {base}  (database: {_safe_url(url)})")
    if generated:
        out.print(f"admin key (shown once, only its hash is stored): [bold green]{generated}[/]")
        token = generated
    elif settings.master_key:
        out.print("admin key: the value of SLUICE_MASTER_KEY")
        token = "$SLUICE_MASTER_KEY"
    else:
        out.print(
            "admin key: generated at first start and printed then; set SLUICE_MASTER_KEY "
            "or create a key with `sluice keys create --name me`"
        )
        token = "$SLUICE_KEY"
    model = _first_model(settings)
    out.print("try:", highlight=False)
    out.print(
        f'  curl {base}/v1/chat/completions -H "Authorization: Bearer {token}" '
        "-H 'Content-Type: application/json' "
        f'-d \'{{"model": "{model}", "messages": [{{"role": "user", '
        '"content": "Hi"}]}\'',
        highlight=False,
        soft_wrap=True,
    )
    cli = _cli_command()
    out.print(f"CLI:  {cli} keys create --name me   (every command: {cli} --help)", highlight=False)
    out.print(
        f'SDK:  OpenAI(base_url="{base}/v1", api_key="{token}")   (Python: pip install openai)',
        highlight=False,
        soft_wrap=True,
    )
    if config is not None:
        os.environ["SLUICE_CONFIG"] = str(config.resolve())
    os.environ["SLUICE_MIGRATE_ON_START"] = "false" if prepared else "true"
    from sluice.api.protocol import HeadLimits, protocol_factory
    from sluice.observability.logging import uvicorn_log_config

    head_limits = HeadLimits(
        max_bytes=settings.max_header_bytes,
        max_fields=settings.max_headers,
        timeout_s=settings.header_timeout_s,
    )
    metrics_dir = _metrics_dir(settings) if workers > 1 else None
    # The app drains on SIGTERM, then hands the signal to uvicorn, which re-raises it once
    # it has shut down: by then the work is done, so the process ends with status 0.
    signal.signal(signal.SIGTERM, _drained)
    try:
        uvicorn.run(
            "sluice.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http=protocol_factory(head_limits),  # httptools, with bounded request heads
            timeout_keep_alive=settings.keep_alive_timeout_s,
            ws="none",  # no WebSocket routes: do not load a WebSocket protocol
            access_log=False,
            # Forwarded headers are read by the console alone, and only when
            # SLUICE_CONSOLE_TRUST_PROXY_HEADERS says so (one setting, one place).
            proxy_headers=False,
            log_level=settings.log_level,
            log_config=uvicorn_log_config(fmt=settings.log_format, level=settings.log_level),
            timeout_graceful_shutdown=int(settings.shutdown_grace_s),
            lifespan="on",
        )
    finally:
        if metrics_dir is not None and not settings.metrics_dir:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


def _prepare(settings: Settings, url: str) -> tuple[str | None, bool]:
    """Migrate, then the admin key, once for every worker: the generated admin key (or
    ``None``) and whether it was done. Not done when the database is unavailable: the
    gateway starts anyway, answers 503 until the database answers, then migrates and loads
    its keys by itself (``sluice.bringup``)."""
    from sluice.auth.service import bootstrap_master_key
    from sluice.bringup import PING_TIMEOUT_S, database_error
    from sluice.storage.sql.migrate import upgrade_engine
    from sluice.storage.sql.repository import SqlStorage

    async def prepare() -> str | None:
        storage = SqlStorage.from_url(url)
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                await storage.ping()
            await upgrade_engine(storage.engine)
            return (await bootstrap_master_key(storage.meta, settings.master_key)).generated
        finally:
            await storage.close()

    try:
        return _run(prepare), True
    except Exception as exc:
        if not database_error(exc):
            raise
        err.print(
            f"[yellow]the database is unavailable[/yellow] ({type(exc).__name__}); "
            "serving 503 and retrying until it answers",
            highlight=False,
        )
        return None, False


def _drained(sig: int, frame: FrameType | None) -> None:
    """SIGTERM outside uvicorn's own handling: re-raised by uvicorn once it has shut down
    (the drain is over, nothing is left to do), or received before uvicorn started to
    serve (nothing to drain yet). Either way the command ends with status 0."""
    raise SystemExit(0)


def _metrics_dir(settings: Settings) -> str:
    """The multiprocess metrics directory of this run, empty, exported to the workers
    (``prometheus_client`` reads ``PROMETHEUS_MULTIPROC_DIR`` when a worker imports it)."""
    import tempfile

    path = settings.metrics_dir or tempfile.mkdtemp(prefix="sluice-metrics-")
    Path(path).mkdir(parents=True, exist_ok=True)
    for stale in Path(path).glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    os.environ["SLUICE_METRICS_DIR"] = path
    return path


def _cli_command() -> str:
    """This CLI as the user can type it from here: ``sluice`` when that is on the PATH,
    else its path (``.venv/bin/sluice`` after ``make serve``)."""
    import shutil

    argv0 = Path(sys.argv[0])
    if argv0.name == "__main__.py":  # python -m sluice
        return f"{_typable(Path(sys.executable))} -m sluice"
    on_path = shutil.which("sluice")
    if on_path is not None and Path(on_path).resolve() == argv0.resolve():
        return "sluice"
    return _typable(argv0)


def _typable(path: Path) -> str:
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path.absolute())


def _first_model(settings: Settings) -> str:
    from sluice.runtime import resolve_config

    models = resolve_config(settings).models
    return models[0].name if models else "MODEL"


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest version."""
    from sluice.storage.sql.migrate import upgrade

    url = _settings().resolved_database_url()
    upgrade(url)
    out.print(f"database is up to date ({_safe_url(url)})")


@app.command("check-config")
def check_config(
    file: Annotated[Path, typer.Argument(help="YAML config to validate.")],
) -> None:
    """Validate a config file and the files it names (routing policies); print every error
    with its file, line, path and field. Exit 2 on errors; an empty config is a warning."""
    from sluice.config import ConfigError, load_config
    from sluice.preflight import file_problems

    try:
        config = load_config(file)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False)
        raise typer.Exit(2) from None
    problems = file_problems(config)
    for line in problems:
        err.print(f"[red]error[/red] {line}", highlight=False)
    if problems:
        raise typer.Exit(2)
    if not config.providers and not config.models:
        err.print(
            f"[yellow]warning[/yellow] {file}: the config defines no provider and no model: "
            "the gateway would answer every model request with 404",
            highlight=False,
        )
    out.print(f"{file}: ok ({len(config.providers)} providers, {len(config.models)} models)")


@app.command("mock-upstream")
def mock_upstream(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 18000,
) -> None:
    """Serve the mock provider's scripted behaviours as an OpenAI-compatible HTTP API."""
    from sluice.providers.mock.server import serve as serve_mock

    try:
        serve_mock(
            host, port, on_ready=lambda: out.print(f"mock upstream on http://{host}:{port}/v1")
        )
    except OSError as exc:
        reason = exc.strerror or str(exc)
        err.print(f"[red]error[/red] cannot listen on {host}:{port}: {reason}", highlight=False)
        raise typer.Exit(1) from None


@app.command()
def version() -> None:
    """Print the version."""
    out.print(f"sluice {__version__}")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _key_json(record: KeyRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "name": record.name,
        "preview": record.preview,
        "created_at": _iso(record.created_at),
        "expires_at": _iso(record.expires_at),
        "revoked_at": _iso(record.revoked_at),
        "last_used_at": _iso(record.last_used_at),
        "models": list(record.models) if record.models is not None else None,
        "user_id": record.user_id,
        "team_id": record.team_id,
    }


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")],
    user: Annotated[
        str | None, typer.Option(help="Owner (user id or email): a personal key.")
    ] = None,
    team: Annotated[str | None, typer.Option(help="Team to bill (id or ORG/TEAM).")] = None,
    expires_in_days: Annotated[
        float | None, typer.Option(min=0.0, help="Expire after this many days.")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Allow only this model (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a key and print its secret (shown once)."""
    import time

    now = time.time()
    created = create_owned_key(
        name=name,
        user=user,
        team=team,
        expires_at=now + expires_in_days * 86400 if expires_in_days else None,
        models=tuple(model) if model else None,
    )
    record, secret = created.record, created.secret
    if as_json:
        sys.stdout.write(json.dumps({**_key_json(record), "key": secret}) + "\n")
        return
    out.print(f"created key [bold]{record.id}[/bold] ({record.name})")
    out.print(f"secret (shown once): [bold green]{secret}[/]")


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (every field).")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Print every column.")] = False,
) -> None:
    """List keys (never their secrets): id, name, state and expiry; --wide adds the
    preview, owner and dates."""
    import time

    from sluice.auth.principal import MASTER
    from sluice.cli_tenancy import run_as_admin, show

    records = run_as_admin(lambda t, k: k.list(MASTER))
    now = time.time()
    rows = [{**_key_json(r), "state": _key_state(r, now)} for r in records]
    if not as_json:
        for row in rows:
            for field in ("created_at", "expires_at", "revoked_at", "last_used_at"):
                row[field] = _day(row[field])
    show(
        rows,
        ("id", "name", "state", "expires_at"),
        wide_columns=("preview", "user_id", "team_id", "created_at", "last_used_at"),
        as_json=as_json,
        wide=wide,
    )


def _key_state(record: KeyRecord, now: float) -> str:
    if record.revoked_at is not None:
        return "revoked"
    if record.expires_at is not None and record.expires_at <= now:
        return "expired"
    return "active"


def _day(value: object) -> object:
    """``2026-12-03`` of an ISO time, for tables (``--json`` keeps the full time)."""
    return value[:10] if isinstance(value, str) else value


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (key_...).")]) -> None:
    """Revoke a key (audited, as the admin); running gateways stop accepting it within a
    second."""
    import time

    from sluice.auth.principal import MASTER
    from sluice.cli_tenancy import run_as_admin

    run_as_admin(lambda t, k: k.revoke(MASTER, key_id, now=time.time()))
    out.print(f"revoked {key_id}")


def main() -> None:
    app()
