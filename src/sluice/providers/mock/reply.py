"""What the mock upstream answers: a reply value, and the signal to drop a stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

HOLD_S = 3600.0
"""How long a stalled stream holds the connection (far past any client deadline)."""


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    stream: AsyncIterator[bytes] | None = None
    """Stream frames; a ``CutStream`` raised from it drops the connection."""
    content_type: str | None = None
    """``application/json`` for bodies and ``text/event-stream`` for streams when unset."""
    abort: bool = False
    """Drop the connection instead of answering."""


class CutStream(Exception):
    """The script asks to drop the connection mid-stream."""


def json_reply(status: int, obj: Any, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, orjson.dumps(obj), headers)
