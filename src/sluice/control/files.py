"""The files service: ``/v1/files`` and the console's Files page, and what the batch worker
reads and writes (:class:`~sluice.files.base.FileAccess`).

Bytes go to the blob store under the file's id (never a name the caller chose); metadata
goes to the database. A file exists for its owner (:mod:`sluice.files.owner`) only: anyone
else is told it does not exist (404). Writes order the two stores so a failure never shows
a file without its bytes: bytes first on upload, bytes first on delete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from sluice.auth.principal import Principal
from sluice.clock import Clock
from sluice.config.files import FilesConfig
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.files.base import BlobStore, FileRecord
from sluice.files.owner import FileOwner, owner_of
from sluice.ids import random_hex
from sluice.outage import OutageLog
from sluice.storage.availability import database_unavailable
from sluice.storage.files import FileRepository
from sluice.tenancy import rules
from sluice.tenancy.model import Team

log = logging.getLogger("sluice.files")

UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
"""What a caller may upload, as OpenAI names them."""
OUTPUT_PURPOSES = ("assistants_output", "batch_output", "fine-tune-results")
"""What the gateway itself writes (batch output and error files)."""
MIN_EXPIRY_S = 3600
MAX_EXPIRY_S = 30 * 86_400
"""``expires_after[seconds]`` bounds, as OpenAI's (one hour to thirty days)."""
MAX_FILENAME_CHARS = 512
MAX_LIST_LIMIT = 10_000
"""Largest (and default) ``limit`` of a list, as OpenAI's."""
PURGE_CHUNK = 200
LEFTOVER_AGE_S = 86_400
"""A blob store's temporary file this old is a crashed upload's (swept by the cleanup)."""

Sweep = Callable[..., Awaitable[int]]
"""A blob store's ``sweep(before=epoch_s)``: remove what crashed uploads left behind."""


def new_file_id(now: float) -> str:
    """``file-``, the time in milliseconds (12 hex digits) and 48 random bits: ids sort by
    creation, so files created within one second (``created_at`` is in seconds) still list
    in the order they were made."""
    return f"file-{int(now * 1000):012x}{random_hex(6)}"


def not_found(file_id: str) -> GatewayError:
    return GatewayError(ErrorKind.CALLER_NOT_FOUND, f"No such File object: {file_id}", param="id")


def check_purpose(purpose: str | None) -> str:
    if not purpose:
        raise BadRequest("purpose: a file needs a purpose", param="purpose")
    if purpose not in UPLOAD_PURPOSES:
        raise BadRequest(
            f"purpose: {purpose[:64]!r} is not one of {', '.join(UPLOAD_PURPOSES)}",
            param="purpose",
        )
    return purpose


def check_filename(filename: str | None) -> str:
    name = (filename or "").strip()
    if not name:
        raise BadRequest("file: the file part needs a filename", param="file")
    if len(name) > MAX_FILENAME_CHARS or any(ord(c) < 32 for c in name):
        raise BadRequest(
            f"file: the filename must be at most {MAX_FILENAME_CHARS} printable characters",
            param="file",
        )
    return name


def check_expiry(anchor: str | None, seconds: str | int | None) -> int | None:
    """``expires_after`` as OpenAI's: anchor ``created_at`` (the only one, so it may be
    left out) and a number of seconds; ``None`` when neither is given."""
    if anchor is None and seconds is None:
        return None
    if anchor is not None and anchor != "created_at":
        raise BadRequest("expires_after[anchor]: must be created_at", param="expires_after[anchor]")
    try:
        value = int(seconds) if seconds is not None else None
    except ValueError:
        value = None
    if value is None or not MIN_EXPIRY_S <= value <= MAX_EXPIRY_S:
        raise BadRequest(
            f"expires_after[seconds]: must be a whole number from {MIN_EXPIRY_S} to {MAX_EXPIRY_S}",
            param="expires_after[seconds]",
        )
    return value


def check_limit(raw: str | None) -> int:
    if raw is None:
        return MAX_LIST_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST_LIMIT:
        raise BadRequest(f"limit: must be a whole number from 1 to {MAX_LIST_LIMIT}", param="limit")
    return int(raw)


@dataclass(frozen=True, slots=True)
class Staged:
    """Bytes in the blob store, not yet a file (:meth:`FilesService.commit` or
    :meth:`FilesService.discard`)."""

    id: str
    size: int
    owner: FileOwner


@dataclass(frozen=True, slots=True)
class FilePage:
    data: list[FileRecord]
    has_more: bool


