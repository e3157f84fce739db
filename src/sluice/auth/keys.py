"""Gateway key format and hashing.

A key reads ``sk-slc-<public id>-<secret>``: the prefix makes it recognisable (secret
scanners, logs), the public id finds its record without a scan, the secret proves it.
Only a SHA-256 of the whole key is stored; keys are 238 bits of randomness, so a slow
password hash would add nothing but latency. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass, field

from sluice.budgets.spec import BudgetSettings
from sluice.limits.settings import LimitSettings
from sluice.types import Unreadable

PREFIX = "sk-slc-"
_ID_ALPHABET = string.ascii_lowercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 12
SECRET_LENGTH = 40


@dataclass(frozen=True, slots=True)
class NewKey:
    public_id: str
    secret: str
    """The whole key, shown once."""

    @property
    def key_id(self) -> str:
        return f"key_{self.public_id}"


def generate(public_id: str | None = None) -> NewKey:
    """A new key; pass ``public_id`` to give an existing key a new secret (rotation)."""
    public_id = public_id or "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    return NewKey(public_id, f"{PREFIX}{public_id}-{secret}")


def public_id_of(token: str) -> str | None:
    """The public id of a well-formed gateway key, else ``None``."""
    if not token.startswith(PREFIX) or len(token) != len(PREFIX) + ID_LENGTH + 1 + SECRET_LENGTH:
        return None
    public_id = token[len(PREFIX) : len(PREFIX) + ID_LENGTH]
    if token[len(PREFIX) + ID_LENGTH] != "-":
        return None
    return public_id


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(token), stored_hash)


def preview(token: str) -> str:
    """What lists show: prefix, public id and the last four characters."""
    return f"{token[: len(PREFIX) + ID_LENGTH]}...{token[-4:]}"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored gateway key (never its secret)."""

    id: str
    public_id: str
    name: str
    key_hash: str
    preview: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None
    models: tuple[str, ...] | None = None
    """Models this key may call; ``None``: every model its owner may call."""
    metadata: dict[str, str] = field(default_factory=dict)
    user_id: str | None = None
    """The owner of a personal key."""
    service_account_id: str | None = None
    """The owner of a team key."""
    team_id: str | None = None
    """The team the key's usage is billed to."""
    models_exclude: tuple[str, ...] = ()
    limits: LimitSettings | Unreadable | None = None
    budget: BudgetSettings | Unreadable | None = None
    mcp_servers: tuple[str, ...] | None = None
    """MCP servers this key may use; ``None``: every server its owner may use."""
    mcp_servers_exclude: tuple[str, ...] = ()
    mcp_tools: tuple[str, ...] | None = None
    """Tool patterns (``server/tool``, ``*`` wildcard) this key may call; ``None``: inherit."""
    mcp_tools_exclude: tuple[str, ...] = ()
    previous_hash: str | None = None
    """After a rotation with a grace period: the old secret's hash ..."""
    previous_valid_until: float | None = None
    """... accepted until this time."""

    def usable_at(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)
