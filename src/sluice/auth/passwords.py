"""Password hashing for people's local accounts (argon2id).

Gateway keys use a fast hash (they are long random secrets); passwords are chosen by people,
so they get a slow, salted, memory-hard one. Hashing takes tens of milliseconds of CPU: call
these from a worker thread (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sluice.errors import BadRequest

MIN_LENGTH = 10
MAX_LENGTH = 1024


class Passwords:
    """Hash and verify with one set of argon2 parameters (the library's RFC 9106 defaults)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        check_strength(password)
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches. With no hash (unknown account, no password set) a
        dummy hash is checked anyway, so the answer takes as long either way."""
        if password_hash is None:
            if self._dummy is None:
                self._dummy = self._hasher.hash("not a password of anyone")
            password_hash = self._dummy
            password = "\x00" + password
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def check_strength(password: str) -> None:
    """Length is the rule that matters (NIST SP 800-63B); no composition rules."""
    if len(password) < MIN_LENGTH:
        raise BadRequest(
            f"the password must have at least {MIN_LENGTH} characters", param="password"
        )
    if len(password) > MAX_LENGTH:
        raise BadRequest(f"the password may have at most {MAX_LENGTH} characters", param="password")
