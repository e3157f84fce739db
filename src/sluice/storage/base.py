"""Storage protocols. No SQLAlchemy type crosses them.

Every method is its own transaction unless stated, or unless called on the repositories of
a unit of work (:meth:`Storage.unit`), where all calls share one; times are epoch seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sluice.auth.keys import KeyRecord
from sluice.scim.store import ScimRepository
from sluice.storage.catalog import CatalogRepository
from sluice.storage.console import ConsoleRepository
from sluice.storage.files import FileRepository
from sluice.storage.mcp_servers import McpServerRepository
from sluice.tenancy.model import (
    AuditEntry,
    AuditFilter,
    Directory,
    Membership,
    Org,
    OrgMembership,
    ServiceAccount,
    Team,
    User,
)
from sluice.usage.dead_letters import DeadLetterRepository
from sluice.usage.event import UsageEvent

MASTER_KEY_HASH = "master_key_hash"
"""Meta entry holding the SHA-256 of the generated admin key."""


class KeyRepository(Protocol):
    async def create(self, record: KeyRecord) -> None:
        """Insert a key and bump the key-change counter."""
        ...

    async def update(self, record: KeyRecord) -> None:
        """Replace a key's fields (not its last use) and bump the key-change counter."""
        ...

    async def get(self, key_id: str) -> KeyRecord | None: ...

    async def list(self) -> list[KeyRecord]:
        """Every key, revoked and expired ones included, oldest first."""
        ...

    async def revoke(self, key_id: str, *, at: float) -> KeyRecord | None:
        """Mark a key revoked (idempotent) and bump the counter; ``None`` if unknown."""
        ...

    async def touch(self, last_used: Mapping[str, float]) -> None:
        """Record last-use times (key id → time); never moves a time backwards."""
        ...

    async def version(self) -> int:
        """The key-change counter: grows with every create and revoke."""
        ...


