"""Anthropic SDK and Responses API against the real server, over an OpenAI-compatible
upstream (``sluice mock-upstream``) and the in-process mock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest

from tests.e2e.support import Gateway, wait_row


@pytest.fixture
async def claude(gateway: Gateway) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=gateway.base_url, api_key=gateway.key, max_retries=0, timeout=20.0
    ) as client:
        yield client


@pytest.mark.parametrize("model", ["m-chat", "m-local"])
async def test_anthropic_sdk_create_stream_tools_count(
    claude: anthropic.AsyncAnthropic, gateway: Gateway, model: str
) -> None:
    raw = await claude.messages.with_raw_response.create(
        model=model, max_tokens=8, messages=[{"role": "user", "content": "Hello"}]
    )
    message = await raw.parse()
    assert message.content[0].type == "text"
    assert len(message.content[0].text.split()) == 8
    assert message.stop_reason == "max_tokens"
    row = await wait_row(gateway.db_path, request_id=raw.headers["x-request-id"])
    assert row["endpoint"] == "messages" and row["completion_tokens"] == 8
    assert not row["tokens_estimated"]

    async with claude.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert len(text.split()) == 64 and final.usage.output_tokens == 64

    tools = [
        {
            "name": "get_time",
            "description": "Current time",
            "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}},
        }
    ]
    used = await claude.messages.create(
        model=model,
        max_tokens=50,
        tools=tools,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "What time is it?"}],
    )
    call = next(b for b in used.content if b.type == "tool_use")
    assert call.input == {"tz": "mock"}  # type: ignore[union-attr]

    counted = await claude.messages.count_tokens(
        model=model, messages=[{"role": "user", "content": "Hello there"}]
    )
    assert counted.input_tokens > 0


async def test_anthropic_errors(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.RateLimitError):
        await claude.messages.create(
            model="m-429", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(anthropic.NotFoundError):
        await claude.messages.create(
            model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )


@pytest.mark.parametrize("model", ["m-chat", "m-local"])
async def test_responses_create_and_stream(aclient: openai.AsyncOpenAI, model: str) -> None:
    resp = await aclient.responses.create(model=model, input="Hello")
    assert len(resp.output_text.split()) == 64
    again = await aclient.responses.retrieve(resp.id)
    assert again.output_text == resp.output_text
    async with aclient.responses.stream(model=model, input="Hi", previous_response_id=resp.id) as s:
        async for _ in s:
            pass
        final = await s.get_final_response()
    assert final.output_text and final.usage is not None
    assert final.usage.input_tokens > (resp.usage.input_tokens if resp.usage else 0)
