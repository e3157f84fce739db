"""Routing end to end: a real gateway and two real mock upstreams over HTTP. Each test asserts
how many requests the upstreams saw, not just what the client got."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.support import Proc, base_env, free_port, spawn, start_mock_upstream

MODELS = {
    # name: (retries, [(upstream, script)], extra yaml)
    "flaky": (2, [("a", "chat?flaky=2&prompt_tokens=101")], ""),
    "rate-limited": (2, [("a", "chat?flaky=1&status=429&retry_after_s=1&prompt_tokens=102")], ""),
    "failover": (
        0,
        [("a", "chat?status=503&prompt_tokens=103"), ("b", "chat?prompt_tokens=103")],
        "    strategy: priority\n",
    ),
    "reset": (
        1,
        [("a", "chat?reset=1&prompt_tokens=104"), ("b", "chat?prompt_tokens=104")],
        "    strategy: priority\n",
    ),
    "silent": (
        0,
        [("a-fast", "chat?hang=1&prompt_tokens=105"), ("b", "chat?prompt_tokens=105")],
        "    strategy: priority\n",
    ),
    "slow-first-token": (
        0,
        [("a-fast", "chat?ttft_ms=3000&prompt_tokens=106"), ("b", "chat?prompt_tokens=106")],
        "    strategy: priority\n",
    ),
    "bad-request": (
        3,
        [("a", "chat?status=400&prompt_tokens=107"), ("b", "chat")],
        "    strategy: priority\n",
    ),
    "down": (0, [("a", "chat?status=503&prompt_tokens=108")], ""),
}


def _config(port_a: int, port_b: int) -> str:
    lines = [
        "routing:",
        "  backoff_base_s: 0.05",
        "  breaker: {failures: 3, cooldown_s: 60, min_requests: 100}",
        "providers:",
        f"  a: {{type: openai_compatible, base_url: 'http://127.0.0.1:{port_a}/v1', api_key: k}}",
        f"  a-fast: {{type: openai_compatible, base_url: 'http://127.0.0.1:{port_a}/v1', "
        "api_key: k, timeouts: {ttfb_s: 0.5, idle_s: 0.5}}",
        f"  b: {{type: openai_compatible, base_url: 'http://127.0.0.1:{port_b}/v1', api_key: k}}",
        "models:",
    ]
    for name, (retries, deployments, extra) in MODELS.items():
        lines.append(f"  - name: {name}")
        lines.append(extra.rstrip("\n")) if extra else None
        lines.append("    deployments:")
        for provider, script in deployments:
            lines.append(f"      - {{provider: {provider}, model: '{script}', retries: {retries}}}")
    return "\n".join(line for line in lines if line) + "\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    workdir = tmp_path_factory.mktemp("routing")
    (workdir / "a").mkdir()
    (workdir / "b").mkdir()
    mock_a, port_a = start_mock_upstream(workdir / "a")
    mock_b, port_b = start_mock_upstream(workdir / "b")
    master = "sk-master-" + secrets.token_hex(8)
    env = base_env(workdir / "data", master)
    config = workdir / "sluice.yaml"
    config.write_text(_config(port_a, port_b))
    port = free_port()
    gw: Proc = spawn(
        "gateway",
        ["serve", "--port", str(port), "--config", str(config)],
        env,
        workdir / "gateway.log",
    )
    try:
        gw.wait_http(f"http://127.0.0.1:{port}/health/ready")
        yield {"port": port, "a": port_a, "b": port_b, "master": master}
    finally:
        gw.terminate()
        mock_a.stop_hard()
        mock_b.stop_hard()


def _seen(port: object) -> int:
    return int(httpx.get(f"http://127.0.0.1:{port}/health").json()["requests"])


def _chat(world: dict[str, object], model: str) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{world['port']}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {world['master']}"},
        timeout=20,
    )


def _deltas(world: dict[str, object], model: str) -> tuple[httpx.Response, int, int, float]:
    a, b = _seen(world["a"]), _seen(world["b"])
    started = time.monotonic()
    resp = _chat(world, model)
    return resp, _seen(world["a"]) - a, _seen(world["b"]) - b, time.monotonic() - started


def test_fail_n_then_ok_is_retried(world: dict[str, object]) -> None:
    resp, a, b, _ = _deltas(world, "flaky")
    assert resp.status_code == 200 and (a, b) == (3, 0)


def test_429_retry_after_is_honoured(world: dict[str, object]) -> None:
    resp, a, b, elapsed = _deltas(world, "rate-limited")
    assert resp.status_code == 200 and (a, b) == (2, 0) and elapsed >= 1.0


def test_always_503_falls_back_to_the_other_upstream(world: dict[str, object]) -> None:
    resp, a, b, _ = _deltas(world, "failover")
    assert resp.status_code == 200 and (a, b) == (1, 1)
    assert resp.headers["x-sluice-provider"] == "b"


def test_reset_before_headers_is_retried_then_falls_back(world: dict[str, object]) -> None:
    resp, a, b, _ = _deltas(world, "reset")
    assert resp.status_code == 200 and (a, b) == (2, 1)


def test_accept_and_never_answer_times_out_then_falls_back(world: dict[str, object]) -> None:
    resp, a, b, elapsed = _deltas(world, "silent")
    assert resp.status_code == 200 and (a, b) == (1, 1) and elapsed < 3


def test_slow_first_token_falls_back(world: dict[str, object]) -> None:
    resp, a, b, elapsed = _deltas(world, "slow-first-token")
    assert resp.status_code == 200 and (a, b) == (1, 1) and elapsed < 2.5


def test_other_4xx_go_back_to_the_client_at_once(world: dict[str, object]) -> None:
    resp, a, b, _ = _deltas(world, "bad-request")
    assert resp.status_code == 400 and (a, b) == (1, 0)


def test_breaker_opens_and_stops_calling_the_upstream(world: dict[str, object]) -> None:
    for _ in range(3):  # the upstream's 503s are a bad gateway to the client ...
        assert _chat(world, "down").status_code == 502
    resp, a, b, elapsed = _deltas(world, "down")
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "no_healthy_deployment"
    assert (a, b) == (0, 0) and elapsed < 0.5
    assert int(resp.headers["retry-after"]) >= 1
