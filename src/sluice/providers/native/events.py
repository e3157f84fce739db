"""Server-sent events kept whole: name, data and the raw bytes, for providers that name their
events (``event: message_start``) and for relaying a native stream unchanged."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    name: str | None
    """The ``event:`` field, when the provider sent one."""
    data: bytes
    """The ``data`` lines joined with newlines."""
    raw: bytes
    """The event as received (CRLF normalised), ending with its blank line."""


class EventSplitter:
    """Incrementally splits a byte stream into events. Comment-only events (keep-alives) are
    kept in ``raw`` form too, so a relay can pass them on."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[Event]:
        buf = self._buf + data if self._buf else data
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        blocks = buf.split(b"\n\n")
        self._buf = blocks.pop()
        out = []
        for block in blocks:
            if not block:
                continue
            name = None
            lines = []
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    lines.append(line[5:].removeprefix(b" "))
                elif line.startswith(b"event:"):
                    name = line[6:].strip().decode("utf-8", "replace")
            out.append(Event(name, b"\n".join(lines), block + b"\n\n"))
        return out

    @property
    def pending(self) -> bytes:
        """Bytes of an unfinished event (non-empty at the end means a cut stream)."""
        return self._buf.strip()
