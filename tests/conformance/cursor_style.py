"""A Cursor-style agent turn through the OpenAI Chat Completions API (recording only).

Cursor is not scriptable, so this replays its request shape with the ``openai`` SDK: a
streamed chat with a system prompt, function tools (``parallel_tool_calls``,
``stream_options.include_usage``), the model's tool call answered by a ``tool`` message, and
the follow-up request that carries it.
"""

import json
import os

import openai

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file of the workspace.",
            "parameters": {
                "type": "object",
                "properties": {"target_file": {"type": "string"}},
                "required": ["target_file"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "run_terminal_cmd",
            "description": "Run a shell command.",
            "parameters": {
                "type": "object",
                "properties": {"command": {"type": "string"}, "is_background": {"type": "boolean"}},
                "required": ["command", "is_background"],
            },
        },
    },
]


def turn(client: openai.OpenAI, messages: list[dict[str, object]]) -> dict[str, object]:
    """One streamed request; returns the assistant message it built."""
    text, calls = "", {}
    stream = client.chat.completions.create(
        model="gpt-4.1",
        messages=messages,
        tools=TOOLS,
        tool_choice="auto",
        parallel_tool_calls=True,
        stream=True,
        stream_options={"include_usage": True},
        temperature=0,
    )
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or ():
                slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] = call.id or slot["id"]
                if call.function:
                    slot["name"] += call.function.name or ""
                    slot["arguments"] += call.function.arguments or ""
    message: dict[str, object] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in calls.values()
        ]
    return message


def main() -> None:
    client = openai.OpenAI(
        base_url=os.environ["CAPTURE_BASE_URL"] + "/v1", api_key="sk-capture-dummy", max_retries=0
    )
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "You are a coding assistant inside an editor."},
        {"role": "user", "content": "What does README.md say?"},
    ]
    for _ in range(4):
        answer = turn(client, messages)
        messages.append(answer)
        calls = answer.get("tool_calls")
        if not calls:
            print(answer["content"])
            return
        for call in calls:  # type: ignore[union-attr]
            result = json.dumps({"contents": "# Demo\nA demo project."})
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    raise SystemExit("no final answer after 4 turns")


if __name__ == "__main__":
    main()
