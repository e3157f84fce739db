"""Who a request runs as."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    is_admin: bool = False
    models: frozenset[str] | None = None
    """Public model names this principal may call; ``None``: all."""

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


MASTER_KEY_ID = "master"
MASTER = Principal(key_id=MASTER_KEY_ID, name="master key", is_admin=True)
