"""The local-directory :class:`~sluice.files.base.BlobStore`: one file per name, written to a
temporary file and renamed into place, so a reader never sees a partial file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from sluice.errors import ErrorKind, GatewayError, dependency_unavailable

READ_CHUNK_BYTES = 256 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_TEMP_PREFIX = ".part-"


def check_name(name: str) -> str:
    """Names are the files service's own ids; anything else is a bug, never a path."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a blob name: {name!r}")
    return name


def too_large(max_bytes: int) -> GatewayError:
    return GatewayError(
        ErrorKind.CALLER_PAYLOAD_TOO_LARGE,
        f"the file is larger than the limit of {max_bytes} bytes",
        param="file",
    )


def missing(name: str) -> GatewayError:
    return GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no stored content for {name!r}")


class LocalBlobStore:
    """Blobs as files in ``root`` (created on first write). Temporary files left by a crash
    are named ``.part-*`` and removed by :meth:`sweep`."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, name: str) -> Path:
        return self._root / check_name(name)

    async def put(self, name: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> int:
        target = self._path(name)
        try:
            await asyncio.to_thread(self._root.mkdir, parents=True, exist_ok=True)
            temp = self._root / f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
            handle = await asyncio.to_thread(temp.open, "xb")
        except OSError as exc:
            raise _unavailable(exc) from exc
        size = 0
        try:
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise too_large(max_bytes)
                    await asyncio.to_thread(handle.write, chunk)
                await asyncio.to_thread(_flush, handle)
            finally:
                await asyncio.to_thread(handle.close)
            await asyncio.to_thread(os.replace, temp, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                await asyncio.shield(asyncio.to_thread(temp.unlink, missing_ok=True))
            if isinstance(exc, OSError):
                raise _unavailable(exc) from exc
            raise
        return size

    async def read(self, name: str) -> AsyncIterator[bytes]:
        path = self._path(name)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise missing(name) from None
        except OSError as exc:
            raise _unavailable(exc) from exc
        try:
            while True:
                try:
                    chunk = await asyncio.to_thread(handle.read, READ_CHUNK_BYTES)
                except OSError as exc:
                    raise _unavailable(exc) from exc
                if not chunk:
                    return
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, name: str) -> None:
        try:
            await asyncio.to_thread(self._path(name).unlink, missing_ok=True)
        except OSError as exc:
            raise _unavailable(exc) from exc

    async def sweep(self, *, before: float) -> int:
        """Remove temporary files a crashed upload left behind, last written before
        ``before`` (epoch seconds: uploads still running elsewhere are younger); how many
        were removed."""
        return await asyncio.to_thread(self._sweep, before)

    def _sweep(self, before: float) -> int:
        removed = 0
        with contextlib.suppress(FileNotFoundError):
            for path in self._root.glob(f"{_TEMP_PREFIX}*"):
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < before:
                        path.unlink()
                        removed += 1
        return removed


def _flush(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _unavailable(exc: OSError) -> GatewayError:
    return dependency_unavailable(f"the file store failed ({type(exc).__name__})")
