"""OpenAI chat chunks → Responses API streaming events."""

from __future__ import annotations

from typing import Any

import orjson

from sluice.pipeline.dialects import responses_format as rf
from sluice.pipeline.dialects.responses_tools import LOCAL_SHELL, ChatTools


class ResponsesStreamWriter:
    """Emits ``response.*`` events: created, in_progress, one message item with its text,
    one function_call item per tool call, then completed (built by the caller). A call of a
    ``custom`` tool is a ``custom_tool_call`` item whose input is sent whole when the items
    close (chat streams it inside JSON arguments)."""

    def __init__(self, shell: dict[str, Any], tools: ChatTools) -> None:
        self._shell = shell
        self._tools = tools
        self._seq = 0
        self._items: list[dict[str, Any]] = []
        self._message: dict[str, Any] | None = None
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None

    def event(self, kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **data}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def start(self) -> bytes:
        return self.event("response.created", response=self._shell) + self.event(
            "response.in_progress", response=self._shell
        )

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out = b""
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                out += self._text_delta(text)
            for call in delta.get("tool_calls") or ():
                out += self._call_delta(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def _text_delta(self, text: str) -> bytes:
        out = b""
        if self._message is None:
            self._message = rf.message_item(rf.new_id("msg"), "", status="in_progress")
            self._message["content"] = []
            self._items.append(self._message)
            out += self.event(
                "response.output_item.added", output_index=len(self._items) - 1, item=self._message
            )
            out += self.event(
                "response.content_part.added",
                item_id=self._message["id"],
                output_index=len(self._items) - 1,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            )
        self._text.append(text)
        return out + self.event(
            "response.output_text.delta",
            item_id=self._message["id"],
            output_index=self._items.index(self._message),
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _call_delta(self, call: dict[str, Any]) -> bytes:
        out = b""
        index = call.get("index", 0)
        fn = call.get("function") or {}
        item = self._calls.get(index)
        if item is None:
            item = rf.call_item(
                rf.new_id("fc"),
                call.get("id") or rf.new_id("call"),
                fn.get("name", ""),
                "",
                status="in_progress",
            )
            self._calls[index] = item
            self._items.append(item)
            shown = rf.tool_item(
                item["id"], item["call_id"], item["name"], "", self._tools, status="in_progress"
            )
            out += self.event(
                "response.output_item.added", output_index=len(self._items) - 1, item=shown
            )
        args = fn.get("arguments")
        if args:
            item["arguments"] += args
            if self._whole(item["name"]):
                return out
            out += self.event(
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=self._items.index(item),
                delta=args,
            )
        return out

    def _whole(self, name: str) -> bool:
        """A call sent whole when the items close: its item has no argument deltas."""
        return name in self._tools.custom or (name == LOCAL_SHELL and self._tools.local_shell)

    def items(self) -> list[dict[str, Any]]:
        """The finished output items."""
        done = []
        for item in self._items:
            if item["type"] == "message":
                done.append(rf.message_item(item["id"], "".join(self._text)))
            else:
                done.append(
                    rf.tool_item(
                        item["id"],
                        item["call_id"],
                        item["name"],
                        item["arguments"],
                        self._tools,
                        status="completed",
                    )
                )
        return done

    def close_items(self) -> bytes:
        out = b""
        for index, item in enumerate(self.items()):
            if item["type"] == "message":
                part = item["content"][0]
                out += self.event(
                    "response.output_text.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    text=part["text"],
                    logprobs=[],
                )
                out += self.event(
                    "response.content_part.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part=part,
                )
            elif item["type"] == "custom_tool_call":
                for kind, key in (("delta", "delta"), ("done", "input")):
                    out += self.event(
                        f"response.custom_tool_call_input.{kind}",
                        item_id=item["id"],
                        output_index=index,
                        **{key: item["input"]},
                    )
            elif item["type"] == "function_call":
                out += self.event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=item["arguments"],
                    name=item["name"],
                )
            out += self.event("response.output_item.done", output_index=index, item=item)
        return out
