"""The in-process key cache: every request is authenticated here, never against the database.

The cache is filled at start and refreshed when keys change: at once for changes made through
this process, within ``key_refresh_interval_s`` (or a Redis broadcast) for changes made by
another process (the CLI, another replica).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from sluice.auth import keys
from sluice.auth.principal import MASTER, Principal
from sluice.clock import Clock
from sluice.errors import ErrorKind, GatewayError


def _unauthorized(message: str) -> GatewayError:
    return GatewayError(ErrorKind.CALLER_UNAUTHENTICATED, message, code="invalid_api_key")


class KeyCache:
    def __init__(self, clock: Clock, *, master_hash: str | None) -> None:
        self._clock = clock
        self._master_hash = master_hash
        self._by_public_id: dict[str, tuple[keys.KeyRecord, Principal]] = {}
        self.version = -1
        """The database key-change counter this cache reflects."""

    def replace(self, records: Iterable[keys.KeyRecord], *, version: int) -> None:
        self._by_public_id = {r.public_id: (r, _principal(r)) for r in records}
        self.version = version

    def put(self, record: keys.KeyRecord) -> None:
        self._by_public_id[record.public_id] = (record, _principal(record))

    def __len__(self) -> int:
        return len(self._by_public_id)

    def authenticate(self, token: str | None) -> Principal:
        """The principal for a presented key; raises a 401 ``GatewayError`` otherwise."""
        if not token:
            raise _unauthorized(
                "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
            )
        public_id = keys.public_id_of(token)
        if public_id is not None:
            entry = self._by_public_id.get(public_id)
            if entry is not None and keys.matches(token, entry[0].key_hash):
                record, principal = entry
                if record.revoked_at is not None:
                    raise _unauthorized("this API key has been revoked")
                if record.expires_at is not None and self._clock.now() >= record.expires_at:
                    raise _unauthorized("this API key has expired")
                return principal
        elif self._master_hash is not None and hmac.compare_digest(
            keys.hash_key(token), self._master_hash
        ):
            return MASTER
        raise _unauthorized("invalid API key")


def _principal(record: keys.KeyRecord) -> Principal:
    return Principal(
        key_id=record.id,
        name=record.name,
        models=frozenset(record.models) if record.models is not None else None,
    )


def token_from_headers(authorization: bytes | None, x_api_key: bytes | None) -> str | None:
    """The presented key from ``Authorization: Bearer`` or ``x-api-key``."""
    if authorization:
        value = authorization.decode("latin-1").strip()
        scheme, _, rest = value.partition(" ")
        if scheme.lower() == "bearer" and rest.strip():
            return rest.strip()
    if x_api_key:
        return x_api_key.decode("latin-1").strip() or None
    return None
