"""Template filters for the Usage, Requests and Files pages."""

from __future__ import annotations

from datetime import UTC, datetime

from jinja2 import Environment

from sluice.budgets.spec import format_usd


def micros(value: int | float | None) -> str:
    """Micro-dollars as dollars (``$0.000125``; ``—`` when nothing was billed)."""
    return "—" if value is None else format_usd(round(value))


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


def when_s(ts: float | None) -> str:
    """A moment to the second, UTC."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def filesize(value: int | None) -> str:
    """Bytes for people (``1.5 MiB``)."""
    if value is None:
        return "—"
    if value < 1024:
        return f"{value:,} B"
    size = value / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GiB"


def install(env: Environment) -> None:
    env.filters["micros"] = micros
    env.filters["ms"] = ms
    env.filters["when_s"] = when_s
    env.filters["filesize"] = filesize
