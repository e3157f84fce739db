"""A ``multipart/form-data`` body read part by part as it arrives over ASGI (never buffered
whole): the file upload of ``/v1/files`` and of the console. Parsing is python-multipart's;
this module turns its callbacks into parts a handler pulls, and bounds what a caller controls
(body size, part count, field size, header size)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from sluice.errors import BadRequest, ErrorKind, GatewayError

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

MAX_PARTS = 16
"""Parts in one form (the file and a few fields)."""


class ClientLeft(Exception):
    """The client disconnected before the body ended."""


def too_large(limit: int) -> GatewayError:
    return GatewayError(
        ErrorKind.CALLER_PAYLOAD_TOO_LARGE,
        f"file: larger than the limit of {limit} bytes",
        param="file",
    )


def boundary_of(content_type: bytes | None) -> bytes:
    """The boundary of a ``multipart/form-data`` content type; 400 naming ``file`` for
    anything else (the upload must be a form with a file part)."""
    kind, options = parse_options_header(content_type or b"")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise BadRequest(
            "file: the upload must be multipart/form-data with a file part", param="file"
        )
    return boundary


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    filename: str | None
    """Set for a file part (possibly empty)."""


def _malformed(why: str) -> BadRequest:
    return BadRequest(f"file: malformed multipart body ({why})", param="file")


class FormReader:
    """Pull parts with :meth:`next_part`; read the current one with :meth:`data` or
    :meth:`text`. A body larger than ``max_body_bytes`` raises 413 (naming the file cap,
    ``file_limit``), a client that leaves :class:`ClientLeft`, a malformed body 400."""

    def __init__(
        self, receive: Receive, boundary: bytes, *, max_body_bytes: int, file_limit: int
    ) -> None:
        self._receive = receive
        self._limit = max_body_bytes
        self._file_limit = file_limit
        self._size = 0
        self._events: deque[tuple[str, object]] = deque()
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._body_done = False
        self._in_part = False
        self._parts = 0
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    # python-multipart callbacks
    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        self._events.append(("part", self._headers))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if end > start:
            self._events.append(("data", bytes(data[start:end])))

    def _part_end(self) -> None:
        self._events.append(("part_end", None))

    def _end(self) -> None:
        self._events.append(("end", None))

    async def _event(self) -> tuple[str, object]:
        while not self._events:
            if self._body_done:
                raise _malformed("the body ended before the closing boundary")
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientLeft
            chunk: bytes = message.get("body", b"")
            self._size += len(chunk)
            if self._size > self._limit:
                raise too_large(self._file_limit)
            if not message.get("more_body"):
                self._body_done = True
            try:
                self._parser.write(chunk)
            except FormParserError as exc:
                raise _malformed(type(exc).__name__) from None
        return self._events.popleft()

    async def next_part(self) -> Part | None:
        """The next part (the rest of the current one is skipped); ``None`` at the end."""
        while True:
            kind, value = await self._event()
            if kind == "end":
                return None
            if kind == "part":
                self._parts += 1
                if self._parts > MAX_PARTS:
                    raise _malformed(f"more than {MAX_PARTS} parts")
                self._in_part = True
                assert isinstance(value, dict)
                return _part(value)

    async def data(self) -> AsyncIterator[bytes]:
        """The current part's bytes, as they arrive."""
        while self._in_part:
            kind, value = await self._event()
            if kind == "data":
                assert isinstance(value, bytes)
                yield value
            elif kind == "part_end":
                self._in_part = False
            else:
                raise _malformed("a part ended without its boundary")

    async def text(self, *, max_bytes: int, name: str) -> str:
        """The current part as UTF-8 text of at most ``max_bytes`` (400 naming ``name``)."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.data():
            size += len(chunk)
            if size > max_bytes:
                raise BadRequest(f"{name}: longer than {max_bytes} bytes", param=name)
            parts.append(chunk)
        try:
            return b"".join(parts).decode()
        except UnicodeDecodeError:
            raise BadRequest(f"{name}: not UTF-8 text", param=name) from None


def _part(headers: dict[bytes, bytes]) -> Part:
    disposition = headers.get(b"content-disposition")
    kind, options = parse_options_header(disposition)
    name = options.get(b"name")
    if kind != b"form-data" or name is None:
        raise _malformed("a part without a form-data name")
    filename = options.get(b"filename")
    return Part(
        name.decode("utf-8", "replace"),
        filename.decode("utf-8", "replace") if filename is not None else None,
    )
