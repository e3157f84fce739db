"""The in-process key cache: every request is authenticated here, never against the database.

The cache is filled at start and refreshed when keys change: at once for changes made through
this process, within ``key_refresh_interval_s`` (or a Redis broadcast) for changes made by
another process (the CLI, another replica).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sluice.auth import keys
from sluice.auth.principal import MASTER, BudgetCheck, Principal
from sluice.clock import Clock
from sluice.errors import ErrorKind, GatewayError, terms_not_accepted
from sluice.tenancy.resolve import EMPTY, DirectoryIndex, principal_for

if TYPE_CHECKING:
    from sluice.auth.guard import BadKeyGuard
    from sluice.auth.oidc.bearer import BearerTokens

_VERIFIED_CAP = 10_000
"""Proven keys remembered at most (then forgotten at once and proven again)."""


def _unauthorized(message: str) -> GatewayError:
    return GatewayError(ErrorKind.CALLER_UNAUTHENTICATED, message, code="invalid_api_key")


class KeyCache:
    """Keys by public id, each with its principal resolved against the directory."""

    def __init__(
        self,
        clock: Clock,
        *,
        master_hash: str | None,
        everything: frozenset[str] = frozenset(),
        canonical: Callable[[str], str | None] = lambda name: name,
        guard: BadKeyGuard | None = None,
    ) -> None:
        """``guard``: throttles client addresses that present bad keys (when configured)."""
        self._clock = clock
        self._guard = guard
        self._master_hash = master_hash
        self._everything = everything
        self._canonical = canonical
        self._index = EMPTY
        self._by_public_id: dict[str, tuple[keys.KeyRecord, Principal]] = {}
        self._verified: dict[str, str] = {}
        """Presented key → the stored hash it was last proven against (a rotation or a
        revocation changes or drops the record, so the memo cannot outlive the secret)."""
        self.version = -1
        """The database change counter this cache reflects."""
        self._by_id: dict[str, str] = {}
        """Key id → public id."""
        self.bearer: BearerTokens | None = None
        """IdP access tokens accepted on the data plane (``api_tokens``), when configured;
        the data plane asks it only for tokens that are not key-shaped."""

    def _entry(self, record: keys.KeyRecord) -> tuple[keys.KeyRecord, Principal] | None:
        principal = principal_for(
            record, self._index, everything=self._everything, canonical=self._canonical
        )
        return (record, principal) if principal is not None else None

    def replace(
        self,
        records: Iterable[keys.KeyRecord],
        *,
        version: int,
        index: DirectoryIndex | None = None,
    ) -> None:
        if index is not None:
            self._index = index
        entries = {}
        for record in records:
            entry = self._entry(record)
            if entry is not None:
                entries[record.public_id] = entry
        self._by_public_id = entries
        self._by_id = {record.id: public_id for public_id, (record, _) in entries.items()}
        self.version = version

    def set_models(
        self, everything: frozenset[str], canonical: Callable[[str], str | None] | None = None
    ) -> None:
        """The models ``*`` access stands for (the catalogue changed); principals are
        resolved against them on the next :meth:`replace`."""
        self._everything = everything
        if canonical is not None:
            self._canonical = canonical

    def set_master_hash(self, master_hash: str) -> None:
        """The admin key's hash, known once the database answered (``bootstrap_master_key``)."""
        self._master_hash = master_hash

    def put(self, record: keys.KeyRecord) -> None:
        entry = self._entry(record)
        if entry is None:
            self._by_public_id.pop(record.public_id, None)
            self._by_id.pop(record.id, None)
        else:
            self._by_public_id[record.public_id] = entry
            self._by_id[record.id] = record.public_id

    @property
    def guard(self) -> BadKeyGuard | None:
        return self._guard

    @property
    def index(self) -> DirectoryIndex:
        """The directory the cached principals were resolved against (the console builds a
        signed-in person's principal from it)."""
        return self._index

    def principal(self, key_id: str) -> Principal | None:
        """The cached principal of a key id (for the admin API's actor)."""
        for record, principal in self._by_public_id.values():
            if record.id == key_id:
                return principal
        return None

    def active_principal(self, key_id: str) -> Principal | None:
        """The principal of a usable key by id (an IdP token mapped to it runs as it); raises
        403 ``terms_not_accepted`` like :meth:`authenticate`."""
        entry = self._by_public_id.get(self._by_id.get(key_id, ""))
        if entry is None or not entry[0].usable_at(self._clock.now()):
            return None
        if entry[1].terms_pending is not None:
            raise terms_not_accepted(entry[1].terms_pending)
        return entry[1]

    def _in_grace(self, token: str, record: keys.KeyRecord) -> bool:
        """The secret before a rotation, still accepted during its grace period."""
        return (
            record.previous_hash is not None
            and record.previous_valid_until is not None
            and self._clock.now() < record.previous_valid_until
            and keys.matches(token, record.previous_hash)
        )

    def budget_checks(self) -> list[BudgetCheck]:
        """Every budget of every cached principal (for seeding spend)."""
        return [check for _, p in self._by_public_id.values() for check in p.budget_checks]

    def principals(self) -> list[Principal]:
        """Every cached principal (for the alert checks)."""
        return [p for _, p in self._by_public_id.values()]

    def __len__(self) -> int:
        return len(self._by_public_id)

    def authenticate(self, token: str | None, scope: Mapping[str, Any] | None = None) -> Principal:
        """The principal for a presented key; raises a 401 ``GatewayError`` otherwise, and
        403 ``terms_not_accepted`` for a proven key whose owner has not accepted the current
        terms of service.

        ``scope``, the request's ASGI scope, names the client for the bad-key guard: with a
        guard, an address that presented too many bad keys gets 429 before its key is
        looked at, and a bad key counts against its address."""
        guard = self._guard
        if guard is not None and scope is not None:
            return self._guarded(token, scope, guard)
        if not token:
            raise _unauthorized(
                "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
            )
        public_id = keys.public_id_of(token)
        if public_id is not None:
            entry = self._by_public_id.get(public_id)
            if entry is not None:
                record, principal = entry
                if not self._proven(token, record.key_hash) and not self._in_grace(token, record):
                    raise _unauthorized("invalid API key")
                if record.revoked_at is not None:
                    raise _unauthorized("this API key has been revoked")
                if record.expires_at is not None and self._clock.now() >= record.expires_at:
                    raise _unauthorized("this API key has expired")
                if principal.terms_pending is not None:
                    raise terms_not_accepted(principal.terms_pending)
                return principal
        elif self._master_hash is not None and self._proven(token, self._master_hash):
            return MASTER
        raise _unauthorized("invalid API key")

    def _guarded(
        self, token: str | None, scope: Mapping[str, Any], guard: BadKeyGuard
    ) -> Principal:
        guard.check(scope)
        try:
            return self.authenticate(token)
        except GatewayError as exc:
            # A missing key guesses nothing; a proven key refused for unaccepted terms
            # guessed right.
            if token and exc.kind is ErrorKind.CALLER_UNAUTHENTICATED:
                guard.failed(scope)
            raise

    def _proven(self, token: str, key_hash: str) -> bool:
        """``token`` hashes to ``key_hash``; a key proven once is not hashed again (SHA-256
        per request is measurable)."""
        verified = self._verified
        if verified.get(token) == key_hash:
            return True
        if not keys.matches(token, key_hash):
            return False
        if len(verified) >= _VERIFIED_CAP:
            verified.clear()
        verified[token] = key_hash
        return True


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
