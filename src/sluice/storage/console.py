"""Storage protocol of the web console: local passwords and server-side sessions.

Kept apart from ``storage.base`` so the console's persistence is one small seam. Times are
epoch seconds; every method is its own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One signed-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    id_hash: str
    user_id: str
    csrf_token: str
    """The synchroniser token every form and ``fetch()`` of this session must carry."""
    method: str
    """How the person proved who they are (``password``; later ``oidc:<name>``)."""
    created_at: float
    expires_at: float
    """Absolute expiry: the session ends then whatever its activity."""
    last_seen_at: float


@dataclass(frozen=True, slots=True)
class LoginRecord:
    """What a password sign-in needs to know about an account."""

    user_id: str
    password_hash: str | None
    disabled: bool


class ConsoleRepository(Protocol):
    async def login_record(self, email: str) -> LoginRecord | None:
        """The account with this email (compared case-insensitively), or ``None``."""
        ...

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> bool:
        """Store (or clear) a user's password hash; ``False`` when the user is unknown."""
        ...

    async def users_with_password(self) -> set[str]:
        """Ids of the users who have a local password."""
        ...

    async def create_session(self, record: SessionRecord) -> None: ...

    async def get_session(self, id_hash: str) -> SessionRecord | None: ...

    async def touch_session(self, id_hash: str, *, at: float) -> None:
        """Move ``last_seen_at`` forward (idle expiry counts from it)."""
        ...

    async def delete_session(self, id_hash: str) -> None: ...

    async def delete_user_sessions(self, user_id: str) -> int:
        """End every session of a user (password change, disabling); returns how many."""
        ...

    async def purge_sessions(self, *, before: float) -> int:
        """Delete sessions whose absolute expiry is before ``before``."""
        ...
