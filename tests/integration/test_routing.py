"""Retries, fallbacks, deadlines and breakers in the request path (in-process mock).

The gateway runs on a fake clock: back-off between retries moves the clock instead of waiting,
so the default back-off is exercised and asserted without real time passing."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest

from sluice.app import SluiceApp
from sluice.clock import FakeClock
from tests.integration.conftest import make_settings, running

CONFIG = """
routing:
  retries: 2
  breaker: {failures: 3, cooldown_s: 60, min_requests: 100}
providers:
  mock: {type: mock}
models:
  - name: flaky
    deployments: [{provider: mock, model: "chat?flaky=2"}]
  - name: failover
    strategy: priority
    deployments:
      - {provider: mock, model: "chat?status=503", id: bad, retries: 0}
      - {provider: mock, model: "chat", id: good}
  - name: primary-down
    deployments: [{provider: mock, model: "chat?status=500", id: primary, retries: 0}]
    fallbacks: [backup]
  - name: backup
    deployments: [{provider: mock, model: "chat?completion_tokens=7", id: backup}]
  - name: small-context
    deployments:
      - {provider: mock, model: "chat?status=400&error_code=context_length_exceeded"}
    context_window_fallbacks: [big-context]
  - name: big-context
    deployments: [{provider: mock, model: "chat?completion_tokens=9"}]
  - name: bad-request
    deployments: [{provider: mock, model: "chat?status=400"}]
    fallbacks: [backup]
  - name: always-down
    deployments: [{provider: mock, model: "chat?status=503", retries: 0}]
  - name: refused-then-ok
    strategy: priority
    deployments:
      - {provider: mock, model: "chat?status=401", id: refused}
      - {provider: mock, model: "chat?completion_tokens=5", id: accepted}
  - name: refused
    deployments: [{provider: mock, model: "chat?status=403"}]
  - name: long-retry-after
    deployments: [{provider: mock, model: "chat?status=429&retry_after_s=100", retries: 3}]
  - name: rate-limited
    deployments: [{provider: mock, model: "chat?flaky=1&status=429&retry_after_s=1.5"}]
"""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _body(model: str, **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


async def _row(app: SluiceApp, request_id: str) -> object:
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    return next(r for r in await rt.storage.usage.recent(limit=1000) if r.request_id == request_id)


async def _post(client: httpx.AsyncClient, model: str, **extra: object) -> httpx.Response:
    return await client.post("/v1/chat/completions", json=_body(model, **extra))


async def test_a_retry_stops_when_the_breaker_opened(tmp_path: Path, clock: FakeClock) -> None:
    config = CONFIG.replace("failures: 3", "failures: 2")
    async with running(make_settings(tmp_path), config, clock=clock) as (app, client):
        resp = await _post(client, "flaky")  # fails twice: the breaker opens, no third try
        assert resp.status_code == 502  # the upstream's last 503: a bad gateway
        row = await _row(app, resp.headers["x-request-id"])
        assert row.attempts == 2  # type: ignore[attr-defined]


async def test_retries_on_the_same_deployment(tmp_path: Path, clock: FakeClock) -> None:
    async with running(make_settings(tmp_path), CONFIG, clock=clock) as (app, client):
        resp = await _post(client, "flaky")
        assert resp.status_code == 200
        row = await _row(app, resp.headers["x-request-id"])
        assert row.attempts == 3  # type: ignore[attr-defined]
        assert row.attempt_errors == ["mock/chat?flaky=2: provider_unavailable"] * 2  # type: ignore[attr-defined]
        assert row.completion_tokens == 64 and row.status == 200  # type: ignore[attr-defined]
    # the default back-off (0.25 s doubling, half of it jitter), waited on the fake clock
    first, second = clock.sleeps
    assert 0.125 <= first <= 0.25 and 0.25 <= second <= 0.5


async def test_a_retry_after_within_the_cap_is_waited_for(tmp_path: Path, clock: FakeClock) -> None:
    async with running(make_settings(tmp_path), CONFIG, clock=clock) as (app, client):
        resp = await _post(client, "rate-limited")
        assert resp.status_code == 200
        row = await _row(app, resp.headers["x-request-id"])
        assert row.attempts == 2  # type: ignore[attr-defined]
    assert clock.sleeps == [1.5]  # the upstream's Retry-After, not the back-off


async def test_failover_to_the_next_deployment_streaming_too(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running(make_settings(tmp_path), CONFIG, clock=clock) as (app, client):
        resp = await _post(client, "failover")
        assert resp.status_code == 200 and resp.headers["x-sluice-deployment"] == "good"
        row = await _row(app, resp.headers["x-request-id"])
        assert row.attempt_errors == ["bad: provider_unavailable"]  # type: ignore[attr-defined]
        assert row.deployment == "good"  # type: ignore[attr-defined]
        streamed = await _post(client, "failover", stream=True)
        assert streamed.status_code == 200 and streamed.text.endswith("data: [DONE]\n\n")


async def test_fallback_model_after_every_deployment_failed(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running(make_settings(tmp_path), CONFIG, clock=clock) as (app, client):
        resp = await _post(client, "primary-down")
        assert resp.status_code == 200 and resp.headers["x-sluice-deployment"] == "backup"
        assert resp.json()["usage"]["completion_tokens"] == 7
        row = await _row(app, resp.headers["x-request-id"])
        assert (row.model, row.deployment, row.attempts) == ("primary-down", "backup", 2)  # type: ignore[attr-defined]
        assert row.cost_micros is not None  # type: ignore[attr-defined]


async def test_context_window_fallback(tmp_path: Path, clock: FakeClock) -> None:
    async with running(make_settings(tmp_path), CONFIG, clock=clock) as (_, client):
        resp = await _post(client, "small-context")
        assert resp.status_code == 200 and resp.json()["usage"]["completion_tokens"] == 9


async def test_other_4xx_are_never_retried_or_fallen_back(tmp_path: Path, clock: FakeClock) -> None:
    async with running(make_settings(tmp_path), CONFIG, clock=clock) as (app, client):
        resp = await _post(client, "bad-request")
        assert resp.status_code == 400
        row = await _row(app, resp.headers["x-request-id"])
        assert row.attempts == 1  # type: ignore[attr-defined]


async def test_retry_after_above_the_cap_is_not_waited_for(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running(make_settings(tmp_path), CONFIG, clock=clock) as (app, client):
        started = time.monotonic()
        resp = await _post(client, "long-retry-after")
        assert resp.status_code == 429 and time.monotonic() - started < 5
        row = await _row(app, resp.headers["x-request-id"])
        assert row.attempts == 1  # type: ignore[attr-defined]
    assert clock.sleeps == []


async def test_open_breakers_answer_503_at_once(tmp_path: Path, clock: FakeClock) -> None:
    async with running(make_settings(tmp_path), CONFIG, clock=clock) as (app, client):
        for _ in range(3):  # the upstream's 503s are relayed as 502 (bad gateway) ...
            assert (await _post(client, "always-down")).status_code == 502
        resp = await _post(client, "always-down")  # ... then the gateway's own 503
        assert resp.status_code == 503
        error = resp.json()["error"]
        assert error["code"] == "no_healthy_deployment"
        assert 1 <= int(resp.headers["retry-after"]) <= 60
        row = await _row(app, resp.headers["x-request-id"])
        assert row.attempts == 0  # type: ignore[attr-defined]


async def test_the_request_deadline_covers_every_attempt(tmp_path: Path, clock: FakeClock) -> None:
    config = """
