"""Key lifecycle against a running gateway: the CLI (another process) and the admin API."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx
import openai
import pytest

from tests.e2e.support import Gateway

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "hello"}]
PROPAGATION_S = 2.0
"""How long a change made by another process may take to reach the gateway (refresh is 0.2 s)."""


async def cli(gateway: Gateway, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice",
        *args,
        env=gateway.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, (args, out, err)
    return out.decode()


async def status_of(gateway: Gateway, key: str) -> int:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key=key, max_retries=0) as client:
        try:
            await client.chat.completions.create(model="m-chat", messages=MESSAGES)
        except openai.APIStatusError as exc:
            return exc.status_code
    return 200


async def wait_status(gateway: Gateway, key: str, want: int, *, within_s: float) -> float:
    """Poll until ``key`` gets ``want``; returns how long it took."""
    started = time.monotonic()
    while True:
        got = await status_of(gateway, key)
        elapsed = time.monotonic() - started
        if got == want:
            return elapsed
        assert elapsed < within_s, f"key still answered {got} after {elapsed:.2f} s"
        await asyncio.sleep(0.05)


async def test_cli_created_key_works_and_cli_revoke_stops_it(gateway: Gateway) -> None:
    created = json.loads(await cli(gateway, "keys", "create", "--name", "cli-rev", "--json"))
    key, key_id = created["key"], created["id"]
    await wait_status(gateway, key, 200, within_s=PROPAGATION_S)

    out = await cli(gateway, "keys", "revoke", key_id)
    assert key_id in out
    took = await wait_status(gateway, key, 401, within_s=PROPAGATION_S)
    assert took < PROPAGATION_S

    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key=key, max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as info:
            await client.models.list()
    assert "revoked" in info.value.message

    listed = json.loads(await cli(gateway, "keys", "list", "--json"))
    mine = next(k for k in listed if k["id"] == key_id)
    assert mine["revoked_at"] is not None
    assert mine["last_used_at"] is not None, "the usage writer records when a key was used"
    assert "key" not in mine


async def test_admin_api_create_and_revoke(gateway: Gateway) -> None:
    admin = {"Authorization": f"Bearer {gateway.master_key}"}
    async with httpx.AsyncClient(base_url=gateway.base_url, headers=admin, timeout=10) as api:
        resp = await api.post("/api/v1/keys", json={"name": "admin-made"})
        assert resp.status_code == 201, resp.text
        body = resp.json()
        key, key_id = body["key"], body["id"]
        assert key.startswith("sk-slc-")
        assert body["revoked_at"] is None

        # Made by this process: usable at once, no propagation delay.
        assert await status_of(gateway, key) == 200

        listed = (await api.get("/api/v1/keys")).json()["data"]
        assert key_id in [k["id"] for k in listed]
        assert all("key" not in k for k in listed)

        resp = await api.delete(f"/api/v1/keys/{key_id}")
        assert resp.status_code == 200, resp.text
        assert resp.json()["revoked_at"] is not None
        assert await status_of(gateway, key) == 401

        assert (await api.delete("/api/v1/keys/key_doesnotexist")).status_code == 404

    # No key at all: 401; a normal key is not an admin key: 403.
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as api:
        resp = await api.post("/api/v1/keys", json={"name": "nope"})
        assert resp.status_code == 401
        assert (await api.get("/api/v1/keys")).status_code == 401
    user = {"Authorization": f"Bearer {gateway.key}"}
    async with httpx.AsyncClient(base_url=gateway.base_url, headers=user, timeout=10) as api:
        resp = await api.post("/api/v1/keys", json={"name": "nope"})
    assert resp.status_code == 403
    assert resp.json()["error"]["type"] == "permission_error"


async def test_admin_api_validation_names_the_field(gateway: Gateway) -> None:
    admin = {"Authorization": f"Bearer {gateway.master_key}"}
    async with httpx.AsyncClient(base_url=gateway.base_url, headers=admin, timeout=10) as api:
        resp = await api.post("/api/v1/keys", json={})
        assert resp.status_code == 400
        assert resp.json()["error"]["param"] == "name"
        resp = await api.post("/api/v1/keys", json={"name": "x", "models": ["no-such-model"]})
        assert resp.status_code == 400
        assert resp.json()["error"]["param"] == "models"


async def test_x_api_key_header_authenticates(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as client:
        resp = await client.get("/v1/models", headers={"x-api-key": gateway.key})
    assert resp.status_code == 200


async def test_model_restricted_key(gateway: Gateway) -> None:
    created = json.loads(
        await cli(gateway, "keys", "create", "--name", "only-chat", "--model", "m-chat", "--json")
    )
    key = created["key"]
    await wait_status(gateway, key, 200, within_s=PROPAGATION_S)
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key=key, max_retries=0) as client:
        ids = sorted(m.id for m in (await client.models.list()).data)
        assert ids == ["m-chat", "m-chat-alias"]
        # The alias of an allowed model is allowed.
        await client.chat.completions.create(model="m-chat-alias", messages=MESSAGES)
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="m-local", messages=MESSAGES)
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("m-local")


async def test_expired_key_is_refused(gateway: Gateway) -> None:
    # 0.00004 days is 3.5 s from the CLI's clock reading: long enough for the CLI to exit and
    # the gateway to load and accept the key, short enough to wait out.
    created = json.loads(
        await cli(
            gateway,
            "keys",
            "create",
            "--name",
            "short-lived",
            "--expires-in-days",
            "0.00004",
            "--json",
        )
    )
    await wait_status(gateway, created["key"], 200, within_s=PROPAGATION_S)
    await wait_status(gateway, created["key"], 401, within_s=5.0)
    async with openai.AsyncOpenAI(
        base_url=gateway.v1, api_key=created["key"], max_retries=0
    ) as client:
        with pytest.raises(openai.AuthenticationError) as info:
            await client.models.list()
    assert "expired" in info.value.message
