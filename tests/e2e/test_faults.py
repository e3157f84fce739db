"""Faults answer with the status a client can act on (issue #12, point 5), end to end: a real
``sluice serve`` in front of ``sluice mock-upstream`` scripted to fail."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import stop_gateway
from tests.e2e.support import Gateway, sse_payloads, start_gateway, wait_row

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "hello"}]
UPSTREAM_KEY = "sk-upstream-faults-0123456789"
BODY_CAP = 1024 * 1024
EVENT_CAP = 256 * 1024
FIFTY_MB = 50 * 1024 * 1024

MODELS = {
    "f-401": "chat?status=401",
    "f-403": "chat?status=403",
    "f-500": "chat?status=500",
    "f-503": "chat?status=503",
    "f-big": f"chat?pad_bytes={FIFTY_MB}",
    "f-big-chunked": f"chat?pad_bytes={FIFTY_MB}&chunked=1",
    "f-big-event": f"chat?pad_bytes={2 * EVENT_CAP}",
    "f-no-done": "chat?no_done=1",
    "f-malformed-one-read": "chat?malformed=2&one_write=1",
}


def config(mock_port: int) -> str:
    up = f"http://127.0.0.1:{mock_port}/v1"
    lines = [
        "routing:",
        "  retries: 2",
        "  backoff_base_s: 0",
        "  breaker: {failures: 4, cooldown_s: 60, min_requests: 100}",
        "providers:",
        f"  up: {{type: openai_compatible, base_url: '{up}', api_key: {UPSTREAM_KEY}}}",
        f"  nokey: {{type: openai, base_url: '{up}', api_key: 'env:SLUICE_TEST_FAULTS_UNSET'}}",
        "models:",
        "  - name: f-nokey",
        "    deployments: [{provider: nokey, model: chat}]",
    ]
    for name, script in MODELS.items():
        retries = 2 if name == "f-500" else 0
        lines.append(f"  - name: {name}")
        lines.append(f"    deployments: [{{provider: up, model: '{script}', retries: {retries}}}]")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def faults_gateway(
    tmp_path_factory: pytest.TempPathFactory, mock_port: int, down_port: int, echo_port: int
) -> Iterator[Gateway]:
    gw = start_gateway(
        tmp_path_factory.mktemp("faults"),
        mock_port,
        down_port,
        echo_port,
        config_text=config(mock_port),
        SLUICE_MAX_UPSTREAM_BODY_BYTES=str(BODY_CAP),
        SLUICE_MAX_UPSTREAM_EVENT_BYTES=str(EVENT_CAP),
    )
    try:
        yield gw
    finally:
        if gw.proc.alive():
            stop_gateway(gw)


@pytest.fixture
async def client(faults_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=faults_gateway.base_url,
        headers={"Authorization": f"Bearer {faults_gateway.key}"},
        timeout=30.0,
    ) as c:
        yield c


async def chat(client: httpx.AsyncClient, model: str, **extra: object) -> httpx.Response:
    return await client.post(
        "/v1/chat/completions", json={"model": model, "messages": MESSAGES, **extra}
    )


@pytest.mark.parametrize("model", ["f-401", "f-403"])
async def test_a_refused_provider_credential_is_502_provider_auth_error(
    client: httpx.AsyncClient, faults_gateway: Gateway, model: str
) -> None:
    resp = await chat(client, model)
    assert resp.status_code == 502  # not 401/403: the caller's own key is fine
    error = resp.json()["error"]
    assert error["code"] == "provider_auth_error"
    assert error["type"] == "api_error"
    assert f"deployment up/{MODELS[model]}" in error["message"]
    assert "scripted error" not in resp.text  # the provider's text is never echoed
    assert UPSTREAM_KEY not in resp.text
    row = await wait_row(faults_gateway.db_path, request_id=resp.headers["x-request-id"])
    assert row["status"] == 502
    assert row["error_kind"] == "provider_auth_error"
    assert "scripted error" not in (row["error_message"] or "")
    log = faults_gateway.proc.log()
    warning = [ln for ln in log.splitlines() if "refused the gateway's credential" in ln]
    assert any(f"up/{MODELS[model]}" in ln and "WARNING" in ln for ln in warning), log[-3000:]
    assert UPSTREAM_KEY not in log

    # The Anthropic-shaped route says the same in its own envelope.
    resp = await client.post(
        "/v1/messages", json={"model": model, "max_tokens": 5, "messages": MESSAGES}
    )
    assert resp.status_code == 502
    assert resp.json()["error"]["type"] == "api_error"
    assert "scripted error" not in resp.text


async def test_an_upstream_5xx_after_retries_is_502(
    client: httpx.AsyncClient, faults_gateway: Gateway
) -> None:
    resp = await chat(client, "f-500")
    assert resp.status_code == 502  # a bad gateway, not a 500 (which is a bug in Sluice)
    assert resp.json()["error"]["code"] == "provider_error"
    row = await wait_row(faults_gateway.db_path, request_id=resp.headers["x-request-id"])
    assert row["status"] == 502
    assert row["attempts"] == 3  # the first try and routing.retries: 2


async def test_every_503_carries_retry_after(
    client: httpx.AsyncClient, faults_gateway: Gateway
) -> None:
    # No healthy deployment: the upstream's 503s (502 to the client) open the breaker.
    statuses = [(await chat(client, "f-503")).status_code for _ in range(4)]
    assert statuses == [502] * 4
    resp = await chat(client, "f-503")
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "no_healthy_deployment"
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    # A 503 without a hint of its own (the provider's credential is not configured) gets
    # the default.
    resp = await chat(client, "f-nokey")
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "2"


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.parametrize("model", ["f-big", "f-big-chunked"])
async def test_a_50_mb_answer_is_refused_within_the_cap(
    client: httpx.AsyncClient, faults_gateway: Gateway, model: str
) -> None:
    """Peak memory of the gateway process grows by far less than the answer: it read at most
    the cap (1 MiB) of it, with or without ``Content-Length``."""
    pid = faults_gateway.proc.popen.pid
    before = _peak_rss_bytes(pid)
    resp = await chat(client, model)
    assert resp.status_code == 502
    error = resp.json()["error"]
    assert error["code"] == "provider_bad_response"
    assert "SLUICE_MAX_UPSTREAM_BODY_BYTES" in error["message"]
    grown = _peak_rss_bytes(pid) - before
    assert grown < FIFTY_MB // 3, f"peak RSS grew by {grown} bytes"
    row = await wait_row(faults_gateway.db_path, request_id=resp.headers["x-request-id"])
    assert row["status"] == 502
    assert row["error_kind"] == "provider_bad_response"
    # The connection was dropped, not reused half read: the next answer is whole.
    assert (await chat(client, "f-no-done")).status_code == 200


async def test_a_stream_event_over_the_cap_is_refused(
    client: httpx.AsyncClient, faults_gateway: Gateway
) -> None:
    resp = await chat(client, "f-big-event", stream=True)
    assert resp.status_code == 502  # the oversized event was the first: nothing was sent yet
    assert "SLUICE_MAX_UPSTREAM_EVENT_BYTES" in resp.json()["error"]["message"]
    row = await wait_row(faults_gateway.db_path, request_id=resp.headers["x-request-id"])
    assert row["error_kind"] == "provider_bad_response"


async def test_a_stream_with_finish_and_usage_but_no_done_is_complete(
    client: httpx.AsyncClient, faults_gateway: Gateway
) -> None:
    body = {"model": "f-no-done", "messages": MESSAGES, "stream": True}
    async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
        raw = "".join([part async for part in resp.aiter_text()])
    assert resp.status_code == 200
    payloads = sse_payloads(raw)
    assert payloads[-1] == "[DONE]"  # the client gets a clean end
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all("error" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    row = await wait_row(faults_gateway.db_path, request_id=resp.headers["x-request-id"])
    assert row["status"] == 200
    assert row["error_kind"] is None
    assert row["partial"] == 0
    assert row["tokens_estimated"] == 0  # the provider's own usage
    assert row["completion_tokens"] == 64


async def test_valid_chunks_in_the_read_of_a_malformed_one_are_delivered(
    client: httpx.AsyncClient, faults_gateway: Gateway
) -> None:
    body = {"model": "f-malformed-one-read", "messages": MESSAGES, "stream": True}
    async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
        raw = "".join([part async for part in resp.aiter_text()])
    assert resp.status_code == 200
    payloads = sse_payloads(raw)
    assert "[DONE]" not in payloads
    *content, last = [json.loads(p) for p in payloads]
    assert len(content) == 2  # the two chunks before the malformed one
    assert content[0]["choices"][0]["delta"]["content"]
    assert last["error"]["code"] == "provider_bad_response"
    row = await wait_row(faults_gateway.db_path, request_id=resp.headers["x-request-id"])
    assert row["status"] == 502
    assert row["error_kind"] == "provider_bad_response"
    assert row["partial"] == 1
