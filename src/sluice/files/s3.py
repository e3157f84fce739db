"""The S3-compatible :class:`~sluice.files.base.BlobStore`, through ``obstore`` (the ``s3``
extra: ``pip install 'sluice[s3]'``). Uploads stream as multipart uploads; nothing is
buffered whole. Every request has a deadline and a bounded number of retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sluice.config.files import S3Settings
from sluice.errors import GatewayError, dependency_unavailable
from sluice.files.local import check_name, missing, too_large

if TYPE_CHECKING:
    from obstore.store import S3Store

PART_BYTES = 8 * 1024 * 1024
"""Size of one multipart upload part (S3 wants at least 5 MiB but for the last)."""
READ_CHUNK_BYTES = 256 * 1024


class S3BlobStore:
    """Blobs as objects under ``settings.prefix`` in one bucket."""

    def __init__(self, store: S3Store, *, prefix: str) -> None:
        self._store = store
        self._prefix = prefix.strip("/")

    @classmethod
    def build(cls, settings: S3Settings) -> S3BlobStore:
        """The store for ``settings``; credentials are resolved here, once."""
        from obstore.store import S3Store

        options: dict[str, Any] = {}
        if settings.endpoint_url:
            options["endpoint"] = settings.endpoint_url
        for name, ref in (
            ("access_key_id", settings.access_key_id),
            ("secret_access_key", settings.secret_access_key),
        ):
            value = ref.resolve() if ref is not None else None
            if value:
                options[name] = value
        store = S3Store(
            settings.bucket,
            region=settings.region,
            client_options={
                "allow_http": bool(settings.endpoint_url)
                and str(settings.endpoint_url).startswith("http://"),
                "timeout": timedelta(seconds=settings.timeout_s),
                "connect_timeout": timedelta(seconds=settings.connect_timeout_s),
            },
            retry_config={
                "max_retries": settings.retries,
                "retry_timeout": timedelta(seconds=settings.timeout_s),
                "backoff": {
                    "init_backoff": timedelta(milliseconds=100),
                    "max_backoff": timedelta(seconds=5),
                    "base": 2,
                },
            },
            **options,
        )
        return cls(store, prefix=settings.prefix)

    def _key(self, name: str) -> str:
        check_name(name)
        return f"{self._prefix}/{name}" if self._prefix else name

    async def put(self, name: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> int:
        import obstore

        key = self._key(name)
        counted = _Counted(chunks, max_bytes)
        try:
            await obstore.put_async(self._store, key, counted, chunk_size=PART_BYTES)
        except BaseException as exc:
            await self._forget(key)
            if exc is counted.error or isinstance(exc, GatewayError):
                raise  # the source's own failure (the client went away, the cap)
            if isinstance(exc, Exception):
                raise _unavailable(exc) from exc
            raise
        return counted.size

    async def _forget(self, key: str) -> None:
        """An upload that failed leaves nothing readable behind (an aborted multipart upload
        is invisible); a failure to clean up is left to the caller's error."""
        import obstore

        try:
            await obstore.delete_async(self._store, key)
        except Exception:  # the put's own error is the one to report
            return

    async def read(self, name: str) -> AsyncIterator[bytes]:
        import obstore

        key = self._key(name)
        try:
            result = await obstore.get_async(self._store, key)
        except FileNotFoundError:
            raise missing(name) from None
        except Exception as exc:
            raise _unavailable(exc) from exc
        stream = result.stream(min_chunk_size=READ_CHUNK_BYTES)
        while True:
            try:
                chunk = await anext(stream)
            except StopAsyncIteration:
                return
            except Exception as exc:
                raise _unavailable(exc) from exc
            yield bytes(chunk)

    async def delete(self, name: str) -> None:
        import obstore

        try:
            await obstore.delete_async(self._store, self._key(name))
        except FileNotFoundError:
            return
        except Exception as exc:
            raise _unavailable(exc) from exc


class _Counted:
    """The upload's chunks, refused past ``limit`` bytes (the store aborts the upload)."""

    def __init__(self, chunks: AsyncIterator[bytes], limit: int) -> None:
        self._chunks = chunks
        self._limit = limit
        self.size = 0
        self.error: BaseException | None = None

    def __aiter__(self) -> _Counted:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            raise
        except BaseException as exc:
            self.error = exc
            raise
        self.size += len(chunk)
        if self.size > self._limit:
            raise too_large(self._limit)
        return chunk


def _unavailable(exc: Exception) -> GatewayError:
    return dependency_unavailable(f"the object store failed ({type(exc).__name__})")
