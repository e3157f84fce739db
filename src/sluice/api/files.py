"""The Files API routes, OpenAI-compatible (with and without ``/v1``):

``POST /v1/files`` (multipart: ``file``, ``purpose``, optional ``expires_after[anchor]`` and
``expires_after[seconds]``), ``GET /v1/files`` (``after``, ``limit``, ``order``,
``purpose``), ``GET|DELETE /v1/files/{id}``, ``GET /v1/files/{id}/content``.

File operations are not model requests: they write no usage row (as ``/v1/models``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, quote

from sluice.api.render import Receive, Scope, Send, answer_json, send_error
from sluice.auth.principal import Principal
from sluice.control.files import FilesService, check_limit, not_found
from sluice.control.upload import read_upload
from sluice.errors import BadRequest, ErrorKind, GatewayError, shutting_down
from sluice.files.base import FileRecord
from sluice.files.multipart import ClientLeft, FormReader, boundary_of, too_large
from sluice.files.owner import owner_of
from sluice.ids import random_hex
from sluice.lifecycle import Lifecycle
from sluice.pipeline.sink import Headers
from sluice.tasks import DisconnectWatch

log = logging.getLogger("sluice.api")

FORM_OVERHEAD_BYTES = 1024 * 1024
"""What an upload's body may carry beyond the file: boundaries, part headers, fields."""
MAX_ID_CHARS = 64

Caller = Callable[[Scope], Awaitable[tuple[Principal, int | None]]]


def file_object(record: FileRecord) -> dict[str, Any]:
    """A file as OpenAI's Files API shows it."""
    return {
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "filename": record.filename,
        "purpose": record.purpose,
        "status": "processed",
        "status_details": None,
    }


class FilesRoutes:
    """Everything under ``/v1/files`` and ``/files``."""

    def __init__(
        self, files: FilesService, caller: Caller, *, lifecycle: Lifecycle | None = None
    ) -> None:
        """``caller``: who is asking (the data plane's key check, IdP tokens included);
        ``lifecycle``: where requests in flight are kept for a drain to wait for (or cut)."""
        self._files = files
        self._caller = caller
        self._life = lifecycle or Lifecycle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = self._life.track()  # a drain lets an upload finish, up to its deadline
        try:
            await self._route(scope, receive, send)
        finally:
            self._life.done(task)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        rest = path.removeprefix("/v1").removeprefix("/files")
        method = scope["method"]
        base: Headers = [(b"x-request-id", ("req_" + random_hex(10)).encode())]
        if not path.startswith(("/v1/files", "/files")) or (rest and not rest.startswith("/")):
            await send_error(send, _no_route(scope, ErrorKind.CALLER_NOT_FOUND), base)
            return
        file_id, _, action = rest.removeprefix("/").partition("/")
        if not rest and method == "POST":
            await self._upload(scope, receive, send, base)
        elif not rest and method == "GET":
            await answer_json(send, base, lambda: self._list(scope))
        elif file_id and not action and method == "GET":
            await answer_json(send, base, lambda: self._retrieve(scope, file_id))
        elif file_id and not action and method == "DELETE":
            await answer_json(send, base, lambda: self._delete(scope, file_id))
        elif file_id and action == "content" and method == "GET":
            await self._content(scope, receive, send, base, file_id)
        elif not rest or (file_id and action in ("", "content")):
            await send_error(send, _no_route(scope, ErrorKind.CALLER_METHOD_NOT_ALLOWED), base)
        else:
            await send_error(send, _no_route(scope, ErrorKind.CALLER_NOT_FOUND), base)

    async def _list(self, scope: Scope) -> dict[str, Any]:
        principal, _ = await self._caller(scope)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise BadRequest("order: must be asc or desc", param="order")
        purpose = query.get("purpose") or None
        if purpose is not None and len(purpose) > 64:
            raise BadRequest("purpose: longer than 64 characters", param="purpose")
        after = query.get("after") or None
        if after is not None and len(after) > MAX_ID_CHARS:
            raise BadRequest("after: not a file id", param="after")
        page = await self._files.page(
            owner_of(principal),
            after=after,
            limit=check_limit(query.get("limit")),
            order="asc" if order == "asc" else "desc",
            purpose=purpose,
        )
        data = [file_object(r) for r in page.data]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": page.has_more,
        }

    async def _retrieve(self, scope: Scope, file_id: str) -> dict[str, Any]:
        principal, _ = await self._caller(scope)
        return file_object(await self._files.retrieve(owner_of(principal), _checked(file_id)))

    async def _delete(self, scope: Scope, file_id: str) -> dict[str, Any]:
        principal, _ = await self._caller(scope)
        record = await self._files.delete(owner_of(principal), _checked(file_id))
        return {"id": record.id, "object": "file", "deleted": True}

    async def _content(
        self, scope: Scope, receive: Receive, send: Send, base: Headers, file_id: str
    ) -> None:
        try:
            principal, _ = await self._caller(scope)
            record, chunks = await self._files.content(owner_of(principal), _checked(file_id))
            first = await anext(chunks, b"")  # a missing blob or a store outage: an answer
        except GatewayError as exc:
            await send_error(send, exc, base)
            return
        headers = [
            *base,
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(record.bytes).encode()),
            (
                b"content-disposition",
                f"attachment; filename*=UTF-8''{quote(record.filename, safe='')}".encode(),
            ),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        state = _Answer()
        watch = DisconnectWatch(receive, state)  # a client that leaves stops the reading
        try:
            await send({"type": "http.response.body", "body": first, "more_body": True})
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            state.ended = True
            await send({"type": "http.response.body", "body": b""})
        except GatewayError as exc:  # the store failed mid-way: the connection is cut
            log.warning("file %s: content ended early (%s)", record.id, exc.message)
        except asyncio.CancelledError:  # the client left, or the drain's deadline passed
            _uncancel()  # either way the answer ends here, unfinished
        finally:
            watch.stop()

    async def _upload(self, scope: Scope, receive: Receive, send: Send, base: Headers) -> None:
        limit = self._files.max_file_bytes
        try:
            principal, length = await self._caller(scope)
            if length is not None and length > limit + FORM_OVERHEAD_BYTES:
                raise too_large(limit)
            reader = FormReader(
                receive,
                boundary_of(_header(scope, b"content-type")),
                max_body_bytes=limit + FORM_OVERHEAD_BYTES,
                file_limit=limit,
            )
            record = await read_upload(self._files, owner_of(principal), reader)
        except GatewayError as exc:
            await send_error(send, exc, base)
            return
        except ClientLeft:
            return
        except asyncio.CancelledError:  # the drain's deadline passed mid-upload
            _uncancel()
            await send_error(send, shutting_down("the gateway shut down during the upload"), base)
            return
        await answer_json(send, base, _returning(file_object(record)))


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


class _Answer:
    """What the disconnect watch reads of a download: whether it ended, or the client left."""

    __slots__ = ("ended", "gone")

    def __init__(self) -> None:
        self.ended = False
        self.gone = False


def _returning(body: object) -> Callable[[], Awaitable[object]]:
    async def produce() -> object:
        return body

    return produce


def _checked(file_id: str) -> str:
    if not file_id or len(file_id) > MAX_ID_CHARS:
        raise not_found(file_id[:MAX_ID_CHARS])
    return file_id


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _no_route(scope: Scope, kind: ErrorKind) -> GatewayError:
    return GatewayError(kind, f"no route for {scope['method']} {scope['path']}")
