"""Vertex AI auth: a service-account JWT exchanged for a token over the shared session,
cached, and refused cleanly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sluice.config.providers import Timeouts
from sluice.config.secrets import SecretRef, Secrets
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import UpstreamCall
from sluice.providers.vertex.auth import SCOPE, VertexAuth
from tests.providers.conftest import free_port, service_account


def _auth(ref: SecretRef | None, **kwargs: Any) -> VertexAuth:
    """The adapter's token source, with its reference resolved as the core does."""
    return VertexAuth("v", ref, Secrets.resolve([ref] if ref else []), **kwargs)


class TokenServer:
    def __init__(self) -> None:
        self.assertions: list[str] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.assertions.append(str(form["assertion"]))
        if self.status != 200:
            return web.json_response({"error": "invalid_grant"}, status=self.status)
        return web.json_response(
            {"access_token": f"ya29.t{len(self.assertions)}", "expires_in": 3600}
        )


@pytest.fixture
async def token_server() -> AsyncIterator[tuple[str, TokenServer]]:
    server = TokenServer()
    app = web.Application()
    app.router.add_post("/token", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/token", server
    finally:
        await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_token_is_signed_fetched_once_and_refreshed_before_expiry(
    token_server: tuple[str, TokenServer], tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from google.auth import jwt

    uri, server = token_server
    info = service_account(uri)
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    clock = Clock()
    auth = _auth(SecretRef(str(path)), clock=clock)
    async with aiohttp.ClientSession() as session:
        call = UpstreamCall("m", "d", "r", session, Timeouts())
        assert await auth.token(call) == "ya29.t1"
        assert await auth.token(call) == "ya29.t1"
        assert len(server.assertions) == 1
        assert auth.project == "sluice-test"
        clock.now += 3600 - 299  # inside the five-minute refresh margin
        assert await auth.token(call) == "ya29.t2"
    key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims: dict[str, Any] = jwt.decode(server.assertions[0], certs=public, audience=uri)
    assert claims["iss"] == info["client_email"]
    assert claims["scope"] == SCOPE


async def test_inline_json_from_the_environment(
    token_server: tuple[str, TokenServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, _ = token_server
    monkeypatch.setenv("SLUICE_TEST_SA", json.dumps(service_account(uri)))
    auth = _auth(SecretRef("env:SLUICE_TEST_SA"))
    async with aiohttp.ClientSession() as session:
        assert (await auth.token(UpstreamCall("m", "d", "r", session, Timeouts()))).startswith(
            "ya29."
        )


async def test_refusals(token_server: tuple[str, TokenServer], tmp_path: Path) -> None:
    uri, server = token_server
    server.status = 400
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(service_account(uri)))
    async with aiohttp.ClientSession() as session:
        call = UpstreamCall("m", "d", "r", session, Timeouts())
        with pytest.raises(GatewayError) as info:
            await _auth(SecretRef(str(path))).token(call)
        assert info.value.kind is ErrorKind.PROVIDER_AUTH
        assert info.value.status == 502
        assert "invalid_grant" not in info.value.message  # for the operator's log only
        assert "invalid_grant" in (info.value.detail or "")
        with pytest.raises(GatewayError) as info:
            await _auth(SecretRef(str(tmp_path / "missing.json"))).token(call)
        assert info.value.kind is ErrorKind.GATEWAY_UNAVAILABLE
        (tmp_path / "user.json").write_text('{"type": "authorized_user"}')
        with pytest.raises(GatewayError) as info:
            await _auth(SecretRef(str(tmp_path / "user.json"))).token(call)
        assert "not a service-account key" in info.value.message


async def test_a_token_endpoint_that_does_not_answer_is_a_provider_timeout(
    tmp_path: Path,
) -> None:
    """The token fetch waits at most the call's time to first byte, and its timeout is a 504
    ``provider_timeout`` of our tree, not a bare ``TimeoutError`` (a 500)."""
    release = asyncio.Event()

    async def stall(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/token", stall)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(service_account(f"http://127.0.0.1:{port}/token")))
    auth = _auth(SecretRef(str(path)))
    try:
        async with aiohttp.ClientSession() as session:
            call = UpstreamCall("m", "d", "r", session, Timeouts(ttfb_s=0.2))
            with pytest.raises(GatewayError) as caught:
                await auth.token(call)
    finally:
        release.set()
        await runner.cleanup()
    assert caught.value.kind is ErrorKind.PROVIDER_TIMEOUT
    assert caught.value.status == 504
    assert "token endpoint" in caught.value.message


async def test_default_credentials_that_hang_or_fail_map_to_the_error_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def hang(self: VertexAuth) -> tuple[str, float]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def refused(self: VertexAuth) -> tuple[str, float]:
        raise ConnectionRefusedError(111, "refused")

    async with aiohttp.ClientSession() as session:
        call = UpstreamCall("m", "d", "r", session, Timeouts(ttfb_s=0.05))
        monkeypatch.setattr(VertexAuth, "_default_credentials", hang)
        with pytest.raises(GatewayError) as timed_out:
            await _auth(None).token(call)
        monkeypatch.setattr(VertexAuth, "_default_credentials", refused)
        with pytest.raises(GatewayError) as unreachable:
            await _auth(None).token(call)
    assert timed_out.value.kind is ErrorKind.PROVIDER_TIMEOUT
    assert unreachable.value.kind is ErrorKind.PROVIDER_UNREACHABLE
    assert unreachable.value.status == 502


async def test_a_key_that_cannot_sign_is_a_clear_error(tmp_path: Path) -> None:
    info = service_account("http://127.0.0.1:9/token")
    info["private_key"] = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    async with aiohttp.ClientSession() as session:
        call = UpstreamCall("m", "d", "r", session, Timeouts())
        with pytest.raises(GatewayError) as caught:
            await _auth(SecretRef(str(path))).token(call)
    assert caught.value.kind is ErrorKind.GATEWAY_UNAVAILABLE
    assert "cannot sign" in caught.value.message
