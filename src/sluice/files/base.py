"""The files seams: where file bytes live (:class:`BlobStore`: a local directory, or an
S3-compatible object store for replicas), and what the batch worker needs of the files service
(:class:`FileAccess`).

File metadata (owner, purpose, size, expiry) lives in the database; a blob store holds only
bytes under an opaque name and knows nothing of tenants.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sluice.auth.principal import Principal


class BlobStore(Protocol):
    """Bytes under names. Failures raise :class:`sluice.errors.GatewayError`
    (``gateway_dependency_unavailable``); a missing name raises it with ``caller_not_found``."""

    async def put(self, name: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> int:
        """Write the chunks under ``name`` (replacing nothing: names are fresh); returns the
        size. More than ``max_bytes`` raises ``caller_payload_too_large`` and leaves nothing
        behind."""
        ...

    def read(self, name: str) -> AsyncIterator[bytes]:
        """The bytes under ``name``, in chunks."""
        ...

    async def delete(self, name: str) -> None:
        """Remove ``name``; a missing name is not an error."""
        ...


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A file as the OpenAI Files API shows it, plus its owner."""

    id: str
    """``file-`` followed by a random token."""
    purpose: str
    filename: str
    bytes: int
    created_at: int
    """Epoch seconds."""
    expires_at: int | None
    user_id: str | None
    """The owning user (a user's keys share their files)."""
    team_id: str | None
    """The owning team, for a service account's keys (they share their team's files)."""
    key_id: str
    """The key that uploaded it."""


class FileAccess(Protocol):
    """What the batch worker uses of the files service; ownership as the Files API checks it
    (another tenant's file raises ``caller_not_found``, a 404)."""

    async def read(self, principal: Principal, file_id: str, *, max_bytes: int) -> bytes:
        """The whole content of a file ``principal`` may see; larger than ``max_bytes``
        raises ``caller_payload_too_large``."""
        ...

    async def create(
        self, principal: Principal, *, purpose: str, filename: str, data: bytes
    ) -> FileRecord:
        """Store a file owned as if ``principal`` had uploaded it (batch output and errors)."""
        ...
