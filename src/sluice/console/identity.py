"""How a person proves who they are. The console opens a session for the user id an
:class:`IdentityProvider` returns; the session, CSRF and roles do not depend on how.

Local passwords are the one provider today. An OIDC provider (authlib) fits the same seam:
its login route redirects to the issuer, its callback verifies the ID token, maps the email
claim to a user and returns an :class:`Identity`; the console then calls
``SessionStore.start(identity.user_id, method=identity.method)``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from sluice.auth.passwords import Passwords
from sluice.storage.console import ConsoleRepository


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    method: str
    """``password``, or ``oidc:<provider>`` for a future OIDC provider."""


class IdentityProvider(Protocol):
    name: str

    async def authenticate(self, email: str, secret: str) -> Identity | None:
        """The identity behind these credentials, or ``None`` (wrong, unknown, disabled:
        the caller cannot tell which, so sign-in cannot enumerate accounts)."""
        ...


class LocalPasswords:
    """Email + argon2 password hash from the users table."""

    name = "password"

    def __init__(self, repo: ConsoleRepository, passwords: Passwords) -> None:
        self._repo = repo
        self._passwords = passwords

    async def authenticate(self, email: str, secret: str) -> Identity | None:
        record = await self._repo.login_record(email)
        stored = record.password_hash if record is not None else None
        ok = await asyncio.to_thread(self._passwords.verify, stored, secret)
        if not ok or record is None or record.disabled:
            return None
        if stored is not None and self._passwords.needs_rehash(stored):
            fresh = await asyncio.to_thread(self._passwords.hash, secret)
            await self._repo.set_password_hash(record.user_id, fresh)
        return Identity(record.user_id, self.name)
