"""Who must accept the terms of service before their keys and console work again."""

from __future__ import annotations

from dataclasses import dataclass

from sluice.tenancy.model import User


@dataclass(frozen=True, slots=True)
class TermsGate:
    """The current terms version and who accepted it, loaded with the directory (the key
    cache resolves each key's principal against it, so no request asks the database)."""

    version: str
    accepted: frozenset[str]
    """Ids of the users who accepted ``version``."""
    exempt_admins: bool

    def pending(self, user: User) -> bool:
        """``user`` must accept ``version`` first."""
        if self.exempt_admins and user.is_admin:
            return False
        return user.id not in self.accepted
