"""Playwright against a real ``sluice serve`` on 127.0.0.1 (and the mock upstream), driving
Debian's Chromium. Missing Chromium skips these tests locally and fails them under ``CI``.

One gateway and one browser serve this package (torn down before other tests run: sync
Playwright keeps an event loop running while it is open); each test gets a fresh browser context
(its own cookies and storage).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.support import (
    PYTHON,
    Gateway,
    gateway_config,
    reserve_closed_port,
    start_gateway,
    start_mock_upstream,
)
from tests.mcp.conftest import EVERYTHING

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "ui test password"


def require_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI requires it")
    pytest.skip(message)


@dataclass
class UiWorld:
    gateway: Gateway
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.gateway.base_url

    def api(self, method: str, path: str, body: object = None) -> Any:
        resp = httpx.request(
            method,
            f"{self.url}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.gateway.master_key}"},
            timeout=20.0,
        )
        assert resp.status_code < 300, resp.text
        return resp.json() if resp.content else None


def _password(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [PYTHON, "-m", "sluice", "users", *args, "--password-stdin"],
        env=env,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _config(mock_port: int, down_port: int, echo_port: int) -> str:
    """The e2e config, plus server-everything over stdio as an MCP server when it is
    installed (the MCP page's tests skip without it)."""
    text = gateway_config(mock_port, down_port, echo_port)
    if not EVERYTHING.exists():
        return text
    everything = {
        "name": "everything",
        "description": "The MCP reference server: tools, prompts, resources",
        "tags": ["demo", "reference"],
        "transport": "stdio",
        "command": "node",
        "args": [str(EVERYTHING), "stdio"],
        "tools": {"deny": ["trigger-*"]},
    }
    return text + "mcp: " + json.dumps({"servers": [everything]}) + "\n"


@pytest.fixture(scope="package")
def ui_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiWorld]:
    require_chromium()
    workdir = tmp_path_factory.mktemp("ui")
    mock, mock_port = start_mock_upstream(workdir)
    down, echo = reserve_closed_port(), reserve_closed_port()
    try:
        ports = (mock_port, down.getsockname()[1], echo.getsockname()[1])
        gw = start_gateway(workdir / "gw", *ports, config_text=_config(*ports))
        try:
            w = UiWorld(gw)
            acme = w.api("POST", "/orgs", {"name": "acme"})
            w.ids["acme"] = acme["id"]
            for team in ("research", "ops"):
                w.ids[team] = w.api("POST", f"/orgs/{acme['id']}/teams", {"name": team})["id"]
            globex = w.api("POST", "/orgs", {"name": "globex"})
            w.ids["globex_team"] = w.api("POST", f"/orgs/{globex['id']}/teams", {"name": "sales"})[
                "id"
            ]
            people = {"ua": "research", "ta": "ops", "ub": "globex_team"}
            for name, team in people.items():
                user = w.api(
                    "POST",
                    "/users",
                    {"email": f"{name}@example.org", "name": name.upper(), "team_id": w.ids[team]},
                )
                w.ids[name] = user["id"]
            w.api("PUT", f"/teams/{w.ids['ops']}/members/{w.ids['ta']}", {"role": "team_admin"})
            _password(gw.env, "create-admin", "--email", "root@example.org")
            for name in people:
                _password(gw.env, "set-password", f"{name}@example.org")
            yield w
        finally:
            gw.proc.terminate()
    finally:
        mock.stop_hard()
        down.close()
        echo.close()


@pytest.fixture(scope="package")
def chromium(ui_world: UiWorld) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(chromium: Any, ui_world: UiWorld) -> Iterator[Any]:
    ctx = chromium.new_context(base_url=ui_world.url)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=ui_world.url)
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


def sign_in(page: Any, email: str, password: str = PASSWORD) -> None:
    page.goto("/ui/login")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', password)
    page.click('button:has-text("Sign in")')
    page.wait_for_url("**/ui/keys")


def screenshot_dir(tmp: Path) -> Path:
    """``docs/screenshots`` when ``SLUICE_SCREENSHOTS=1`` (to refresh the committed ones),
    else a temporary folder (the pages are still rendered and checked)."""
    if os.environ.get("SLUICE_SCREENSHOTS") == "1":
        out = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp
