"""The request log as CSV, streamed page by page."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sluice.usage.event import UsageEvent

COLUMNS = (
    "request_id",
    "created_at",
    "endpoint",
    "status",
    "error_kind",
    "model",
    "provider",
    "deployment",
    "org_id",
    "team_id",
    "user_id",
    "key_id",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "upstream_ms",
    "streamed",
    "attempts",
    "trace_id",
)


def _cells(e: UsageEvent) -> list[object]:
    return [
        e.request_id,
        datetime.fromtimestamp(e.created_at, UTC).isoformat(),
        e.endpoint,
        e.status,
        e.error_kind or "",
        e.model or "",
        e.provider or "",
        e.deployment or "",
        e.org_id or "",
        e.team_id or "",
        e.user_id or "",
        e.key_id or "",
        e.prompt_tokens,
        e.completion_tokens,
        e.cached_tokens,
        f"{e.cost_micros / 1e6:.6f}" if e.cost_micros is not None else "",
        f"{e.latency_ms:.1f}",
        f"{e.ttft_ms:.1f}" if e.ttft_ms is not None else "",
        f"{e.upstream_ms:.1f}",
        int(e.streamed),
        e.attempts,
        e.trace_id or "",
    ]


async def csv_chunks(pages: AsyncIterator[list[UsageEvent]]) -> AsyncIterator[bytes]:
    """A header line, then one chunk of lines per page. Text cells that a spreadsheet
    would run as a formula are prefixed with ``'``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    yield buf.getvalue().encode()
    async for page in pages:
        buf.seek(0)
        buf.truncate()
        for e in page:
            writer.writerow([_safe(c) for c in _cells(e)])
        yield buf.getvalue().encode()


def _safe(cell: object) -> object:
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@"):
        return "'" + cell
    return cell
