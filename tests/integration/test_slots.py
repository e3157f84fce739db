"""Limits and budgets are settled before the last byte of an answer leaves, on both backends,
streamed or not, whatever the answer: so a client that sends its next request the moment
the previous one ended never finds its own ``max_parallel`` slot still taken."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from sluice.app import SluiceApp
from sluice.limits.redis import RedisLimiter
from sluice.settings import Settings
from tests.e2e.support import sse_payloads
from tests.integration.conftest import make_settings, running
from tests.services import PrivateRedis

CONFIG = """
routing:
  retries: 0
providers:
  PROVIDER: {type: mock}
models:
  - name: m
    deployments: [{provider: PROVIDER, model: "chat?chunks=4"}]
    prices: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
  - name: cut
    deployments: [{provider: PROVIDER, model: "chat?cut=2"}]
    prices: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
  - name: broken
    deployments: [{provider: PROVIDER, model: "chat?status=503"}]
    prices: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
  - name: slow-stream
    deployments: [{provider: PROVIDER, model: "chat?chunks=40&chunk_delay_ms=50"}]
    prices: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
"""


@pytest.fixture(params=["memory", "redis"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "memory":
        return make_settings(tmp_path)
    return make_settings(tmp_path, redis_url=request.getfixturevalue("redis_url"))


@dataclass
class AtLastByte:
    status: int = 0
    slots_free: int | None = None
    spent_micros: int | None = None
    body: bytes = b""
    last: bytes = b""
    """The body of the last message (the bytes that left after the check)."""


def _scope(token: str, raw: bytes, path: str = "/v1/chat/completions") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gw"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("gw", 80),
    }


async def _call(
    app: SluiceApp,
    token: str,
    body: dict[str, Any],
    *,
    path: str = "/v1/chat/completions",
    terminal: bytes | None = None,
) -> AtLastByte:
    """One request straight through the ASGI app; when the message with the last body
    bytes (or the first holding ``terminal``, a stream's terminal event) is sent, read the
    key's free slots and settled spend."""
    rt = app.runtime
    assert rt is not None
    principal = rt.keys.authenticate(token)
    checks = principal.checks_for(body["model"])
    [(budget_scope, budget_spec)] = principal.budget_checks
    raw = orjson.dumps(body)
    scope = _scope(token, raw, path)
    seen = AtLastByte()
    delivered = False
    parts: list[bytes] = []

    async def receive() -> MutableMapping[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.get_running_loop().create_future()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen.status = message["status"]
            return
        data = message.get("body", b"")
        parts.append(data)
        at_end = terminal in data if terminal is not None else not message.get("more_body")
        if at_end and seen.slots_free is None:
            seen.last = data
            status = await rt.limiter.remaining(checks)
            assert status.slots is not None
            seen.slots_free = status.slots.remaining
            seen.spent_micros = await rt.budgets.spent(budget_scope, budget_spec)

    async with asyncio.timeout(30):
        await app(scope, receive, send)
    seen.body = b"".join(parts)
    return seen


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[tuple[SluiceApp, str]]:
    # Breakers live in the shared Redis, keyed by deployment: a provider name of this run's own
    # keeps them apart from other runs' (whose failing models may have opened theirs).
    config = CONFIG.replace("PROVIDER", f"mock-{uuid.uuid4().hex[:8]}")
    async with running(settings, config) as (app, client):
        created = await client.post(
            "/api/v1/keys",
            json={
                "name": "sequential",
                "limits": {"max_parallel": 1},
                "budget": {"usd": 100.0, "period": "month"},
            },
        )
        assert created.status_code == 201, created.text
        yield app, created.json()["key"]


@pytest.mark.parametrize(
    ("model", "stream", "status", "used"),
    [
        ("m", False, 200, True),
        ("m", True, 200, True),
        ("cut", True, 200, True),  # an upstream failure after the first byte: in-band error
        ("broken", False, 502, False),  # refused upstream (503 there, 502 here): nothing used
    ],
)
async def test_limits_and_budget_are_settled_before_the_last_byte(
    gateway: tuple[SluiceApp, str], model: str, stream: bool, status: int, used: bool
) -> None:
    app, token = gateway
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    spent = 0
    for _ in range(3):
        seen = await _call(app, token, body)
        assert seen.status == status, seen.body
        assert seen.slots_free == 1  # the slot was free before the last byte went out
        assert seen.spent_micros is not None
        if used:
            assert seen.spent_micros > spent  # this request's cost was already settled
        else:
            assert seen.spent_micros == spent == 0
        spent = seen.spent_micros
    if stream and model == "cut":
        assert b'"error"' in seen.last  # the terminal error event left after the settle
    elif stream:
        assert seen.last.endswith(b"data: [DONE]\n\n")  # so did the terminal event
        assert seen.body.count(b"[DONE]") == 1
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    rows = await rt.storage.usage.recent(limit=100)
    assert len(rows) == 3
    assert sum(r.cost_micros or 0 for r in rows) == spent


@pytest.mark.parametrize("how", ["client disconnects", "task cancelled"])
async def test_a_stream_ended_early_frees_its_slot_and_bills_what_was_used(
    gateway: tuple[SluiceApp, str], how: str
) -> None:
    app, token = gateway
    rt = app.runtime
    assert rt is not None
    principal = rt.keys.authenticate(token)
    checks = principal.checks_for("slow-stream")
    [(budget_scope, budget_spec)] = principal.budget_checks
    body = {"model": "slow-stream", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    raw = orjson.dumps(body)
    chunks = 0
    some_sent = asyncio.Event()
    delivered = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await some_sent.wait()
        if how == "client disconnects":
            return {"type": "http.disconnect"}
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal chunks
        if message["type"] == "http.response.body" and message.get("body"):
            chunks += 1
            if chunks == 3:
                some_sent.set()

    task = asyncio.ensure_future(app(_scope(token, raw), receive, send))
    async with asyncio.timeout(30):
        if how == "task cancelled":  # as the server does at the shutdown deadline
            await some_sent.wait()
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert chunks < 40  # it did end early
    status = await rt.limiter.remaining(checks)
    assert status.slots is not None and status.slots.remaining == 1
    spent = await rt.budgets.spent(budget_scope, budget_spec)
    assert spent > 0  # the tokens streamed before the end are billed
    await rt.usage.flush()
    [row] = await rt.storage.usage.recent(limit=10)
    assert row.cost_micros == spent


async def test_a_redis_stall_during_a_release_does_not_lock_the_key_out(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    """Redis freezes while a stream is running, so its release at the end times out. Once
    Redis thaws, the owed release is sent again and the key is usable at once, not after a
    lease (let alone the 15 minutes it used to take)."""
    settings = make_settings(tmp_path, redis_url=private_redis.url, redis_slot_lease_s=3)
    config = CONFIG.replace("PROVIDER", "mock")
    async with running(settings, config) as (app, client):
        rt = app.runtime
        assert rt is not None
        limiter = rt.limiter
        assert isinstance(limiter, RedisLimiter)
        created = await client.post(
            "/api/v1/keys", json={"name": "stalled", "limits": {"max_parallel": 1}}
        )
        assert created.status_code == 201, created.text
        auth = {"Authorization": f"Bearer {created.json()['key']}"}
        checks = rt.keys.authenticate(created.json()["key"]).checks_for("slow-stream")
        body = {
            "model": "slow-stream",
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        }
        streaming = asyncio.ensure_future(
            client.post("/v1/chat/completions", json=body, headers=auth)
        )
        await _until(lambda: limiter.leases.held == 1, timeout_s=10)  # the stream holds it
        private_redis.freeze()
        try:
            async with asyncio.timeout(20):
                answer = await streaming  # its release at the end hits the frozen Redis
            assert answer.status_code == 200
            assert sse_payloads(answer.text)[-1] == "[DONE]"
            assert (limiter.leases.owed.pending, limiter.leases.held) == (1, 0)
        finally:
            private_redis.thaw()
        await _until(lambda: limiter.leases.owed.pending == 0, timeout_s=20)  # sent again
        status = await limiter.remaining(checks)
        assert status.slots is not None and status.slots.remaining == 1
        chat = {"model": "m", "messages": [{"role": "user", "content": "again"}]}
        assert (
            await client.post("/v1/chat/completions", json=chat, headers=auth)
        ).status_code == 200


async def _until(check: Callable[[], bool], *, timeout_s: float) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not so within {timeout_s} s")


@pytest.mark.parametrize(
    ("path", "body", "terminal"),
    [
        (
            "/v1/messages",
            {
                "model": "m",
                "max_tokens": 16,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
            b"event: message_stop",
        ),
        (
            "/v1/responses",
            {"model": "m", "stream": True, "input": "hi"},
            b"event: response.completed",
        ),
    ],
)
async def test_a_stream_whose_terminal_event_is_a_piece_is_settled_before_it(
    gateway: tuple[SluiceApp, str], path: str, body: dict[str, Any], terminal: bytes
) -> None:
    """Anthropic Messages and Responses streams end with an event of their own format (no
    tail of the gateway's): the request is settled before that event leaves."""
    app, token = gateway
    spent = 0
    for _ in range(3):
        seen = await _call(app, token, body, path=path, terminal=terminal)
        assert seen.status == 200, seen.body
        assert terminal in seen.last
        assert seen.slots_free == 1
        assert seen.spent_micros is not None and seen.spent_micros > spent
        spent = seen.spent_micros
