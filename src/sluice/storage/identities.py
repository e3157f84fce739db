"""Storage protocol of federated identities: who a person is at an identity provider.

A person's identity is the pair (issuer, subject), never the e-mail alone: e-mail addresses
change hands and differ in verification between IdPs. Times are epoch seconds; every method
is its own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    issuer: str
    subject: str
    user_id: str
    email: str | None
    groups: tuple[str, ...]
    """The groups claim at the last sign-in."""
    created_at: float
    last_sign_in_at: float


class IdentityRepository(Protocol):
    async def get(self, issuer: str, subject: str) -> IdentityRecord | None: ...

    async def for_user(self, user_id: str) -> list[IdentityRecord]:
        """Every identity linked to a user, oldest first."""
        ...

    async def create(self, record: IdentityRecord) -> bool:
        """Link an identity to a user; ``False`` when (issuer, subject) is linked already
        (the row is left as it was)."""
        ...

    async def signed_in(
        self, issuer: str, subject: str, *, at: float, email: str | None, groups: tuple[str, ...]
    ) -> None:
        """Record a sign-in: its time and the claims it carried."""
        ...
