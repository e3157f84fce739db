"""The native adapters end to end: the official ``openai`` SDK against a real ``sluice serve``
whose models sit behind Anthropic, Gemini, Vertex AI, Bedrock and Cohere providers, each
talking to ``sluice mock-upstream`` in that provider's own wire format. Usage rows must hold
the provider's counts, not estimates."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import openai
import pytest

from tests.e2e.conftest import stop_gateway
from tests.e2e.support import (
    Gateway,
    base_env,
    create_key_cli,
    serve_until_ready,
    wait_row,
)
from tests.providers.conftest import service_account

pytestmark = pytest.mark.e2e

PROMPT_TOKENS = 17
CHAT_MODELS = {
    "n-anthropic": "anth",
    "n-gemini": "gem",
    "n-vertex": "vtx",
    "n-vertex-claude": "vtx",
    "n-bedrock": "bed",
    "n-cohere": "coh",
}
EMBED_MODELS = {
    "e-gemini": ("gem", "embed"),
    "e-vertex": ("vtx", "embed"),
    "e-bedrock-titan": ("bed", "amazon.titan-embed-text-v2:0"),
    "e-bedrock-cohere": ("bed", "cohere.embed-english-v3"),
    "e-cohere": ("coh", "embed-v4.0"),
}
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say something about sluices."},
]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
_WORDS = (
    "Sluice relays this mock answer so that demos tests and benchmarks run without a network "
    "connection while every byte of accounting stays exact and every stream ends honestly"
).split()


def mock_text(words: int = 64) -> str:
    return " ".join(_WORDS[i % len(_WORDS)] for i in range(words))


def native_config(mock_port: int, credentials: Path) -> str:
    root = f"http://127.0.0.1:{mock_port}"
    lines = [
        "providers:",
        f"  anth: {{type: anthropic, base_url: '{root}', api_key: sk-ant-e2e}}",
        f"  gem: {{type: gemini, base_url: '{root}', api_key: 'env:SLUICE_E2E_GEMINI_KEY'}}",
        f"  vtx: {{type: vertex, base_url: '{root}', location: us-east5,"
        f" credentials: '{credentials}'}}",
        f"  bed: {{type: bedrock, base_url: '{root}', region: eu-central-1,"
        " access_key_id: 'env:SLUICE_E2E_AWS_ID', secret_access_key: 'env:SLUICE_E2E_AWS_SECRET'}",
        f"  coh: {{type: cohere, base_url: '{root}', api_key: co-e2e}}",
        "models:",
    ]
    for name, provider in CHAT_MODELS.items():
        script = "claude" if name.endswith("claude") else "chat"
        upstream = f"{script}?prompt_tokens={PROMPT_TOKENS}"
        lines.append(f"  - name: {name}")
        lines.append(f"    deployments: [{{provider: {provider}, model: '{upstream}'}}]")
    for name, (provider, model) in EMBED_MODELS.items():
        lines.append(f"  - name: {name}")
        lines.append(f"    deployments: [{{provider: {provider}, model: '{model}?dim=12'}}]")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def native_gateway(e2e_dir: Path, mock_port: int) -> Iterator[Gateway]:
    """A gateway of its own, so the shared session gateway's config stays untouched."""
    workdir = e2e_dir / "native"
    workdir.mkdir(parents=True, exist_ok=True)
    credentials = workdir / "service-account.json"
    credentials.write_text(json.dumps(service_account(f"http://127.0.0.1:{mock_port}/token")))
    data_dir = workdir / "data"
    master = "sk-master-" + secrets.token_hex(16)
    env = base_env(
        data_dir,
        master,
        SLUICE_E2E_GEMINI_KEY="gm-e2e",
        SLUICE_E2E_AWS_ID="AKIDE2EEXAMPLE",
        SLUICE_E2E_AWS_SECRET="e2e-secret-access-key",
    )
    config = workdir / "sluice.yaml"
    config.write_text(native_config(mock_port, credentials))
    created = create_key_cli(env, "native-e2e")
    proc, port = serve_until_ready(workdir, config, env, name="native-gateway")
    gw = Gateway(proc, port, env, data_dir, master, created["key"], created["id"])
    try:
        yield gw
    finally:
        if gw.proc.alive():
            stop_gateway(gw)


@pytest.fixture
async def client(native_gateway: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=native_gateway.v1, api_key=native_gateway.key, max_retries=0, timeout=20.0
    ) as c:
        yield c


@pytest.mark.parametrize("model", list(CHAT_MODELS))
async def test_chat(client: openai.AsyncOpenAI, native_gateway: Gateway, model: str) -> None:
    raw = await client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
    assert raw.headers["x-sluice-provider"] == CHAT_MODELS[model]
    completion = raw.parse()
    assert completion.choices[0].message.content == mock_text()
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        PROMPT_TOKENS,
        64,
    )
    row = await wait_row(native_gateway.db_path, request_id=raw.headers["x-request-id"])
    assert row["status"] == 200 and row["error_kind"] is None
    assert row["provider"] == CHAT_MODELS[model]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (PROMPT_TOKENS, 64)
    assert row["tokens_estimated"] == 0


@pytest.mark.parametrize("model", list(CHAT_MODELS))
async def test_stream_with_usage(
    client: openai.AsyncOpenAI, native_gateway: Gateway, model: str
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model=model,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in raw.parse()]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == mock_text()
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (PROMPT_TOKENS, 64)
    row = await wait_row(native_gateway.db_path, request_id=raw.headers["x-request-id"])
    assert row["streamed"] == 1 and row["status"] == 200
    assert (row["prompt_tokens"], row["completion_tokens"]) == (PROMPT_TOKENS, 64)
    assert row["tokens_estimated"] == 0


@pytest.mark.parametrize("model", list(CHAT_MODELS))
async def test_tool_call_round_trip(client: openai.AsyncOpenAI, model: str) -> None:
    first = await client.chat.completions.create(model=model, messages=MESSAGES, tools=[WEATHER])
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "mock"}
    history = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ]
    # Like a model, the mock answers the tool result with text: the agent's loop ends.
    second = await client.chat.completions.create(model=model, messages=history, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.tool_calls is None
    assert "temp_c" in (second.choices[0].message.content or "")


@pytest.mark.parametrize("model", list(EMBED_MODELS))
async def test_embeddings(client: openai.AsyncOpenAI, native_gateway: Gateway, model: str) -> None:
    raw = await client.embeddings.with_raw_response.create(
        model=model, input=["sluice gates", "lock chambers"]
    )
    result = raw.parse()
    assert [len(d.embedding) for d in result.data] == [12, 12]
    assert result.data[0].embedding != result.data[1].embedding
    row = await wait_row(native_gateway.db_path, request_id=raw.headers["x-request-id"])
    assert row["status"] == 200 and row["prompt_tokens"] > 0
    # The Gemini API reports no token counts for embeddings; every other provider does.
    assert row["tokens_estimated"] == (1 if model == "e-gemini" else 0)
    if model != "e-gemini":
        assert result.usage.prompt_tokens == row["prompt_tokens"]
