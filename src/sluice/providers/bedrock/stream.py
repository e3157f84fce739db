"""Bedrock ``ConverseStream`` (``application/vnd.amazon.eventstream``) → OpenAI chunks.

The binary frames are decoded (and their CRCs checked) by ``botocore.eventstream``. Each
event message names its type in the ``:event-type`` header and carries a JSON payload;
``:message-type: exception`` frames carry an error. The stream is complete at
``messageStop``; the ``metadata`` event that follows carries the usage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.eventstream import EventStreamBuffer, ParserError

from sluice.errors import ErrorKind, GatewayError, UpstreamError, upstream_http_error
from sluice.providers.bedrock.transform import FINISH_REASONS, JSON_TOOL, usage_from
from sluice.providers.native.io import event_object, interrupted, malformed, translate_each
from sluice.providers.native.openai_out import ChunkWriter
from sluice.types import Usage

EXCEPTION_STATUS = {
    "validationException": 400,
    "accessDeniedException": 403,
    "resourceNotFoundException": 404,
    "throttlingException": 429,
    "modelStreamErrorException": 500,
    "internalServerException": 500,
    "serviceUnavailableException": 503,
    "modelTimeoutException": 504,
}


def stream_exception(kind: str, payload: bytes) -> GatewayError:
    try:
        message = str(event_object(payload).get("message") or kind)
    except GatewayError:
        message = kind
    status = EXCEPTION_STATUS.get(kind)
    if status is None:
        return UpstreamError(ErrorKind.PROVIDER_STREAM_INTERRUPTED, message)
    return upstream_http_error(status, message)


class ConverseTranslator:
    """ConverseStream events as OpenAI chunks. With ``json_tool`` (the request forced the
    answer tool, see ``transform.JSON_TOOL``) that tool's input streams as the answer's text
    and its ``tool_use`` stop is a ``stop``."""

    def __init__(self, *, include_usage: bool, model: str, json_tool: bool = False) -> None:
        self._include_usage = include_usage
        self._json_tool = json_tool
        self._answer_blocks: set[int] = set()
        self._buffer = EventStreamBuffer()
        self._writer = ChunkWriter(ident="chatcmpl-bedrock", model=model)
        self._tools: dict[int, int] = {}
        self._stopped = False
        self._done = False
        self.usage: Usage | None = None

    @property
    def done(self) -> bool:
        return self._done

    @property
    def completion_chars(self) -> int:
        return self._writer.completion_chars

    def feed(self, data: bytes) -> bytes:
        self._buffer.add_data(data)
        return translate_each(self._messages(), lambda m: self._message(m.headers, m.payload))

    def _messages(self) -> Iterator[Any]:
        try:
            yield from self._buffer
        except ParserError:
            raise malformed("event-stream frame") from None

    def _message(self, headers: dict[str, Any], payload: bytes) -> bytes:
        kind = headers.get(":message-type")
        if kind == "exception":
            raise stream_exception(str(headers.get(":exception-type")), payload)
        if kind == "error":
            raise UpstreamError(
                ErrorKind.PROVIDER_STREAM_INTERRUPTED,
                str(headers.get(":error-message") or headers.get(":error-code") or "error"),
            )
        return self._event(str(headers.get(":event-type")), event_object(payload))

    def _event(self, kind: str, obj: dict[str, Any]) -> bytes:
        w = self._writer
        if kind == "messageStart":
            return w.role()
        if kind == "contentBlockStart":
            return self._block_start(int(obj.get("contentBlockIndex", 0)), obj.get("start"))
        if kind == "contentBlockDelta":
            block = int(obj.get("contentBlockIndex", 0))
            delta = obj.get("delta") or {}
            if isinstance(delta.get("text"), str):
                return w.text(delta["text"])
            use = delta.get("toolUse")
            if isinstance(use, dict) and block in self._answer_blocks:
                return w.text(str(use.get("input") or ""))
            tool = self._tools.get(block)
            if isinstance(use, dict) and tool is not None:
                return w.tool_args(tool, str(use.get("input") or ""))
            return b""
        if kind == "messageStop":
            self._stopped = True
            finish = FINISH_REASONS.get(str(obj.get("stopReason")), "stop")
            if finish == "tool_calls" and self._answer_blocks and not self._tools:
                finish = "stop"  # the answer tool's call is the answer, not a tool call
            return w.finish(finish)
        if kind == "metadata":
            self.usage = usage_from(obj.get("usage")) or self.usage
            self._done = self._stopped
        return b""

    def _block_start(self, block: int, start: Any) -> bytes:
        use = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(use, dict):
            return b""
        if self._json_tool and use.get("name") == JSON_TOOL:
            self._answer_blocks.add(block)
            return b""
        n = self._tools[block] = len(self._tools)
        return self._writer.tool_start(n, str(use.get("toolUseId")), str(use.get("name")))

    def close(self) -> bytes:
        if not self._stopped:
            raise interrupted()
        if self._include_usage and self.usage is not None:
            return self._writer.usage(self.usage)
        return b""
