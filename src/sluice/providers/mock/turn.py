"""What the conversation's last turn is, as a model would read it.

A model answers a tool result with text and calls a tool when a user asks; the mock does
the same so agents (Claude Code, Codex, the Agents SDK, ...) finish their loop against it.
The last turn is every message after the last assistant message; it holds a tool result
in any wire format the mock serves: an OpenAI ``tool`` (or ``function``) message, an
Anthropic ``tool_result`` block, a Responses ``function_call_output`` /
``custom_tool_call_output`` item (the Responses view marks them ``tool``), a Gemini
``functionResponse`` part, a Bedrock ``toolResult`` block, a Cohere ``tool`` message.
"""

from __future__ import annotations

from typing import Any

import orjson

SNIPPET_CHARS = 200
"""Characters of the tool result quoted in the summary."""
_ASSISTANT = ("assistant", "model", "chatbot")
_RESULT_BLOCKS = ("tool_result", "function_call_output", "custom_tool_call_output")


def _text(value: Any, depth: int = 0) -> str:
    """A short text of a tool result's content, whatever its shape (nesting is cut off)."""
    if isinstance(value, str):
        return value[: SNIPPET_CHARS * 2]
    if depth > 8:
        return ""
    if isinstance(value, list):
        out: list[str] = []
        for item in value[:16]:
            out.append(_text(item, depth + 1))
            if sum(map(len, out)) > SNIPPET_CHARS:
                break
        return " ".join(p for p in out if p)
    if isinstance(value, dict):
        for key in ("text", "output", "content", "data", "document", "json", "response"):
            if key in value:
                return _text(value[key], depth + 1)
    try:
        return orjson.dumps(value).decode()[: SNIPPET_CHARS * 2]
    except TypeError:  # nested deeper than orjson serialises
        return ""


def _result_of(message: Any) -> str | None:
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if message.get("role") in ("tool", "function"):
        return _text(content)
    if not isinstance(content, list):
        return None
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") in _RESULT_BLOCKS:
            return _text(block.get("content", block.get("output")))
        for key in ("functionResponse", "toolResult"):
            if isinstance(block.get(key), dict):
                inner = block[key]
                return _text(inner.get("response", inner.get("content")))
    return None


def tool_result(messages: Any) -> str | None:
    """The text of the last turn's tool result (possibly empty), or ``None`` when the last
    turn holds none."""
    if not isinstance(messages, list):
        return None
    found: str | None = None
    for message in reversed(messages):
        if isinstance(message, dict) and str(message.get("role", "")).lower() in _ASSISTANT:
            break
        result = _result_of(message)
        if result is not None:
            found = result
    return found


def summary(result: str) -> str:
    """The mock's answer to a tool result."""
    snippet = " ".join(result.split())
    if len(snippet) > SNIPPET_CHARS:
        snippet = snippet[:SNIPPET_CHARS].rstrip() + "..."
    return f"The tool returned: {snippet or '(nothing)'}"


def forces_tool(choice: Any) -> bool:
    """``tool_choice`` asks for a tool call even after a tool result."""
    return choice == "required" or isinstance(choice, dict)
