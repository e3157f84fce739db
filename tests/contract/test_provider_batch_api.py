"""The provider batch API seam (:class:`sluice.providers.batch_api.BatchApi`), one suite
over both implementations against ``sluice mock-upstream`` on loopback: submit, poll to the
end, read every answer back in OpenAI's shape, a failing line, cancel keeps what ran."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from sluice.config.providers import Timeouts, validate_provider
from sluice.errors import GatewayError
from sluice.providers.base import UpstreamCall
from sluice.providers.batch_api import BatchApi, BatchLine, UpstreamBatch
from sluice.providers.build import build_batch_api
from sluice.types import Endpoint, ProviderRequest
from tests.mock_upstream import mock_upstream

CASES: dict[str, Callable[[str], dict[str, Any]]] = {
    "openai": lambda base: {"type": "openai_compatible", "base_url": base + "/v1"},
    "anthropic": lambda base: {"type": "anthropic", "base_url": base},
}


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    async with mock_upstream() as base:
        yield base


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def _api(kind: str, base: str, **headers: str) -> BatchApi:
    api = build_batch_api("p", validate_provider({**CASES[kind](base), "headers": headers}))
    assert api is not None
    return api


def _call(session: aiohttp.ClientSession) -> UpstreamCall:
    return UpstreamCall(
        upstream_model="chat?completion_tokens=3",
        deployment="p/chat",
        request_id="batch_test",
        session=session,
        timeouts=Timeouts(total_s=10),
        credential="sk-test",
    )


def _line(custom_id: str, text: str = "hello") -> BatchLine:
    body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": text}]}
    return BatchLine(custom_id, ProviderRequest(Endpoint.CHAT, body, orjson.dumps(body), "m"))


async def _until_ended(api: BatchApi, batch_id: str, call: UpstreamCall) -> UpstreamBatch:
    for _ in range(20):
        state = await api.poll(batch_id, call)
        if state.ended:
            return state
    raise AssertionError("the upstream batch never ended")


@pytest.mark.parametrize("kind", sorted(CASES))
async def test_submit_poll_and_read_every_answer(
    kind: str, upstream: str, session: aiohttp.ClientSession
) -> None:
    api, call = _api(kind, upstream, **{"x-mock-batch-per-poll": "1"}), _call(session)
    batch_id = await api.submit(
        [_line("l1"), _line("l2", "mock_batch_line=fail"), _line("l3")], call
    )
    first = await api.poll(batch_id, call)
    assert not first.ended  # one line per poll
    state = await _until_ended(api, batch_id, call)
    assert state.failed is None
    results = {r.custom_id: r for r in await api.results(state, call)}
    assert sorted(results) == ["l1", "l2", "l3"]
    ok = orjson.loads(results["l1"].body)
    assert ok["object"] == "chat.completion"
    assert ok["choices"][0]["message"]["content"]
    assert results["l1"].status == 200
    assert results["l1"].usage is not None
    assert results["l1"].usage.completion_tokens == 3
    assert results["l2"].status == 400
    assert results["l2"].usage is None
    assert "this line fails" in orjson.loads(results["l2"].body)["error"]["message"]


@pytest.mark.parametrize("kind", sorted(CASES))
async def test_cancel_keeps_the_answers_given_before_it(
    kind: str, upstream: str, session: aiohttp.ClientSession
) -> None:
    api, call = _api(kind, upstream, **{"x-mock-batch-per-poll": "1"}), _call(session)
    batch_id = await api.submit([_line("l1"), _line("l2"), _line("l3")], call)
    assert not (await api.poll(batch_id, call)).ended
    await api.cancel(batch_id, call)
    state = await _until_ended(api, batch_id, call)
    results = await api.results(state, call)
    assert [r.custom_id for r in results] == ["l1"]
    await api.cancel(batch_id, call)  # an ended batch: not an error


@pytest.mark.parametrize("kind", sorted(CASES))
async def test_an_unknown_batch_is_an_error_of_the_tree(
    kind: str, upstream: str, session: aiohttp.ClientSession
) -> None:
    api, call = _api(kind, upstream), _call(session)
    with pytest.raises(GatewayError):
        await api.poll("batch_nope", call)


async def test_a_batch_failed_upstream_says_why(
    upstream: str, session: aiohttp.ClientSession
) -> None:
    api, call = _api("openai", upstream, **{"x-mock-batch-fail": "1"}), _call(session)
    batch_id = await api.submit([_line("l1")], call)
    state = await _until_ended(api, batch_id, call)
    assert state.status == "failed"
    assert state.failed == "mock upstream: the batch failed"
    assert await api.results(state, call) == []
