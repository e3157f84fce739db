"""The mock upstream's Messages format takes ``system`` turns inside the conversation, as the
Anthropic API does for Claude Code, so the native pass-through can be tested end to end."""

from __future__ import annotations

import aiohttp
import orjson

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
TOOL = {"name": "look", "input_schema": {"type": "object", "properties": {}}}


async def _post(session: aiohttp.ClientSession, url: str, body: object) -> tuple[int, dict]:
    async with session.post(url, data=orjson.dumps(body), headers=HEADERS) as resp:
        return resp.status, orjson.loads(await resp.read())


async def test_system_turns_mid_conversation(upstream: str, session: aiohttp.ClientSession) -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "seen"}
    body = {
        "model": "chat",
        "max_tokens": 50,
        "tools": [TOOL],
        "messages": [
            {"role": "user", "content": "look"},
            {"role": "system", "content": [{"type": "text", "text": "Environment: linux"}]},
            {"role": "assistant", "content": [call]},
            {"role": "system", "content": "a reminder between the call and its result"},
            {"role": "user", "content": [result]},
        ],
    }
    status, answer = await _post(session, f"{upstream}/v1/messages", body)
    assert status == 200, answer
    assert answer["stop_reason"] == "end_turn"
    assert answer["content"][0]["text"].startswith("The tool returned: seen")


async def test_other_roles_are_refused(upstream: str, session: aiohttp.ClientSession) -> None:
    body = {"model": "chat", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}
    status, answer = await _post(session, f"{upstream}/v1/messages", body)
    assert status == 400
    assert "messages.0.role" in answer["error"]["message"]
