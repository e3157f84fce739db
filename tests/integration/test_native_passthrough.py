"""Native pass-through forwards what it does not govern: Claude-Code-shaped requests to an
``anthropic`` deployment and Codex-shaped requests to an ``openai`` deployment reach the
upstream as they were sent (roles, beta headers, thinking, output_config, unknown fields,
any tool and item types), answered 200 under the caller's model name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sluice.app import SluiceApp
from tests.integration.conftest import make_settings, running
from tests.integration.recorder import UPSTREAM_MODEL, Recorder, recording_upstream

Gateway = tuple[SluiceApp, httpx.AsyncClient, Recorder]

BETA = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with recording_upstream() as rec:
        config = f"""
providers:
  an: {{type: anthropic, base_url: "{rec.url}", api_key: sk-ant-up}}
  oa: {{type: openai, base_url: "{rec.url}/v1", api_key: sk-oa-up}}
models:
  - name: claude-native
    aliases: [sonnet-alias]
    deployments: [{{provider: an, model: claude-upstream}}]
  - name: claude-same
    deployments: [{{provider: an, model: claude-same}}]
  - name: gpt-native
    deployments: [{{provider: oa, model: gpt-upstream}}]
  - name: gpt-same
    deployments: [{{provider: oa, model: gpt-same}}]
"""
        async with running(make_settings(tmp_path), config) as (app, client):
            yield app, client, rec


def claude_code_body(model: str, *, stream: bool) -> dict[str, Any]:
    """What Claude Code sends (to ``/v1/messages?beta=true``): a system message
    mid-conversation, thinking blocks, adaptive thinking, output_config, server and
    versioned tools, fields no release of Sluice knows."""
    return {
        "model": model,
        "max_tokens": 32000,
        "stream": stream,
        "system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "List the files"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Use Bash.", "signature": "sig=="},
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"cmd": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.py"}],
            },
            {
                "role": "system",
                "content": "<system-reminder>The user changed a.py</system-reminder>",
            },
            {"role": "user", "content": "Now explain a.py"},
        ],
        "thinking": {"type": "adaptive"},
        "output_config": {
            "effort": "high",
            "format": {"type": "json_schema", "schema": {"type": "object", "properties": {}}},
        },
        "tools": [
            {
                "name": "Bash",
                "description": "Run a command",
                "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}},
            },
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
            {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
            {"type": "some_future_tool_2027"},
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": False},
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "metadata": {"user_id": "user_abc_session_1"},
        "a_field_from_a_future_release": {"nested": [1, 2.5, None, "x"]},
    }


def codex_body(model: str, *, stream: bool) -> dict[str, Any]:
    """What Codex CLI sends: developer messages, reasoning and custom tool call items, and
    function, custom, namespace, web_search and local_shell tools."""
    return {
        "model": model,
        "instructions": "You are Codex, a coding agent.",
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "<permissions>"}],
            },
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix"}]},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "Patch it."}],
                "encrypted_content": "gAAAAB-opaque",
            },
            {
                "type": "custom_tool_call",
                "id": "ctc_1",
                "call_id": "call_1",
                "name": "apply_patch",
                "input": "*** Begin Patch\n*** End Patch\n",
                "status": "completed",
            },
            {"type": "custom_tool_call_output", "call_id": "call_1", "output": "Done!"},
            {
                "type": "function_call",
                "call_id": "call_2",
                "name": "shell",
                "arguments": '{"command":["ls"]}',
            },
            {"type": "function_call_output", "call_id": "call_2", "output": "a.py"},
        ],
        "tools": [
            {
                "type": "function",
                "name": "shell",
                "description": "Run a command",
                "strict": False,
                "parameters": {"type": "object", "properties": {"command": {"type": "array"}}},
            },
            {
                "type": "custom",
                "name": "apply_patch",
                "description": "Apply a patch",
                "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
            },
            {
                "type": "namespace",
                "name": "mcp__files",
                "description": "Files",
                "tools": [{"type": "function", "name": "read", "parameters": {"type": "object"}}],
            },
            {"type": "web_search", "external_web_access": False},
            {"type": "local_shell"},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": stream,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "conv-1",
        "text": {"verbosity": "low"},
        "client_metadata": {"originator": "codex_cli_rs"},
    }


async def _rows(app: SluiceApp) -> list[Any]:
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    return list(await rt.storage.usage.recent(limit=100))


def _events(text: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(line[5:].strip())
        for line in text.split("\n")
        if line.startswith("data:") and line[5:].strip() != "[DONE]"
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_claude_code_request_is_forwarded_untouched(gw: Gateway, stream: bool) -> None:
    app, client, rec = gw
    sent = claude_code_body("claude-same", stream=stream)
    raw = orjson.dumps(sent)
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": BETA, "x-api-key": "ignored"}
    resp = await client.post("/v1/messages?beta=true", content=raw, headers=headers)
    assert resp.status_code == 200, resp.text
    [seen] = rec.seen
    assert seen.path == "/v1/messages"
    assert seen.raw == raw  # byte for byte: the deployment's model has the public name
    assert seen.headers["anthropic-beta"] == BETA
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["x-api-key"] == "sk-ant-up"  # the gateway's credential, not the caller's
    if stream:
        events = _events(resp.text)
        assert events[0]["message"]["model"] == "claude-same"
        assert events[-1]["type"] == "message_stop"
    else:
        assert resp.json()["model"] == "claude-same"
    [row] = await _rows(app)
    assert (row.status, row.model, row.upstream_model) == (200, "claude-same", "claude-same")
    assert (row.prompt_tokens, row.completion_tokens) == (7, 2)


async def test_claude_code_request_renamed_model_only(gw: Gateway) -> None:
    """A deployment with another model name: only ``model`` changes on the way."""
    _, client, rec = gw
    sent = claude_code_body("sonnet-alias", stream=False)
    resp = await client.post("/v1/messages", json=sent, headers={"anthropic-beta": BETA})
    assert resp.status_code == 200, resp.text
    assert rec.seen[0].body == {**sent, "model": "claude-upstream"}
    assert resp.json()["model"] == "sonnet-alias"  # the name the caller used, an alias here
    assert resp.headers["x-sluice-deployment"].endswith("claude-upstream")


@pytest.mark.parametrize("stream", [False, True])
async def test_codex_request_is_forwarded_untouched(gw: Gateway, stream: bool) -> None:
    app, client, rec = gw
    raw = orjson.dumps(codex_body("gpt-same", stream=stream))
    resp = await client.post("/v1/responses", content=raw, headers={"openai-beta": "responses=v1"})
    assert resp.status_code == 200, resp.text
    [seen] = rec.seen
    assert (seen.path, seen.raw) == ("/v1/responses", raw)
    assert seen.headers["openai-beta"] == "responses=v1"
    if stream:
        events = _events(resp.text)
        assert [e["response"]["model"] for e in events if "response" in e] == ["gpt-same"] * 2
        # only the response's own model is renamed, not a caller's metadata key of that name
        assert events[-1]["response"]["metadata"] == {"model": "caller-written"}
    else:
        assert resp.json()["model"] == "gpt-same"
    [row] = await _rows(app)
    assert (row.status, row.endpoint, row.completion_tokens) == (200, "responses", 2)


async def test_codex_request_renamed_model_only(gw: Gateway) -> None:
    _, client, rec = gw
    sent = codex_body("gpt-native", stream=True)
    resp = await client.post("/v1/responses", json=sent)
    assert resp.status_code == 200, resp.text
    assert rec.seen[0].body == {**sent, "model": "gpt-upstream"}
    models = [e["response"]["model"] for e in _events(resp.text) if "response" in e]
    assert models == ["gpt-native", "gpt-native"]
    assert UPSTREAM_MODEL not in resp.text


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"stream": "yes"}, "stream"),
        ({"messages": {"role": "user"}}, "messages"),
        ({"model": ""}, "model"),
    ],
)
async def test_native_messages_still_govern(gw: Gateway, patch: dict[str, Any], param: str) -> None:
    """What the gateway needs (model, token bound, stream flag, the conversation as an
    array) is still checked before anything is forwarded."""
    app, client, rec = gw
    body = {**claude_code_body("claude-native", stream=False), **patch}
    resp = await client.post("/v1/messages", json={k: v for k, v in body.items() if v is not None})
    assert resp.status_code == 400
    assert param in resp.json()["error"]["message"]
    assert rec.seen == []
    [row] = await _rows(app)
    assert row.status == 400


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"stream": 1}, "stream"),
        ({"store": "no"}, "store"),
        ({"input": None}, "input"),
    ],
)
async def test_native_responses_still_govern(
    gw: Gateway, patch: dict[str, Any], param: str
) -> None:
    _, client, rec = gw
    body = {**codex_body("gpt-native", stream=False), **patch}
    resp = await client.post("/v1/responses", json={k: v for k, v in body.items() if v is not None})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == param
    assert rec.seen == []


async def test_body_size_still_bounded(tmp_path: Path) -> None:
    async with (
        recording_upstream() as rec,
        running(
            make_settings(tmp_path, max_body_bytes=1024),
            f"""