class UsageRepository(Protocol):
    async def insert_many(self, events: Sequence[UsageEvent]) -> None:
        """Insert in one transaction; a row whose request id exists is skipped. Raises
        :class:`sluice.usage.dead_letters.RowRejected` when the database refuses the rows
        for what they hold; anything else it raises is an outage."""
        ...

    async def count(self) -> int: ...

    async def recent(self, *, limit: int = 100) -> list[UsageEvent]:
        """Newest first."""
        ...


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A Responses API answer kept for ``GET`` and ``previous_response_id``."""

    id: str
    key_id: str
    """Only this key can read or delete it."""
    created_at: float
    model: str
    conversation: list[dict[str, Any]]
    """The whole exchange so far as chat messages, this answer included."""
    body: dict[str, Any]
    """The response object as the client received it."""


class ResponseRepository(Protocol):
    async def save(self, record: StoredResponse) -> None: ...

    async def get(self, response_id: str, *, key_id: str) -> StoredResponse | None:
        """``None`` when it does not exist or belongs to another key."""
        ...

    async def delete(self, response_id: str, *, key_id: str) -> bool: ...


class TenancyRepository(Protocol):
    """Organisations, teams, users, memberships, service accounts and the audit log.
    Every write bumps the change counter that processes poll (``KeyRepository.version``)."""

    async def create_org(self, org: Org, default_team: Team) -> None:
        """The organisation and its default team, in one transaction."""
        ...

    async def update_org(self, org: Org) -> None: ...
    async def get_org(self, org_id: str) -> Org | None: ...
    async def create_team(self, team: Team) -> None: ...
    async def update_team(self, team: Team) -> None: ...
    async def get_team(self, team_id: str) -> Team | None: ...
    async def create_user(self, user: User, membership: Membership | None = None) -> None:
        """The user and (when given) their first team membership, in one transaction."""
        ...

    async def update_user(self, user: User) -> None: ...
    async def get_user(self, user_id: str) -> User | None: ...
    async def user_by_email(self, email: str) -> User | None: ...
    async def set_membership(self, m: Membership) -> None: ...
    async def remove_membership(self, user_id: str, team_id: str) -> bool: ...
    async def set_org_role(self, m: OrgMembership) -> None: ...
    async def create_service_account(self, sa: ServiceAccount) -> None: ...
    async def delete_service_account(self, sa_id: str) -> None: ...
    async def directory(self) -> Directory: ...
    async def audit(self, entry: AuditEntry) -> None: ...
    async def audit_entries(
        self,
        *,
        org_id: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
        where: AuditFilter | None = None,
    ) -> list[AuditEntry]:
        """Newest first; ``before_id`` pages back; ``where`` narrows further."""
        ...


@dataclass(frozen=True, slots=True)
class StoredCredential:
    provider: str
    sealed: bytes
    """AES-GCM nonce and ciphertext; never the plaintext."""
    preview: str
    updated_at: float


class CredentialRepository(Protocol):
    async def put(self, record: StoredCredential) -> None: ...

    async def delete(self, provider: str) -> bool: ...

    async def all(self) -> list[StoredCredential]: ...


class MetaRepository(Protocol):
    async def get(self, name: str) -> str | None: ...

    async def set_if_absent(self, name: str, value: str) -> str:
        """Store ``value`` unless ``name`` exists; return what is stored."""
        ...

    async def put(self, name: str, value: str, *, bump: str | None = None) -> None:
        """Store ``value``; in the same transaction bump the counter named ``bump``."""
        ...

    async def increment(self, name: str) -> int:
        """Add one to the counter ``name`` (created at 1) and return the new value, in one
        statement: concurrent increments each get their own value, none is lost."""
        ...


# A person's identity at an identity provider is the pair (issuer, subject), never the e-mail
# alone: addresses change hands and differ in verification between IdPs.


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
    grants: Grants | None = None
    """What the groups granted at the last sign-in (``None``: nothing recorded yet)."""


@dataclass(frozen=True, slots=True)
class Grants:
    """Roles and memberships an identity provider's groups gave a person: the next sign-in
    takes back exactly these when the groups no longer give them."""

    admin: bool = False
    org_admin: tuple[str, ...] = ()
    """Organisation ids."""
    teams: tuple[str, ...] = ()
    """Team ids."""

    def to_json(self) -> dict[str, object]:
        return {"admin": self.admin, "org_admin": list(self.org_admin), "teams": list(self.teams)}

    @classmethod
    def from_json(cls, value: object) -> Grants | None:
        if not isinstance(value, dict):
            return None
        return cls(
            value.get("admin") is True,
            tuple(str(o) for o in value.get("org_admin") or ()),
            tuple(str(t) for t in value.get("teams") or ()),
        )


class IdentityRepository(Protocol):
    async def get(self, issuer: str, subject: str) -> IdentityRecord | None: ...

    async def for_user(self, user_id: str) -> list[IdentityRecord]:
        """Every identity linked to a user, oldest first."""
        ...

    async def all(self) -> list[IdentityRecord]:
        """Every identity, oldest first (the admin user list)."""
        ...

    async def create(self, record: IdentityRecord) -> bool:
        """Link an identity to a user; ``False`` when (issuer, subject) is linked already
        (the row is left as it was)."""
        ...

    async def signed_in(
        self,
        issuer: str,
        subject: str,
        *,
        at: float,
        email: str | None,
        groups: tuple[str, ...],
        grants: Grants | None = None,
    ) -> None:
        """Record a sign-in: its time, the claims it carried and (when given) what the
        groups granted."""
        ...


@dataclass(frozen=True, slots=True)
class TermsAcceptance:
    """A person accepted a version of the terms of service (``auth.terms``)."""

    user_id: str
    version: str
    accepted_at: float


class TermsRepository(Protocol):
    async def accept(self, user_id: str, version: str, *, at: float) -> bool:
        """Record the acceptance and bump the key-change counter (every process reloads its
        keys, whose owners' acceptance they carry); ``False`` when this user accepted this
        version already (the first time is kept and nothing is bumped)."""
        ...

    async def accepted_by(self, version: str) -> frozenset[str]:
        """The ids of the users who accepted ``version``."""
        ...

    async def list(
        self, *, version: str | None = None, user_id: str | None = None
    ) -> list[TermsAcceptance]:
        """Acceptances, newest first, of one version and/or one user when given."""
        ...


# The semantic response cache's entries (``sluice.cache.semantic``). They are grouped in
# partitions: one per (tenant scope, public model, endpoint, parameter digest, embedding
# model). A lookup reads one partition only, so an entry of another tenant never matches,
# however near its prompt is.


@dataclass(frozen=True, slots=True)
class SemanticEntry:
    id: str
    partition: str
    """A digest of the fields below that a lookup must match exactly."""
    scope: str
    model: str
    endpoint: str
    params: str
    embedder: str
    """The embedding model that computed ``vector``."""
    prompt: str
    vector: bytes
    """The prompt's embedding: little-endian float32, unit length."""
    value: bytes
    """The stored answer (opaque)."""
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class EntryVector:
    """An entry as the in-memory index keeps it (no prompt, no answer)."""

    id: str
    vector: bytes
    created_at: float
    expires_at: float


class SemanticRepository(Protocol):
    """Semantic cache entries; every call is its own transaction."""

    async def add(self, entry: SemanticEntry) -> None: ...

    async def vectors(
        self, partition: str, *, now: float, since: float | None = None, limit: int
    ) -> list[EntryVector]:
        """The live entries (``expires_at > now``) of ``partition``, newest first, at most
        ``limit``; with ``since``, only those created at or after it."""
        ...

    async def value(self, entry_id: str, *, now: float) -> bytes | None:
        """The answer of a live entry; ``None`` when it was dropped or has expired."""
        ...

    async def count(self, partition: str) -> int:
        """Entries stored in ``partition``, expired ones included."""
        ...

    async def delete_ids(self, ids: list[str]) -> int:
        """Remove these entries; how many were removed."""
        ...

    async def oldest(self, partition: str, *, keep: int) -> list[str]:
        """The ids of ``partition``'s entries beyond its ``keep`` newest."""
        ...

    async def drop(self, *, model: str | None, scope: str | None, older_than: float | None) -> int:
        """Remove the entries of ``model`` and ``scope`` created before ``older_than``
        (each ``None``: any); how many."""
        ...

    async def sweep(self, *, now: float, keep: int) -> int:
        """Remove the expired entries, then the oldest beyond ``keep`` in all; how many."""
        ...


class Unit(Protocol):
    """The repositories of one unit of work. Everything written through them commits
    together when the ``Storage.unit()`` block ends, or nothing does when it raises: an admin
    change and its audit entry, or the steps of one operation, are never half applied."""

    keys: KeyRepository
    meta: MetaRepository
    tenancy: TenancyRepository
    credentials: CredentialRepository
    console: ConsoleRepository
    dead_letters: DeadLetterRepository
    scim: ScimRepository
    terms: TermsRepository
    identities: IdentityRepository
    mcp_servers: McpServerRepository
    catalog: CatalogRepository


class Storage(Protocol):
    keys: KeyRepository
    usage: UsageRepository
    dead_letters: DeadLetterRepository
    meta: MetaRepository
    responses: ResponseRepository
    tenancy: TenancyRepository
    credentials: CredentialRepository
    identities: IdentityRepository
    """(issuer, subject) of people who signed in through an identity provider."""
    scim: ScimRepository
    """The users and teams SCIM manages (``auth.scim``)."""
    terms: TermsRepository
    """Who accepted which version of the terms of service."""
    mcp_servers: McpServerRepository
    """The MCP servers admins added through the admin API."""
    catalog: CatalogRepository
    """The providers, models and price overrides admins added through the admin API."""
    files: FileRepository
    """Metadata of the files of ``/v1/files`` (their bytes are in a blob store)."""
    semantic: SemanticRepository
    """The semantic response cache's entries."""

    def unit(self) -> AbstractAsyncContextManager[Unit]:
        """A unit of work: ``async with storage.unit() as u:`` writes through ``u.*`` in one
        transaction. Announce a change (key cache, other replicas) only after the block."""
        ...

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        ...

    async def close(self) -> None: ...
