"""A response sink that also keeps references to what it sends, for body logging."""

from __future__ import annotations

from sluice.api.render import AsgiSink, Send
from sluice.pipeline.sink import Headers
from sluice.usage.bodies import BodyCapture


class CapturingSink(AsgiSink):
    """An :class:`AsgiSink` that appends each body part it sends to ``capture`` (up to the
    capture's cap; nothing is copied or decoded here)."""

    __slots__ = ("capture",)

    def __init__(self, send: Send, capture: BodyCapture) -> None:
        super().__init__(send)
        self.capture = capture

    async def json(self, status: int, body: bytes, headers: Headers) -> None:
        self.capture.add(body)
        await super().json(status, body, headers)

    async def chunk(self, data: bytes) -> None:
        self.capture.add(data)
        await super().chunk(data)

    async def end(self, data: bytes = b"") -> None:
        if data:
            self.capture.add(data)
        await super().end(data)
