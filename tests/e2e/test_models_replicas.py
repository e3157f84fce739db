"""Models and providers changed at run time, end to end: two ``sluice serve`` processes on
one PostgreSQL database (with Redis: told at once; without: the database's version check),
a provider and a model created through the admin API on one process serve at once there and
within a second on the other; a model added to the config file is served after ``sluice
config reload`` (and SIGHUP); ``sluice config export`` writes the stored entries."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import anyio
import httpx
import pytest
import yaml

from sluice.config.loader import parse_config
from tests.e2e.support import base_env, run_cli, serve_until_ready

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

MASTER = "sk-master-models-0123456789abcdef"
CONFIG = """
providers:
  mock: {type: mock}
models:
  - name: mock-gpt
    deployments: [{provider: mock, model: chat}]
"""
ADDED = """
  - name: from-file
    deployments: [{provider: mock, model: chat}]
"""


def chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


async def served_within(port: int, model: str, *, limit_s: float) -> float:
    """Seconds until ``port`` answers ``model`` with 200 (fails past ``limit_s``)."""
    start = time.monotonic()
    async with httpx.AsyncClient(
        timeout=5.0, headers={"Authorization": f"Bearer {MASTER}"}
    ) as http:
        while True:
            resp = await http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat(model))
            took = time.monotonic() - start
            if resp.status_code == 200:
                return took
            assert resp.status_code == 404, resp.text
            assert took < limit_s, f"{model} not served on :{port} after {took:.2f} s"
            await anyio.sleep(0.02)


async def gone_within(port: int, model: str, *, limit_s: float) -> None:
    """``port`` answers ``model`` with 404 within ``limit_s``."""
    start = time.monotonic()
    async with httpx.AsyncClient(
        timeout=5.0, headers={"Authorization": f"Bearer {MASTER}"}
    ) as http:
        for _ in range(1000):
            resp = await http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=chat(model))
            if resp.status_code == 404:
                return
            assert time.monotonic() - start < limit_s, f"{model} still served on :{port}"
            await anyio.sleep(0.02)


@pytest.mark.parametrize("shared", ["redis", "database"])
async def test_a_model_made_on_one_process_serves_on_the_other_within_a_second(
    tmp_path: Path, postgres_url: str, redis_url: str, mock_port: int, shared: str
) -> None:
    extra = {"SLUICE_DATABASE_URL": postgres_url, "SLUICE_SECRET_KEY": "e2e secret key e2e"}
    if shared == "redis":
        # A long poll: only the Redis message can make the other process follow in time.
        extra |= {"SLUICE_REDIS_URL": redis_url, "SLUICE_KEY_REFRESH_INTERVAL_S": "30"}
    else:
        extra |= {"SLUICE_KEY_REFRESH_INTERVAL_S": "0.5"}
    env = base_env(tmp_path / "data", MASTER, **extra)
    upstream = f"http://127.0.0.1:{mock_port}/v1"
    path = tmp_path / "sluice.yaml"
    path.write_text(CONFIG)
    a, port_a = serve_until_ready(tmp_path, path, env, name="gateway-a")
    try:
        b, port_b = serve_until_ready(tmp_path, path, env, name="gateway-b")
    except BaseException:
        a.kill()
        raise
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port_a}",
            timeout=10.0,
            headers={"Authorization": f"Bearer {MASTER}"},
        ) as api:
            made = await api.post(
                "/api/v1/providers",
                json={
                    "name": "runtime-up",
                    "type": "openai_compatible",
                    "base_url": upstream,
                    "api_key": "sk-sealed-secret-1",
                },
            )
            assert made.status_code == 201, made.text
            made = await api.post(
                "/api/v1/models",
                json={
                    "name": "made-live",
                    "deployments": [{"provider": "runtime-up", "model": "chat"}],
                },
            )
            assert made.status_code == 201, made.text
            here = await api.post("/v1/chat/completions", json=chat("made-live"))
            assert here.status_code == 200, here.text
            assert here.headers["x-sluice-provider"] == "runtime-up"
            assert await served_within(port_b, "made-live", limit_s=1.0) < 1.0
            # Weights changed on B are served by A too; a delete on A is a 404 on B.
            spec = {"deployments": [{"provider": "mock", "model": "chat"}]}
            changed = await api.patch("/api/v1/models/made-live", json=spec)
            assert changed.status_code == 200, changed.text
            gone = await api.delete("/api/v1/models/made-live")
            assert gone.status_code == 204
            await gone_within(port_b, "made-live", limit_s=1.0)
        # The file gains a model: `sluice config reload` makes both serve it.
        path.write_text(CONFIG + ADDED)
        run_cli(env | {"SLUICE_CONFIG": str(path)}, "config", "reload")
        await served_within(port_a, "from-file", limit_s=35.0 if shared == "redis" else 5.0)
        await served_within(port_b, "from-file", limit_s=35.0 if shared == "redis" else 5.0)
        # A name in both sources is refused.
        async with httpx.AsyncClient(
            timeout=5.0, headers={"Authorization": f"Bearer {MASTER}"}
        ) as http:
            clash = await http.post(
                f"http://127.0.0.1:{port_b}/api/v1/models",
                json={"name": "from-file", "deployments": [{"provider": "mock", "model": "x"}]},
            )
            assert clash.status_code == 409, clash.text
        exported = run_cli(env, "config", "export")
        assert parse_config(exported, source="export.yaml").providers.keys() == {"runtime-up"}
        assert "sk-sealed-secret-1" not in exported
        shown = yaml.safe_load(exported)["providers"]["runtime-up"]
        assert shown == {"type": "openai_compatible", "base_url": upstream}
    finally:
        a.terminate()
        b.terminate()
    for proc in (a, b):
        assert "Traceback" not in proc.log(), proc.log()


async def test_sighup_rereads_the_config_file(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data", MASTER)
    path = tmp_path / "sluice.yaml"
    path.write_text(CONFIG)
    proc, port = serve_until_ready(tmp_path, path, env)
    try:
        path.write_text(CONFIG + ADDED)
        proc.popen.send_signal(signal.SIGHUP)
        await served_within(port, "from-file", limit_s=5.0)
        path.write_text(
            CONFIG + "  - {name: broken, deployments: [{provider: nowhere, model: x}]}\n"
        )
        proc.popen.send_signal(signal.SIGHUP)
        for _ in range(250):
            if "config reload failed" in proc.log():
                break
            await anyio.sleep(0.02)
        assert "config reload failed" in proc.log()
        await served_within(port, "from-file", limit_s=1.0)  # the served table was kept
    finally:
        proc.terminate()
