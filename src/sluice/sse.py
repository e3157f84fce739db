"""Server-sent events on the wire: frame an event, split a byte stream into events.

Shared by the dialects (what the client gets) and the adapters (what an upstream sends).
"""

from __future__ import annotations

from typing import Any

import orjson

DONE = b"[DONE]"


def frame(payload: bytes) -> bytes:
    """One SSE ``data:`` event."""
    return b"data: " + payload + b"\n\n"


def frame_obj(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


class SSESplitter:
    """Incrementally splits a byte stream into the ``data`` payloads of its events.

    Comment lines and ``event:``/``id:`` fields are dropped; multi-line ``data`` is joined
    with newlines, per the SSE spec.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        events = buf.split(b"\n\n")
        self._buf = events.pop()
        out = []
        for event in events:
            if event.startswith(b"data: ") and b"\n" not in event:
                out.append(event[6:])
                continue
            lines = [
                line[5:].removeprefix(b" ")
                for line in event.split(b"\n")
                if line.startswith(b"data:")
            ]
            if lines:
                out.append(b"\n".join(lines))
        return out

    @property
    def pending(self) -> bytes:
        return self._buf
