"""Who owns a file, and so who may see it: a user (any of their keys), a team (its service
accounts' keys), or, for a key with neither (the master key), that key alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.auth.principal import Principal


@dataclass(frozen=True, slots=True)
class FileOwner:
    """One owner; exactly the fields a stored file carries (``FileRecord``)."""

    user_id: str | None
    team_id: str | None
    """Set only when ``user_id`` is not (a service account's team)."""
    key_id: str
    """Decides alone only when ``user_id`` and ``team_id`` are both unset."""

    @property
    def scope(self) -> str:
        """A stable name of the owner (``user:ID``, ``team:ID``, ``key:ID``): quota and
        locks are per scope."""
        if self.user_id is not None:
            return f"user:{self.user_id}"
        if self.team_id is not None:
            return f"team:{self.team_id}"
        return f"key:{self.key_id}"


def owner_of(principal: Principal) -> FileOwner:
    """The owner of what ``principal`` uploads, and whose files it sees."""
    if principal.user_id is not None:
        return FileOwner(principal.user_id, None, principal.key_id)
    if principal.service_account_id is not None and principal.team_id is not None:
        return FileOwner(None, principal.team_id, principal.key_id)
    return FileOwner(None, None, principal.key_id)
