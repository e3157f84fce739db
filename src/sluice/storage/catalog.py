"""What the database keeps of the providers, models and price overrides admins manage
through the admin API (the config file's entries are never stored)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Kind = Literal["provider", "model", "price"]


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    kind: Kind
    name: str
    """The provider's or model's name (a price override: the public model's)."""
    spec: dict[str, Any]
    """The entry as it would be written in the config file (without ``name``); a provider's
    credential values are never here (sealed in the provider credentials, or ``env:``)."""
    created_at: float
    updated_at: float


class CatalogRepository(Protocol):
    """Every write bumps the catalogue counter (every process rebuilds its model table) and
    joins the unit of work it is called on (``Unit.catalog``)."""

    async def all(self) -> list[CatalogEntry]:
        """Every stored entry, by kind then name."""
        ...

    async def get(self, kind: Kind, name: str) -> CatalogEntry | None: ...

    async def put(self, entry: CatalogEntry) -> bool:
        """Insert or replace ``entry``; ``True`` when it was new."""
        ...

    async def delete(self, kind: Kind, name: str) -> bool:
        """``False`` when no such entry is stored."""
        ...

    async def version(self) -> int:
        """The catalogue counter (0 before the first write)."""
        ...
