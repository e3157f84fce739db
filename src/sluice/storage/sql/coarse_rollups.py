"""The coarse rollups (``tables.COARSE_ROLLUPS``): the full rollups' sums with fewer
dimensions, so a dashboard over everything reads a few thousand rows instead of every
(owner, model) group.

They are derived from a batch's full hourly and daily rows (``sluice.usage.rollup.
batch_rows``), never from the events again, in the same transaction as the raw rows and
the full rollups, with nothing more to do on the event loop: PostgreSQL sums them
server-side from the same JSON parameters (:func:`pg_ctes`, no extra round trip); on SQLite
triggers on the full rollups keep them (migration 0008).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy import Table

from sluice.storage.sql import tables as t


def dimensions(table: Table) -> tuple[str, ...]:
    """The grouping columns of a rollup table after ``bucket``."""
    return tuple(c.name for c in table.primary_key.columns if c.name != "bucket")


def coarse_tables(width_s: int) -> Iterator[Table]:
    """The coarse tables whose buckets are ``width_s`` seconds wide."""
    return (table for table, width in t.COARSE_ROLLUPS if width == width_s)


def pg_ctes(
    source: str, width_s: int, metrics: tuple[str, ...], cast: Callable[[str], str]
) -> list[str]:
    """Data-modifying CTEs that add the rows of CTE ``source`` (full rollup rows of
    ``width_s`` buckets) to each coarse table of that width; ``cast(metric)`` types a sum."""
    out = []
    for table in coarse_tables(width_s):
        keys = ("bucket", *dimensions(table))
        sums = ", ".join(cast(m) for m in metrics)
        adds = ", ".join(f"{m} = {table.name}.{m} + excluded.{m}" for m in metrics)
        group = ", ".join(keys)
        out.append(
            f"{table.name} AS (INSERT INTO {table.name} ({group}, {', '.join(metrics)}) "
            f"SELECT {group}, {sums} FROM {source} GROUP BY {group} ORDER BY {group} "
            f"ON CONFLICT ({group}) DO UPDATE SET {adds})"
        )
    return out
