"""Helpers for console tests over HTTP: a signed-in browser per person."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from sluice.app import SluiceApp
from sluice.auth.passwords import Passwords
from tests.integration.conftest import CONFIG
from tests.integration.test_tenancy import World, build_world

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def set_password(app: SluiceApp, user_id: str, password: str = PASSWORD) -> None:
    assert app.runtime is not None
    await app.runtime.storage.console.set_password_hash(user_id, Passwords().hash(password))


@dataclass
class Browser:
    client: httpx.AsyncClient
    csrf: str = ""

    async def get(self, path: str) -> httpx.Response:
        resp = await self.client.get(path)
        if resp.status_code == 200 and "csrf_token" in resp.text:
            self.csrf = csrf_of(resp.text)
        return resp

    async def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(path, data={"csrf_token": self.csrf, **(data or {})})


async def sign_in(browser: Browser, email: str, password: str = PASSWORD) -> httpx.Response:
    page = await browser.client.get("/ui/login")
    token = csrf_of(page.text)
    return await browser.client.post(
        "/ui/login", data={"csrf_token": token, "email": email, "password": password}
    )


@asynccontextmanager
async def browser(
    app: SluiceApp, *, base_url: str = "http://gw", **headers: str
) -> AsyncIterator[Browser]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=base_url, headers=headers
    ) as client:
        yield Browser(client)


@asynccontextmanager
async def signed_in(app: SluiceApp, email: str) -> AsyncIterator[Browser]:
    async with browser(app) as b:
        resp = await sign_in(b, email)
        assert resp.status_code == 303, resp.text
        landing = await b.get("/ui/keys")
        assert landing.status_code == 200, landing.text
        yield b


@asynccontextmanager
async def console_world(tmp_path: Path, config_text: str = CONFIG) -> AsyncIterator[World]:
    """The tenancy test world (over ``config_text``) plus an admin person (``root``) and a
    console password for everyone who signs in."""
    async with build_world(tmp_path, config_text) as w:
        made = await w.call(
            "admin", "POST", "/api/v1/users", {"email": "root@example.org", "name": "Root"}
        )
        w.ids["root"] = made.json()["id"]
        await w.call("admin", "PUT", "/api/v1/users/{root}/admin")
        for name in ("oa", "ta", "ua", "ub", "root"):
            await set_password(w.app, w.ids[name])
        yield w
