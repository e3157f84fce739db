"""The Anthropic-compatible API, driven by the official anthropic SDK, over a provider that
only speaks OpenAI chat (the in-process mock), so every answer is translated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import httpx2
import pytest

from sluice.app import SluiceApp
from tests.integration.conftest import MASTER, make_settings, running


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[SluiceApp, anthropic.AsyncAnthropic]]:
    async with running(make_settings(tmp_path)) as (app, _):
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
        sdk = anthropic.AsyncAnthropic(
            api_key=MASTER, base_url="http://gw", http_client=http, max_retries=0
        )
        try:
            yield app, sdk
        finally:
            await http.aclose()


async def _rows(app: SluiceApp) -> list[object]:
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    return list(await rt.storage.usage.recent(limit=100))


async def test_create(client: tuple[SluiceApp, anthropic.AsyncAnthropic]) -> None:
    app, sdk = client
    message = await sdk.messages.create(
        model="mock-gpt",
        max_tokens=5,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Sluice relays this mock answer"
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 5
    [row] = await _rows(app)
    assert (row.endpoint, row.status, row.completion_tokens) == ("messages", 200, 5)  # type: ignore[attr-defined]


async def test_stream(client: tuple[SluiceApp, anthropic.AsyncAnthropic]) -> None:
    app, sdk = client
    async with sdk.messages.stream(
        model="mock-gpt", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text.startswith("Sluice relays") and len(text.split()) == 64
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 64
    [row] = await _rows(app)
    assert row.streamed and row.completion_tokens == 64 and not row.tokens_estimated  # type: ignore[attr-defined]


async def test_tool_use_round_trip(client: tuple[SluiceApp, anthropic.AsyncAnthropic]) -> None:
    _, sdk = client
    tools = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    first = await sdk.messages.create(
        model="mock-gpt",
        max_tokens=50,
        tools=tools,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "mock"}  # type: ignore[union-attr]

    async with sdk.messages.stream(
        model="mock-gpt",
        max_tokens=50,
        tools=tools,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        streamed = await stream.get_final_message()
    streamed_call = next(b for b in streamed.content if b.type == "tool_use")
    assert streamed_call.input == {"city": "mock"}  # type: ignore[union-attr]

    answer = await sdk.messages.create(
        model="mock-gpt",
        max_tokens=5,
        tools=tools,  # type: ignore[arg-type]
        tool_choice={"type": "none"},
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },  # type: ignore[union-attr]
        ],
    )
    assert answer.content[0].type == "text"


async def test_count_tokens(client: tuple[SluiceApp, anthropic.AsyncAnthropic]) -> None:
    app, sdk = client
    result = await sdk.messages.count_tokens(
        model="mock-gpt", messages=[{"role": "user", "content": "x" * 400}]
    )
    assert result.input_tokens == 104  # 400 chars / 4 + the per-message overhead
    assert await _rows(app) == []


async def test_errors_are_anthropic_shaped(
    client: tuple[SluiceApp, anthropic.AsyncAnthropic],
) -> None:
    _, sdk = client
    with pytest.raises(anthropic.NotFoundError) as missing:
        await sdk.messages.create(
            model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body == {  # type: ignore[comparison-overlap]
        "type": "error",
        "error": {
            "type": "not_found_error",
            "message": "the model 'nope' does not exist or you do not have access to it",
        },
    }
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        await sdk.messages.create(
            model="mock-gpt", max_tokens=0, messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(anthropic.InternalServerError) as broken:
        await sdk.messages.create(
            model="broken", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert broken.value.status_code == 502
    bad_key = anthropic.AsyncAnthropic(
        api_key="nope", base_url="http://gw", http_client=sdk._client, max_retries=0
    )
    with pytest.raises(anthropic.AuthenticationError):
        await bad_key.messages.create(
            model="mock-gpt", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )


async def test_mid_stream_failure_is_an_error_event(
    client: tuple[SluiceApp, anthropic.AsyncAnthropic],
) -> None:
    _, sdk = client
    with pytest.raises(anthropic.APIStatusError, match="broke mid-answer"):
        async with sdk.messages.stream(
            model="cut", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            async for _ in stream:
                pass