routing: {retries: 5, backoff_base_s: 0, total_timeout_s: 0.6}
providers:
  slow: {type: mock, timeouts: {ttfb_s: 0.25, idle_s: 0.25, total_s: 5}}
models:
  - name: stuck
    deployments: [{provider: slow, model: "chat?latency_ms=5000"}]
"""
    async with running(make_settings(tmp_path), config, clock=clock) as (app, client):
        started = time.monotonic()
        resp = await _post(client, "stuck")
        elapsed = time.monotonic() - started
        assert resp.status_code == 504 and elapsed < 1.5
        row = await _row(app, resp.headers["x-request-id"])
        assert 2 <= row.attempts <= 3  # type: ignore[attr-defined]
        assert orjson.loads(resp.content)["error"]["code"] == "provider_timeout"


async def test_wildcard_routes_and_health(tmp_path: Path, clock: FakeClock) -> None:
    config = """
routing:
  wildcards: [{prefix: "local/", provider: mock}]
  breaker: {failures: 1, cooldown_s: 30}
providers:
  mock: {type: mock}
models:
  - name: down
    deployments: [{provider: mock, model: "chat?status=503", id: down-1, retries: 0}]
"""
    async with running(make_settings(tmp_path), config, clock=clock) as (_app, client):
        resp = await _post(client, "local/chat?completion_tokens=3")
        assert resp.status_code == 200 and resp.json()["usage"]["completion_tokens"] == 3
        assert resp.headers["x-sluice-deployment"] == "mock/chat?completion_tokens=3"
        assert (await _post(client, "elsewhere/x")).status_code == 404
        key = (await client.post("/api/v1/keys", json={"name": "k", "models": ["local/*"]})).json()
        auth = {"Authorization": f"Bearer {key['key']}"}
        allowed = await client.post("/v1/chat/completions", json=_body("local/chat"), headers=auth)
        assert allowed.status_code == 200
        assert (await _post(client, "down")).status_code == 502
        health = (await client.get("/health")).json()
        [down] = health["models"]
        assert health["status"] == "degraded" and down["healthy"] is False
        [dep] = down["deployments"]
        assert dep["breaker"] == "open" and dep["cooldown_until"] is not None
        assert dep["error_rate"] == 1.0 and dep["in_flight"] == 0
        forbidden = await client.get("/health", headers=auth)
        assert forbidden.status_code == 403
        assert (await client.get("/health/ready", headers={})).status_code == 200


async def test_a_refused_credential_moves_on_to_the_next_deployment(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running(make_settings(tmp_path), CONFIG, clock=clock) as (app, client):
        resp = await _post(client, "refused-then-ok")
        assert resp.status_code == 200 and resp.json()["usage"]["completion_tokens"] == 5
        row = await _row(app, resp.headers["x-request-id"])
        assert row.attempts == 2  # type: ignore[attr-defined]  # not retried on "refused"
        resp = await _post(client, "refused")
        assert resp.status_code == 502
        assert resp.json()["error"]["code"] == "provider_auth_error"
        assert "scripted error" not in resp.text
        row = await _row(app, resp.headers["x-request-id"])
        assert row.attempts == 1  # type: ignore[attr-defined]
