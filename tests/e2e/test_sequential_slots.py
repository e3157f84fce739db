"""A strictly sequential client on a ``max_parallel: 1`` key is never refused: each answer's
slot is free before its last byte reaches the client. Real ``sluice serve`` processes, on the
memory backend and on Redis, streamed and not."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import stop_gateway
from tests.e2e.support import Gateway, sse_payloads, start_gateway

pytestmark = pytest.mark.e2e

REQUESTS = 50


@pytest.fixture(params=["memory", "redis"])
def gateway_of(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    mock_port: int,
    down_port: int,
    echo_port: int,
) -> Iterator[Gateway]:
    env = (
        {}
        if request.param == "memory"
        else {"SLUICE_REDIS_URL": request.getfixturevalue("redis_url")}
    )
    gw = start_gateway(tmp_path / request.param, mock_port, down_port, echo_port, **env)
    try:
        yield gw
    finally:
        if gw.proc.alive():
            stop_gateway(gw)


async def test_a_sequential_client_never_gets_429(gateway_of: Gateway) -> None:
    gw = gateway_of
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=20) as client:
        created = await client.post(
            "/api/v1/keys",
            json={"name": "one-at-a-time", "limits": {"max_parallel": 1}},
            headers={"Authorization": f"Bearer {gw.master_key}"},
        )
        assert created.status_code == 201, created.text
        auth = {"Authorization": f"Bearer {created.json()['key']}"}
        statuses: Counter[tuple[bool, int]] = Counter()
        for i in range(2 * REQUESTS):
            stream = i % 2 == 1
            body = {
                "model": "m-chat",
                "stream": stream,
                "max_tokens": 8,
                "messages": [{"role": "user", "content": f"request {i}"}],
            }
            resp = await client.post("/v1/chat/completions", json=body, headers=auth)
            statuses[(stream, resp.status_code)] += 1
            if stream and resp.status_code == 200:
                assert sse_payloads(resp.text)[-1] == "[DONE]"
    assert statuses == {(False, 200): REQUESTS, (True, 200): REQUESTS}
