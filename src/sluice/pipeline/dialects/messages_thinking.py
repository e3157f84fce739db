"""Messages settings that chat spells differently: thinking and structured output.

Pure functions on a validated Messages body; each returns ``None`` when chat gets nothing.

=================================================  =======================================
Messages                                           OpenAI chat
=================================================  =======================================
``thinking: {type: enabled, budget_tokens: n}``    ``reasoning_effort``: ``low`` (n ≤ 2048),
                                                   ``medium`` (n ≤ 12288), ``high`` above
``thinking: {type: adaptive}``, ``disabled``       nothing: the target's default reasoning
                                                   (adaptive asks the model to decide)
``output_config.effort``                           nothing (a non-reasoning model would
                                                   refuse ``reasoning_effort``)
``output_config.format: {type: json_schema}``      ``response_format: {type: json_schema}``
``thinking`` / ``redacted_thinking`` blocks        dropped (chat has no field for them)
server tools (``web_search_20250305``,             dropped, named in ``x-sluice-warning``:
``code_execution_...``, ``bash_...``, ...)         Anthropic runs or defines them
``role: system`` message mid-conversation          a chat system message in its place
``tool_choice.disable_parallel_tool_use``          ``parallel_tool_calls: false``
=================================================  =======================================
"""

from __future__ import annotations

from typing import Any

LOW_BUDGET_TOKENS = 2048
MEDIUM_BUDGET_TOKENS = 12288


def server_tool(tool: dict[str, Any]) -> bool:
    """A tool Anthropic defines or runs itself (typed, e.g. ``web_search_20250305``), as
    opposed to a client tool (no ``type``, or ``custom``)."""
    return tool.get("type") not in (None, "custom")


def reasoning_effort(body: dict[str, Any]) -> str | None:
    """The chat ``reasoning_effort`` of a Messages ``thinking`` setting."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict):
        return None
    kind = thinking.get("type")
    if kind != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        return "medium"
    if budget <= LOW_BUDGET_TOKENS:
        return "low"
    return "medium" if budget <= MEDIUM_BUDGET_TOKENS else "high"


def response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """The chat ``response_format`` of ``output_config.format`` (JSON schema output)."""
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
