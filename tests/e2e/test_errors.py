"""Failures as the SDK's typed exceptions, and streams that fail after their first byte."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.e2e.conftest import MAX_BODY_BYTES
from tests.e2e.support import Gateway, assert_no_row, sse_payloads, wait_row

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "hello"}]


def rid(exc: openai.APIStatusError) -> str:
    request_id = exc.response.headers.get("x-request-id")
    assert request_id and request_id.startswith("req_"), exc.response.headers
    return request_id


async def test_bad_key_is_authentication_error(gateway: Gateway) -> None:
    bogus = "sk-slc-aaaaaaaaaaaa-" + "b" * 40
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key=bogus, max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as info:
            await client.chat.completions.create(model="m-chat", messages=MESSAGES)
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert info.value.type == "authentication_error"
    # An unauthenticated request is not a usage row.
    await assert_no_row(gateway.db_path, rid(info.value))


async def test_missing_key_is_401(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as client:
        resp = await client.post("/v1/chat/completions", json={"model": "m-chat"})
    assert resp.status_code == 401
    assert resp.json()["error"]["type"] == "authentication_error"


async def test_missing_field_names_param(aclient: openai.AsyncOpenAI, gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await aclient.post("/chat/completions", body={"model": "m-chat"}, cast_to=object)
    assert info.value.status_code == 400
    assert info.value.param == "messages"
    assert info.value.type == "invalid_request_error"
    row = await wait_row(gateway.db_path, request_id=rid(info.value))
    assert row["status"] == 400
    assert row["error_kind"] == "caller_bad_request"
    assert row["attempts"] == 0

    with pytest.raises(openai.BadRequestError) as info:
        await aclient.chat.completions.create(
            model="m-chat",
            messages=[{"content": "no role"}],  # type: ignore[list-item]
        )
    assert info.value.param == "messages[0].role"

    with pytest.raises(openai.BadRequestError) as info:
        await aclient.embeddings.create(model="m-embed", input="")
    assert info.value.param == "input"

    with pytest.raises(openai.BadRequestError) as info:
        await aclient.chat.completions.create(model="m-chat", messages=MESSAGES, max_tokens=0)
    assert info.value.param == "max_tokens"


async def test_invalid_json_is_400(http: httpx.AsyncClient) -> None:
    resp = await http.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"


async def test_unknown_model_is_not_found(aclient: openai.AsyncOpenAI, gateway: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await aclient.chat.completions.create(model="gpt-nonexistent", messages=MESSAGES)
    assert info.value.param == "model"
    assert info.value.code == "model_not_found"
    row = await wait_row(gateway.db_path, request_id=rid(info.value))
    assert row["status"] == 404
    assert row["model"] == "gpt-nonexistent"


async def test_upstream_429_is_rate_limit_error(
    aclient: openai.AsyncOpenAI, gateway: Gateway
) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        await aclient.chat.completions.create(model="m-429", messages=MESSAGES)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "2"
    assert "mock upstream scripted error 429" in info.value.message
    row = await wait_row(gateway.db_path, request_id=rid(info.value))
    assert row["status"] == 429
    assert row["error_kind"] == "provider_rate_limited"
    assert row["provider"] == "up"


async def test_upstream_500_is_bad_gateway(aclient: openai.AsyncOpenAI, gateway: Gateway) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        await aclient.chat.completions.create(model="m-500", messages=MESSAGES)
    assert info.value.status_code == 502  # 500 would mean a bug in Sluice
    row = await wait_row(gateway.db_path, request_id=rid(info.value))
    assert row["status"] == 502
    assert row["error_kind"] == "provider_error"


async def test_upstream_400_passes_the_provider_message(aclient: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await aclient.chat.completions.create(model="m-400", messages=MESSAGES)
    assert info.value.status_code == 400
    assert isinstance(info.value.body, dict)
    assert info.value.body["message"] == "mock upstream scripted error 400"
    assert info.value.body["type"] == "invalid_request_error"


async def test_upstream_errors_before_a_stream_are_http_errors(
    aclient: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.RateLimitError):
        await aclient.chat.completions.create(model="m-429", messages=MESSAGES, stream=True)
    with pytest.raises(openai.InternalServerError):
        await aclient.chat.completions.create(model="m-500", messages=MESSAGES, stream=True)


async def test_upstream_timeout_is_504(aclient: openai.AsyncOpenAI, gateway: Gateway) -> None:
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        await aclient.chat.completions.create(model="m-timeout", messages=MESSAGES)
    elapsed = time.monotonic() - started
    assert info.value.status_code == 504
    assert info.value.type == "timeout_error"
    assert elapsed < 3.0, f"ttfb_s is 1 s but the gateway answered after {elapsed:.2f} s"
    row = await wait_row(gateway.db_path, request_id=rid(info.value))
    assert row["status"] == 504
    assert row["error_kind"] == "provider_timeout"


async def test_unreachable_upstream_is_502(aclient: openai.AsyncOpenAI, gateway: Gateway) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        await aclient.chat.completions.create(model="m-down", messages=MESSAGES)
    assert info.value.status_code == 502
    assert "sk-upstream" not in info.value.response.text
    row = await wait_row(gateway.db_path, request_id=rid(info.value))
    assert row["status"] == 502
    assert row["error_kind"] == "provider_unreachable"


async def test_body_over_limit_is_413(aclient: openai.AsyncOpenAI, gateway: Gateway) -> None:
    big = "x" * (MAX_BODY_BYTES + 1000)
    with pytest.raises(openai.APIStatusError) as info:
        await aclient.chat.completions.create(
            model="m-chat", messages=[{"role": "user", "content": big}]
        )
    assert info.value.status_code == 413
    row = await wait_row(gateway.db_path, request_id=rid(info.value))
    assert row["status"] == 413
    assert row["error_kind"] == "caller_payload_too_large"


async def test_chunked_body_over_limit_is_413(http: httpx.AsyncClient) -> None:
    """No Content-Length: the limit must hold while the body is read."""
    payload = json.dumps(
        {"model": "m-chat", "messages": [{"role": "user", "content": "y" * 3 * MAX_BODY_BYTES}]}
    ).encode()

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(payload), 16384):
            yield payload[i : i + 16384]

    try:
        resp = await http.post(
            "/v1/chat/completions",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
    except httpx.WriteError:
        pytest.fail("the gateway closed the connection instead of answering 413")
    assert resp.status_code == 413


# --- failures after the first byte ----------------------------------------------------------

# model → (content chunks before the failure, error kind, status recorded)
PACED = {
    "m-cut-paced": (3, "provider_stream_interrupted", 502),
    "m-stall-paced": (2, "provider_timeout", 504),
    "m-malformed-paced": (2, "provider_bad_response", 502),
}


async def _raw_stream(http: httpx.AsyncClient, model: str) -> tuple[int, str, str]:
    body = {"model": model, "messages": MESSAGES, "stream": True}
    async with http.stream("POST", "/v1/chat/completions", json=body) as resp:
        raw = "".join([part async for part in resp.aiter_text()])
        return resp.status_code, resp.headers.get("x-request-id", ""), raw


@pytest.mark.parametrize("model", sorted(PACED))
async def test_mid_stream_failure_ends_with_error_event(
    http: httpx.AsyncClient, gateway: Gateway, model: str
) -> None:
    chunks_before, kind, status = PACED[model]
    code, request_id, raw = await _raw_stream(http, model)
    assert code == 200  # the stream had started
    payloads = sse_payloads(raw)
    assert "[DONE]" not in payloads, "a failed stream must not end cleanly"
    last = json.loads(payloads[-1])
    assert set(last) == {"error"}, last
    assert last["error"]["code"] == kind
    assert last["error"]["message"]
    content = [json.loads(p) for p in payloads[:-1]]
    assert len(content) == chunks_before
    assert all("error" not in c for c in content)

    row = await wait_row(gateway.db_path, request_id=request_id)
    assert row["status"] == status
    assert row["error_kind"] == kind
    assert row["streamed"] == 1
    assert row["completion_tokens"] > 0
    assert row["tokens_estimated"] == 1


@pytest.mark.parametrize("model", sorted(PACED))
async def test_mid_stream_failure_raises_in_sdk(aclient: openai.AsyncOpenAI, model: str) -> None:
    stream = await aclient.chat.completions.create(model=model, messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIError) as info:
        async for chunk in stream:
            received.append(chunk)
    assert received, "content chunks arrive before the error"
    assert info.value.code == PACED[model][1]


@pytest.mark.parametrize("model", ["m-cut", "m-stall", "m-malformed"])
async def test_unpaced_stream_failures_never_end_cleanly(
    http: httpx.AsyncClient, model: str
) -> None:
    """The brief's exact scripts: the failure may land before the first byte (then it is an
    HTTP error) or after it (then an error event); never a clean ``[DONE]``."""
    code, _, raw = await _raw_stream(http, model)
    if code == 200:
        payloads = sse_payloads(raw)
        assert "[DONE]" not in payloads
        assert set(json.loads(payloads[-1])) == {"error"}
    else:
        assert code in (502, 504)
        assert set(json.loads(raw)) == {"error"}


async def test_stream_total_deadline_ends_with_error_event(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    """``fast`` has ``total_s: 3``; this stream would take 10 s with chunks well inside
    ``idle_s``, so only the total deadline can end it."""
    started = time.monotonic()
    code, request_id, raw = await _raw_stream(http, "m-slow-stream-fast")
    elapsed = time.monotonic() - started
    assert code == 200
    assert 2.5 < elapsed < 5.0, elapsed
    payloads = sse_payloads(raw)
    assert "[DONE]" not in payloads
    assert json.loads(payloads[-1])["error"]["code"] == "provider_timeout"
    row = await wait_row(gateway.db_path, request_id=request_id)
    assert row["status"] == 504
    assert row["error_kind"] == "provider_timeout"
    assert row["completion_tokens"] > 0


async def test_unknown_route_and_method_are_openai_shaped(http: httpx.AsyncClient) -> None:
    resp = await http.post("/v1/no-such-route", json={})
    assert resp.status_code == 404
    assert set(resp.json()["error"]) == {"message", "type", "param", "code"}
    resp = await http.get("/v1/chat/completions")
    assert resp.status_code == 405
    assert resp.json()["error"]["type"] == "invalid_request_error"


async def test_embeddings_cannot_stream(http: httpx.AsyncClient) -> None:
    resp = await http.post(
        "/v1/embeddings", json={"model": "m-embed", "input": "x", "stream": True}
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "stream"
