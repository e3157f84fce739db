"""Spend columns of the list pages: this month's spend per key, user, team or organisation,
read once per page from the usage rollups (never a query per row)."""

from __future__ import annotations

from collections.abc import Iterable

from sluice.analytics.scope import visibility
from sluice.console.context import ConsoleContext, Viewer


async def month_spend(
    ctx: ConsoleContext, viewer: Viewer, *, by: str, ids: Iterable[str]
) -> dict[str, float]:
    """US dollars spent this month (UTC) per id of ``by`` (``key``, ``user``, ``team``,
    ``org``), as the person may see it; ids with no usage are absent."""
    analytics = ctx.control.analytics
    micros = await analytics.spend_by(
        analytics.month_to_date(),
        visibility(viewer.principal),
        by=by,
        among=frozenset(ids),
    )
    return {k: v / 1e6 for k, v in micros.items()}