class FilesService:
    """Built once by the lifespan; shared by the data plane, the console and the batch
    worker. :meth:`run` (the cleanup of expired files) runs in the lifespan's task group."""

    def __init__(
        self,
        repo: FileRepository,
        blobs: BlobStore,
        *,
        config: FilesConfig,
        clock: Clock,
        sweep: Sweep | None = None,
    ) -> None:
        """``sweep``: the blob store's cleanup of crashed uploads, when it has one."""
        self._repo = repo
        self._blobs = blobs
        self._config = config
        self._clock = clock
        self._sweep = sweep

    @property
    def max_file_bytes(self) -> int:
        return self._config.max_file_bytes

    # -- upload -------------------------------------------------------------------------

    def owner(self, principal: Principal, *, team: Team | None = None) -> FileOwner:
        """Whose files ``principal`` reads and writes: its own (:func:`owner_of`), or with
        ``team`` the team's service accounts' files, for an admin of that team (anyone
        else is told the team has no files: 404)."""
        if team is None:
            return owner_of(principal)
        if not rules.is_team_admin(principal, team):
            raise GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no team {team.id!r}")
        return FileOwner(None, team.id, principal.key_id)

    async def stage(self, owner: FileOwner, chunks: AsyncIterator[bytes]) -> Staged:
        """Stream an upload into the blob store, refused past the file size cap or the
        owner's remaining quota (413 naming ``file``; nothing is kept)."""
        cap = self._config.max_file_bytes
        room: int | None = None
        quota = self._config.quota_bytes
        if quota is not None:
            room = quota - await self._repo.used_bytes(owner, now=self._clock.now())
            if room <= 0:
                raise self._over_quota(quota)
        file_id = new_file_id(self._clock.now())
        try:
            size = await self._blobs.put(
                file_id, chunks, max_bytes=cap if room is None else min(cap, room)
            )
        except GatewayError as exc:
            if exc.kind is ErrorKind.CALLER_PAYLOAD_TOO_LARGE and room is not None and room < cap:
                raise self._over_quota(quota or 0) from None
            raise
        return Staged(file_id, size, owner)

    async def commit(
        self, staged: Staged, *, purpose: str, filename: str, expires_after_s: int | None
    ) -> FileRecord:
        """Make staged bytes a file; on any failure the bytes are deleted."""
        now = self._clock.now()
        expiry = expires_after_s if expires_after_s is not None else self._config.default_expiry_s
        record = FileRecord(
            id=staged.id,
            purpose=purpose,
            filename=filename,
            bytes=staged.size,
            created_at=int(now),
            expires_at=int(now) + expiry if expiry is not None else None,
            user_id=staged.owner.user_id,
            team_id=staged.owner.team_id,
            key_id=staged.owner.key_id,
        )
        try:
            added = await self._repo.add(record, quota_bytes=self._config.quota_bytes, now=now)
        except BaseException:
            await self.discard(staged)
            raise
        if not added:
            await self.discard(staged)
            raise self._over_quota(self._config.quota_bytes or 0)
        return record

    async def discard(self, staged: Staged) -> None:
        """Delete staged bytes (an upload that failed after they were stored)."""
        try:
            await asyncio.shield(self._blobs.delete(staged.id))
        except Exception:
            log.warning("could not delete the bytes of a failed upload %s", staged.id)

    def _over_quota(self, quota: int) -> GatewayError:
        return GatewayError(
            ErrorKind.CALLER_PAYLOAD_TOO_LARGE,
            f"file: storing this file would exceed the owner's file storage quota of "
            f"{quota} bytes; delete files to make room",
            param="file",
            code="quota_exceeded",
        )

    # -- reads and delete -----------------------------------------------------------------

    async def retrieve(self, owner: FileOwner, file_id: str) -> FileRecord:
        record = await self._repo.get(file_id, owner, now=self._clock.now())
        if record is None:
            raise not_found(file_id)
        return record

    async def page(
        self,
        owner: FileOwner,
        *,
        after: str | None = None,
        limit: int = MAX_LIST_LIMIT,
        order: Literal["asc", "desc"] = "desc",
        purpose: str | None = None,
    ) -> FilePage:
        now = self._clock.now()
        cursor = None
        if after is not None:
            cursor = await self._repo.get(after, owner, now=now)
            if cursor is None:
                raise BadRequest(f"after: no file {after[:64]!r} to list after", param="after")
        rows = await self._repo.page(
            owner,
            now=now,
            after=cursor,
            limit=limit + 1,
            descending=order == "desc",
            purpose=purpose,
        )
        return FilePage(rows[:limit], len(rows) > limit)

    async def content(
        self, owner: FileOwner, file_id: str
    ) -> tuple[FileRecord, AsyncIterator[bytes]]:
        """The file and its bytes (read lazily, in chunks)."""
        record = await self.retrieve(owner, file_id)
        return record, self._blobs.read(record.id)

    async def delete(self, owner: FileOwner, file_id: str) -> FileRecord:
        record = await self.retrieve(owner, file_id)
        await self._blobs.delete(record.id)
        await self._repo.delete(record.id)
        return record

    # -- FileAccess (the batch worker) ------------------------------------------------------

    async def read(self, principal: Principal, file_id: str, *, max_bytes: int) -> bytes:
        return (await self._read(principal, file_id, max_bytes=max_bytes, param="input_file_id"))[1]

    # -- FileSource (documents in chat: docs/documents.md) ---------------------------------

    async def open(
        self, principal: Principal, file_id: str, *, max_bytes: int
    ) -> tuple[str, bytes]:
        """The file's name and content (one lookup, then its bytes)."""
        record, data = await self._read(principal, file_id, max_bytes=max_bytes, param="file_id")
        return record.filename, data

    async def _read(
        self, principal: Principal, file_id: str, *, max_bytes: int, param: str
    ) -> tuple[FileRecord, bytes]:
        record = await self.retrieve(owner_of(principal), file_id)
        if record.bytes > max_bytes:
            raise GatewayError(
                ErrorKind.CALLER_PAYLOAD_TOO_LARGE,
                f"file {file_id} has {record.bytes} bytes, more than the limit of {max_bytes}",
                param=param,
            )
        parts: list[bytes] = []
        size = 0
        async for chunk in self._blobs.read(record.id):
            size += len(chunk)
            if size > max_bytes:  # the record and the bytes disagree: still bounded
                raise GatewayError(
                    ErrorKind.CALLER_PAYLOAD_TOO_LARGE,
                    f"file {file_id} is larger than the limit of {max_bytes} bytes",
                    param=param,
                )
            parts.append(chunk)
        return record, b"".join(parts)

    async def create(
        self, principal: Principal, *, purpose: str, filename: str, data: bytes
    ) -> FileRecord:
        """A file the gateway writes for ``principal`` (batch output and errors): neither the
        size cap nor the quota refuses it (the work that made it is done), but it counts
        against the quota of later uploads."""
        if purpose not in UPLOAD_PURPOSES + OUTPUT_PURPOSES:
            raise ValueError(f"unknown file purpose {purpose!r}")
        owner = owner_of(principal)
        file_id = new_file_id(self._clock.now())
        size = await self._blobs.put(file_id, _once(data), max_bytes=len(data))
        staged = Staged(file_id, size, owner)
        now = self._clock.now()
        expiry = self._config.default_expiry_s
        record = FileRecord(
            id=file_id,
            purpose=purpose,
            filename=check_filename(filename),
            bytes=size,
            created_at=int(now),
            expires_at=int(now) + expiry if expiry is not None else None,
            user_id=owner.user_id,
            team_id=owner.team_id,
            key_id=owner.key_id,
        )
        try:
            await self._repo.add(record, quota_bytes=None, now=now)
        except BaseException:
            await self.discard(staged)
            raise
        return record

    # -- expiry -------------------------------------------------------------------------------

    async def purge_expired(self) -> int:
        """Delete every expired file (bytes, then row); how many were deleted. A file whose
        bytes cannot be deleted now stays listed for the next pass."""
        deleted = 0
        while True:
            batch = await self._repo.expired(now=self._clock.now(), limit=PURGE_CHUNK)
            for record in batch:
                await self._blobs.delete(record.id)
                if await self._repo.delete(record.id):
                    deleted += 1
            if len(batch) < PURGE_CHUNK:
                return deleted
            await asyncio.sleep(0)  # let requests run between chunks

    async def run(self) -> None:
        """Purge expired files every ``cleanup_interval_s`` (first pass right away), and
        temporary files left by crashed uploads; cancelled by the lifespan."""
        outage = OutageLog(
            log,
            "expired files cleanup",
            meanwhile="retrying every interval",
            dependency="the database or the file store",
            is_outage=_is_outage,
            clock=self._clock,
        )
        while True:
            try:
                deleted = await self.purge_expired()
                if self._sweep is not None:
                    await self._sweep(before=self._clock.now() - LEFTOVER_AGE_S)
            except Exception as exc:
                outage.failed(exc)
            else:
                outage.succeeded()
                if deleted:
                    log.info("deleted %d expired files", deleted)
            # Real time between passes (what expired is decided by the injected clock).
            await asyncio.sleep(self._config.cleanup_interval_s)


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, GatewayError):
        return exc.kind is ErrorKind.GATEWAY_DEPENDENCY_UNAVAILABLE
    return database_unavailable(exc)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
