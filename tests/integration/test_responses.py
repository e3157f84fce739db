"""The Responses API with the official openai SDK, in process, over the mock provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import openai
import pytest

from sluice.app import SluiceApp
from tests.integration.conftest import MASTER, make_settings, running
from tests.mock_upstream import mock_upstream


@pytest.fixture
async def sdk(tmp_path: Path) -> AsyncIterator[tuple[SluiceApp, openai.AsyncOpenAI]]:
    async with running(make_settings(tmp_path)) as (app, _):
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
        client = openai.AsyncOpenAI(
            api_key=MASTER, base_url="http://gw/v1", http_client=http, max_retries=0
        )
        try:
            yield app, client
        finally:
            await http.aclose()


async def test_create_get_delete(sdk: tuple[SluiceApp, openai.AsyncOpenAI]) -> None:
    app, client = sdk
    resp = await client.responses.create(
        model="mock-gpt", input="Hello", instructions="Be brief.", max_output_tokens=5
    )
    assert resp.object == "response" and resp.id.startswith("resp_")
    assert resp.output_text == "Sluice relays this mock answer"
    assert resp.status == "incomplete"
    assert resp.incomplete_details is not None
    assert resp.incomplete_details.reason == "max_output_tokens"
    assert resp.usage is not None and resp.usage.output_tokens == 5
    fetched = await client.responses.retrieve(resp.id)
    assert fetched.output_text == resp.output_text
    await client.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(resp.id)
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    [row] = await rt.storage.usage.recent()
    assert (row.endpoint, row.status, row.completion_tokens) == ("responses", 200, 5)


async def test_previous_response_id_continues_the_conversation(
    sdk: tuple[SluiceApp, openai.AsyncOpenAI],
) -> None:
    _, client = sdk
    first = await client.responses.create(model="mock-gpt", input="x" * 400)
    second = await client.responses.create(
        model="mock-gpt", input="and then?", previous_response_id=first.id
    )
    assert first.usage is not None and second.usage is not None
    # The second call carries the first exchange (400 chars in, 64 words out) as context.
    assert second.usage.input_tokens > first.usage.input_tokens + 100
    with pytest.raises(openai.NotFoundError):
        await client.responses.create(model="mock-gpt", input="x", previous_response_id="resp_nope")


async def test_other_keys_cannot_see_a_response(sdk: tuple[SluiceApp, openai.AsyncOpenAI]) -> None:
    _, client = sdk
    resp = await client.responses.create(model="mock-gpt", input="secret")
    created = await client.post("/../api/v1/keys", body={"name": "other"}, cast_to=object)
    other = client.with_options(api_key=created["key"])  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        await other.responses.retrieve(resp.id)
    with pytest.raises(openai.NotFoundError):
        await other.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        await other.responses.create(model="mock-gpt", input="x", previous_response_id=resp.id)
    assert (await client.responses.retrieve(resp.id)).id == resp.id


async def test_streaming(sdk: tuple[SluiceApp, openai.AsyncOpenAI]) -> None:
    _, client = sdk
    stream = await client.responses.create(model="mock-gpt", input="Hi", stream=True)
    kinds: list[str] = []
    deltas: list[str] = []
    final = None
    async for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        if event.type == "response.completed":
            final = event.response
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert final is not None and final.output_text == "".join(deltas)
    assert final.usage is not None and final.usage.output_tokens == 64
    async with client.responses.stream(model="mock-gpt", input="Hi") as helper:
        async for _ in helper:
            pass
        done = await helper.get_final_response()
    assert done.output_text == final.output_text
    assert (await client.responses.retrieve(done.id)).output_text == done.output_text


async def test_function_calls(sdk: tuple[SluiceApp, openai.AsyncOpenAI]) -> None:
    _, client = sdk
    tools = [
        {
            "type": "function",
            "name": "lookup",
            "description": "Look up a word",
            "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
        }
    ]
    first = await client.responses.create(model="mock-gpt", input="define x", tools=tools)  # type: ignore[arg-type]
    call = first.output[0]
    assert call.type == "function_call" and call.name == "lookup"
    assert call.arguments == '{"word":"mock"}'
    follow = await client.responses.create(
        model="mock-gpt",
        previous_response_id=first.id,
        tools=tools,
        tool_choice="none",  # type: ignore[arg-type]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "a letter"}],
    )
    assert follow.output_text
    stream = await client.responses.create(
        model="mock-gpt", input="define x", tools=tools, stream=True
    )  # type: ignore[arg-type]
    args = "".join(
        [e.delta async for e in stream if e.type == "response.function_call_arguments.delta"]
    )
    assert args == '{"word":"mock"}'


async def test_bad_input_names_the_field(sdk: tuple[SluiceApp, openai.AsyncOpenAI]) -> None:
    _, client = sdk
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="mock-gpt", input=[{"role": "robot", "content": "x"}])  # type: ignore[list-item]
    assert info.value.param == "input[0].role"
    # A built-in tool is no longer refused: it is dropped, and the answer says so.
    raw = await client.responses.with_raw_response.create(
        model="mock-gpt", input="x", tools=[{"type": "web_search"}]
    )
    assert raw.headers["x-sluice-warning"] == "dropped: tool web_search"
    assert raw.parse().output_text


@pytest.fixture
async def native(tmp_path: Path) -> AsyncIterator[tuple[SluiceApp, openai.AsyncOpenAI]]:
    """A model behind an ``openai`` provider (it has a Responses API): requests pass through
    to the mock upstream's ``/v1/responses``."""
    async with mock_upstream() as upstream:
        config = f"""
providers:
  oa: {{type: openai, base_url: "{upstream}/v1", api_key: sk-up}}
  mock: {{type: mock}}
models:
  - name: gpt-native
    deployments: [{{provider: oa, model: "chat?completion_tokens=6"}}]
  - name: mock-gpt
    deployments: [{{provider: mock, model: chat}}]
"""
        async with running(make_settings(tmp_path), config) as (app, _):
            http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
            client = openai.AsyncOpenAI(
                api_key=MASTER, base_url="http://gw/v1", http_client=http, max_retries=0
            )
            try:
                yield app, client
            finally:
                await http.aclose()


async def test_native_pass_through(native: tuple[SluiceApp, openai.AsyncOpenAI]) -> None:
    app, client = native
    resp = await client.responses.create(model="gpt-native", input="Hello")
    assert resp.id.startswith("resp_") and len(resp.output_text.split()) == 6
    assert (await client.responses.retrieve(resp.id)).output_text == resp.output_text
    follow = await client.responses.create(
        model="gpt-native", input="more", previous_response_id=resp.id
    )
    assert follow.previous_response_id == resp.id  # the upstream received it as it was
    with pytest.raises(openai.BadRequestError) as mixed:
        await client.responses.create(model="mock-gpt", input="x", previous_response_id=resp.id)
    assert mixed.value.param == "previous_response_id"
    async with client.responses.stream(model="gpt-native", input="Hi") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert len(final.output_text.split()) == 6
    assert (await client.responses.retrieve(final.id)).id == final.id
    await client.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(resp.id)
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    rows = await rt.storage.usage.recent()
    assert {
        (r.endpoint, r.completion_tokens, r.tokens_estimated) for r in rows if r.status == 200
    } == {("responses", 6, False)}
