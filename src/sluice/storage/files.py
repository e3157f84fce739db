"""What the database keeps of files (their bytes live in a blob store, under the file id)."""

from __future__ import annotations

from typing import Protocol

from sluice.files.base import FileRecord
from sluice.files.owner import FileOwner


class FileRepository(Protocol):
    """File metadata. ``owner`` scopes every read: a file of another owner is never returned
    (it does not exist for the caller). Expired files (``expires_at <= now``) are never
    returned by the owner's reads, only by :meth:`expired`."""

    async def add(self, record: FileRecord, *, quota_bytes: int | None, now: float) -> bool:
        """Insert ``record``; with ``quota_bytes``, only when the owner's unexpired files and
        this one fit in it, checked and inserted atomically (concurrent uploads of one owner,
        in any process, cannot both pass). ``False``: refused, nothing stored."""
        ...

    async def get(self, file_id: str, owner: FileOwner, *, now: float) -> FileRecord | None: ...

    async def page(
        self,
        owner: FileOwner,
        *,
        now: float,
        after: FileRecord | None,
        limit: int,
        descending: bool,
        purpose: str | None,
    ) -> list[FileRecord]:
        """Up to ``limit`` files by (``created_at``, ``id``), newest first when
        ``descending``; those after ``after`` in that order when given."""
        ...

    async def used_bytes(self, owner: FileOwner, *, now: float) -> int:
        """Bytes of the owner's unexpired files."""
        ...

    async def delete(self, file_id: str) -> bool:
        """``False`` when no such file is stored."""
        ...

    async def expired(self, *, now: float, limit: int) -> list[FileRecord]:
        """Up to ``limit`` files whose ``expires_at`` is past, oldest expiry first."""
        ...