providers:
  an: {{type: anthropic, base_url: "{rec.url}", api_key: k}}
models:
  - name: claude-native
    deployments: [{{provider: an, model: c}}]
""",
        ) as (_, client),
    ):
        resp = await client.post(
            "/v1/messages", json=claude_code_body("claude-native", stream=False)
        )
        assert resp.status_code == 413
        assert rec.seen == []


async def test_count_tokens_takes_a_claude_code_request(gw: Gateway) -> None:
    """The gateway's own count reads any shape the native path forwards."""
    app, client, rec = gw
    body = claude_code_body("claude-native", stream=False)
    del body["max_tokens"]
    resp = await client.post("/v1/messages/count_tokens", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["input_tokens"] > 0
    assert rec.seen == [] and await _rows(app) == []


async def test_translated_path_checks_what_it_translates(tmp_path: Path) -> None:
    """Checks only translation needs run when the request is translated: a request the
    native path would forward gets a 400 naming the field on a translated one, before any
    upstream call, with its one usage row."""
    async with running(make_settings(tmp_path)) as (app, client):
        body = {"model": "mock-gpt", "max_tokens": 5, "messages": ["not a message"]}
        resp = await client.post("/v1/messages", json=body)
        assert resp.status_code == 400
        assert resp.json()["error"]["message"] == "messages.0: must be an object"
        body = {"model": "mock-gpt", "input": "x", "instructions": ["not", "text"]}
        resp = await client.post("/v1/responses", json=body)
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "instructions"
        rows = await _rows(app)
        assert [(r.status, r.cost_micros, r.completion_tokens) for r in rows] == [
            (400, 0, 0),
            (400, 0, 0),
        ]
