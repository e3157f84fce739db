"""The sinks of the MCP tool loop (:mod:`sluice.pipeline.mcp_loop`): a round's answer kept
for the loop, and the Responses event stream the client reads."""

from __future__ import annotations

from typing import Any

import orjson

from sluice.errors import GatewayError
from sluice.pipeline.sink import Headers, ResponseSink


class RoundSink:
    """Keeps one model round's answer (the loop reads it); the client's connection state
    (``gone``) is the real sink's."""

    __slots__ = ("_outer", "body", "ended", "failure", "headers", "started")

    def __init__(self, outer: ResponseSink) -> None:
        self._outer = outer
        self.started = False
        self.ended = False
        self.body = b""
        self.headers: Headers = []
        self.failure: tuple[GatewayError, bytes, Headers] | None = None

    @property
    def gone(self) -> bool:
        return self._outer.gone

    @gone.setter
    def gone(self, value: bool) -> None:
        self._outer.gone = value

    async def json(self, status: int, body: bytes, headers: Headers) -> None:
        self.started = self.ended = True
        self.body, self.headers = body, headers

    async def error(self, exc: GatewayError, body: bytes, headers: Headers) -> None:
        self.started = self.ended = True
        self.failure = (exc, body, headers)

    async def start_stream(self, headers: Headers) -> None:
        self.started = True  # rounds are not streamed; kept for the protocol's sake
        self.headers = headers

    async def chunk(self, data: bytes) -> None:
        self.body += data

    async def end(self, data: bytes = b"") -> None:
        self.ended = True
        self.body += data


class EventStream:
    """The Responses events of a looped request, written as the loop goes: created, each
    item (tool lists, tool calls, the model's items), then completed (or incomplete)."""

    def __init__(self, sink: ResponseSink, shell: dict[str, Any]) -> None:
        self._sink = sink
        self._shell = shell
        self._seq = 0
        self._index = 0

    def _event(self, kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **data}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    async def start(self, headers: Headers) -> None:
        await self._sink.start_stream(headers)
        await self._sink.chunk(
            self._event("response.created", response=self._shell)
            + self._event("response.in_progress", response=self._shell)
        )

    def _added(self, item: dict[str, Any]) -> bytes:
        return self._event("response.output_item.added", output_index=self._index, item=item)

    def _done(self, item: dict[str, Any]) -> bytes:
        out = self._event("response.output_item.done", output_index=self._index, item=item)
        self._index += 1
        return out

    async def list_tools(self, item: dict[str, Any]) -> None:
        at = {"item_id": item["id"], "output_index": self._index}
        await self._sink.chunk(
            self._added({**item, "tools": []})
            + self._event("response.mcp_list_tools.in_progress", **at)
            + self._event("response.mcp_list_tools.completed", **at)
            + self._done(item)
        )

    async def call_started(self, item: dict[str, Any]) -> None:
        at = {"item_id": item["id"], "output_index": self._index}
        await self._sink.chunk(
            self._added(dict(item))
            + self._event("response.mcp_call_arguments.delta", delta=item["arguments"], **at)
            + self._event("response.mcp_call_arguments.done", arguments=item["arguments"], **at)
            + self._event("response.mcp_call.in_progress", **at)
        )

    async def call_ended(self, item: dict[str, Any]) -> None:
        kind = "failed" if item["error"] is not None else "completed"
        at = {"item_id": item["id"], "output_index": self._index}
        await self._sink.chunk(self._event(f"response.mcp_call.{kind}", **at) + self._done(item))

    async def item(self, item: dict[str, Any]) -> None:
        """One finished item of the model's (a message's text in one delta)."""
        if item.get("type") != "message":
            await self._sink.chunk(self._added(item) + self._done(item))
            return
        out = self._added({**item, "status": "in_progress", "content": []})
        at = {"item_id": item["id"], "output_index": self._index}
        for n, part in enumerate(item.get("content") or ()):
            empty = {**part, "text": ""} if part.get("type") == "output_text" else part
            out += self._event("response.content_part.added", content_index=n, part=empty, **at)
            if part.get("type") == "output_text":
                text = part.get("text", "")
                out += self._event(
                    "response.output_text.delta", content_index=n, delta=text, logprobs=[], **at
                )
                out += self._event(
                    "response.output_text.done", content_index=n, text=text, logprobs=[], **at
                )
            out += self._event("response.content_part.done", content_index=n, part=part, **at)
        await self._sink.chunk(out + self._done(item))

    async def finish(self, final: dict[str, Any]) -> None:
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        await self._sink.end(self._event(kind, response=final))
