"""Server-side console sessions: the cookie carries a random token, the table its hash.

Idle expiry counts from the last page view (recorded at most once a minute, so browsing does
not write on every hit); absolute expiry from sign-in. Signing out deletes the row.

Secrets the browser keeps for a session (the playground's key) are stored under the session's
``storage_scope``: a public name of the session that pages render, so the browser can drop
whatever another session left behind. See ``static/secrets.js``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace

from sluice.clock import Clock
from sluice.storage.console import ConsoleRepository, SessionRecord

COOKIE = "sluice_session"
LOGIN_CSRF_COOKIE = "sluice_login_csrf"
TOUCH_EVERY_S = 60.0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def storage_scope(record: SessionRecord) -> str:
    """The session's name in the browser's storage: derived from the stored hash (never the
    token), one-way, so a page that shows it gives away nothing that signs anyone in."""
    return hashlib.sha256(b"sluice-storage-scope\0" + record.id_hash.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Started:
    token: str
    """Goes into the cookie; never stored."""
    record: SessionRecord


class SessionStore:
    def __init__(
        self, repo: ConsoleRepository, clock: Clock, *, idle_s: float, max_s: float
    ) -> None:
        self._repo = repo
        self._clock = clock
        self.idle_s = idle_s
        self.max_s = max_s

    async def start(self, user_id: str, *, method: str) -> Started:
        """A new session (a new token every sign-in, so a planted cookie is worthless)."""
        now = self._clock.now()
        await self._repo.purge_sessions(before=now)
        token = secrets.token_urlsafe(32)
        record = SessionRecord(
            id_hash=token_hash(token),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(32),
            method=method,
            created_at=now,
            expires_at=now + self.max_s,
            last_seen_at=now,
        )
        await self._repo.create_session(record)
        return Started(token, record)

    async def load(self, token: str | None, *, touch: bool = True) -> SessionRecord | None:
        """The live session of a cookie token; expired sessions are deleted on sight.
        ``touch=False`` looks without counting a page view (the browser's expiry check must
        not keep an idle session alive)."""
        if not token or len(token) > 200:
            return None
        id_hash = token_hash(token)
        record = await self._repo.get_session(id_hash)
        if record is None:
            return None
        now = self._clock.now()
        if now >= record.expires_at or now - record.last_seen_at >= self.idle_s:
            await self._repo.delete_session(id_hash)
            return None
        if touch and now - record.last_seen_at >= TOUCH_EVERY_S:
            await self._repo.touch_session(id_hash, at=now)
            record = replace(record, last_seen_at=now)
        return record

    def remaining_s(self, record: SessionRecord) -> float:
        """Seconds until this session ends if no page is viewed meanwhile (idle or absolute
        expiry, whichever comes first)."""
        now = self._clock.now()
        return max(0.0, min(record.expires_at - now, record.last_seen_at + self.idle_s - now))

    async def end(self, token: str | None) -> None:
        if token:
            await self._repo.delete_session(token_hash(token))

    async def end_all(self, user_id: str) -> int:
        return await self._repo.delete_user_sessions(user_id)
