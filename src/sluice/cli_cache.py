"""``sluice cache clear|warm``: invalidate or warm the response cache of a running gateway,
through its admin API (a memory cache lives in the gateway's process, so only the gateway
can drop its entries)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

cache_app = typer.Typer(help="The response cache of a running gateway.", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

WARM_BATCH = 500
TIMEOUT_S = 60.0

UrlOpt = Annotated[
    str,
    typer.Option("--url", envvar="SLUICE_URL", help="The gateway's base URL."),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="SLUICE_ADMIN_KEY",
        help="An admin key (default: $SLUICE_ADMIN_KEY, else the configured master key).",
        show_default=False,
    ),
]


def _key(key: str | None) -> str:
    if key:
        return key
    from sluice.settings import load_settings

    master = load_settings().master_key
    if not master:
        err.print("[red]error[/red] give --key (or set SLUICE_ADMIN_KEY / SLUICE_MASTER_KEY)")
        raise typer.Exit(2)
    return master


async def _post(url: str, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(
            url.rstrip("/") + path,
            data=orjson.dumps(body),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        ) as resp,
    ):
        text = await resp.read()
        if resp.status != 200:
            raise typer.BadParameter(f"{resp.status}: {text.decode(errors='replace')[:500]}")
        result: dict[str, Any] = orjson.loads(text)
        return result


def _call(url: str, key: str | None, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        return asyncio.run(_post(url, _key(key), path, body))
    except OSError as exc:
        err.print(f"[red]error[/red] cannot reach {url}: {exc}")
        raise typer.Exit(1) from None
    except typer.BadParameter as exc:
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None


@cache_app.command("clear")
def clear(  # the options are keyword-only
    *,
    url: UrlOpt = "http://127.0.0.1:4000",
    key: KeyOpt = None,
    model: Annotated[str | None, typer.Option(help="Only this public model.")] = None,
    team: Annotated[str | None, typer.Option(help="A team id (and its keys).")] = None,
    org: Annotated[str | None, typer.Option(help="An organisation id (its teams, keys).")] = None,
    key_id: Annotated[str | None, typer.Option("--key-id", help="One key's entries.")] = None,
    older_than: Annotated[
        float | None, typer.Option("--older-than", min=0, help="Entries older than N seconds.")
    ] = None,
    everything: Annotated[bool, typer.Option("--all", help="Every entry.")] = False,
) -> None:
    """Drop entries from the exact store and the semantic index (filters narrow)."""
    body: dict[str, Any] = {"all": everything}
    for name, value in (
        ("model", model),
        ("team_id", team),
        ("org_id", org),
        ("key_id", key_id),
        ("older_than_s", older_than),
    ):
        if value is not None:
            body[name] = value
    if len(body) == 1 and not everything:
        err.print("[red]error[/red] say what to clear: --model/--team/--org/--older-than or --all")
        raise typer.Exit(2)
    result = _call(url, key, "/api/v1/cache/clear", body)
    out.print(f"dropped {result['exact']} exact and {result['semantic']} semantic entries")


@cache_app.command("warm")
def warm(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSONL of prompt/answer pairs.")
    ],
    url: UrlOpt = "http://127.0.0.1:4000",
    key: KeyOpt = None,
) -> None:
    """Store prompt/answer pairs: one JSON object a line with model, scope (org:ID, team:ID
    or key:ID), prompt or messages, answer, and optionally params and ttl_s
    (docs/caching.md)."""
    entries: list[dict[str, Any]] = []
    with file.open("rb") as lines:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                err.print(f"[red]error[/red] {file}:{n}: not JSON ({exc})")
                raise typer.Exit(2) from None
            if not isinstance(entry, dict):
                err.print(f"[red]error[/red] {file}:{n}: not a JSON object")
                raise typer.Exit(2)
            entries.append(entry)
    stored = semantic = 0
    for start in range(0, len(entries), WARM_BATCH):
        batch = entries[start : start + WARM_BATCH]
        done = _call(url, key, "/api/v1/cache/warm", {"entries": batch})
        stored += int(done["stored"])
        semantic += int(done.get("semantic", 0))
    out.print(f"stored {stored} entries ({semantic} in the semantic index)")
