"""A real OpenID Provider for the SSO tests: ``tests/idp/server.mjs`` (the certified npm
package ``oidc-provider``, pinned in ``tests/clients/package.json``) on a free loopback port.

Without node or the package the tests skip, except under ``CI``, where they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent
SCRIPT = ROOT / "idp" / "server.mjs"
PACKAGE = ROOT / "clients" / "node_modules" / "oidc-provider"
CONSOLE_CLIENT = ("sluice-console", "console-secret")
WORKLOAD_CLIENT = ("sluice-workload", "workload-secret")
AUDIENCE = "https://sluice.test/api"
START_TIMEOUT_S = 20.0

ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {
        "email": "alice@example.edu",
        "email_verified": True,
        "name": "Alice Liddell",
        "groups": ["staff", "llm-users"],
    },
    "alice2": {
        "email": "alice@example.edu",
        "email_verified": True,
        "name": "Someone else with Alice's address",
        "groups": [],
    },
    "bob": {
        "email": "bob@example.edu",
        "email_verified": False,
        "name": "Bob Unverified",
        "groups": ["students"],
    },
    "dave": {
        "email": "dave@example.edu",
        "email_verified": True,
        "name": "Dave Newcomer",
        "groups": ["visitors"],
    },
    "carol": {
        "email": "carol@example.edu",
        "email_verified": True,
        "name": "Carol Local",
        "groups": [],
    },
}
"""Log in at the IdP's form with the account's name (any password)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: the OpenID Provider is required under CI (make node-clients)")
    pytest.skip(f"{reason}: skipping the tests against the OpenID Provider")


@dataclass
class Idp:
    """One running OpenID Provider."""

    issuer: str
    process: subprocess.Popen[bytes]
    workdir: Path

    def rotate(self) -> str:
        """A new signing key; returns its ``kid``."""
        resp = httpx.post(f"{self.issuer}/_admin/rotate", timeout=10)
        resp.raise_for_status()
        return str(resp.json()["kid"])

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        """A JWT with these claims, signed by the IdP's current key."""
        resp = httpx.post(
            f"{self.issuer}/_admin/sign", json={"claims": claims, "header": header or {}}
        )
        resp.raise_for_status()
        return str(resp.json()["token"])

    def set_redirects(self, redirect_uris: list[str], post_logout: list[str]) -> None:
        """Register the console's callback (its port may be known only now)."""
        resp = httpx.post(
            f"{self.issuer}/_admin/redirects",
            json={"redirect_uris": redirect_uris, "post_logout_redirect_uris": post_logout},
        )
        resp.raise_for_status()

    def set_account(self, login: str, claims: dict[str, Any]) -> None:
        """Add or replace an account (its claims at the next login)."""
        resp = httpx.post(f"{self.issuer}/_admin/accounts", json={login: claims}, timeout=10)
        resp.raise_for_status()

    def public_jwk(self) -> dict[str, Any]:
        resp = httpx.post(f"{self.issuer}/_admin/sign", json={"claims": {}})
        resp.raise_for_status()
        return dict(resp.json()["public_jwk"])

    def client_credentials_token(self) -> str:
        resp = httpx.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials", "scope": "api"},
            auth=WORKLOAD_CLIENT,
            timeout=10,
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_idp(
    workdir: Path,
    *,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str] | None = None,
    port: int | None = None,
    claims_in_userinfo_only: bool = False,
) -> Idp:
    """Start an OpenID Provider (skip or, under CI, fail when node or the package is
    missing); the caller stops it. ``claims_in_userinfo_only``: its ID tokens carry ``sub``
    and no e-mail or groups (those come from its userinfo endpoint)."""
    node = shutil.which("node")
    if node is None:
        missing("node is not installed")
    if not PACKAGE.exists():
        missing(f"{PACKAGE} is missing (run make node-clients)")
    port = port or free_port()
    issuer = f"http://127.0.0.1:{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / f"idp-{port}.json"
    config.write_text(
        json.dumps(
            {
                "port": port,
                "issuer": issuer,
                "redirect_uris": redirect_uris,
                "post_logout_redirect_uris": post_logout_redirect_uris or [],
                "audience": AUDIENCE,
                "accounts": ACCOUNTS,
                "conform_id_token_claims": claims_in_userinfo_only,
            }
        )
    )
    log = (workdir / f"idp-{port}.log").open("wb")
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    env["NODE_ENV"] = "test"
    process = subprocess.Popen(
        [str(node), str(SCRIPT), str(config)],
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
    )
    idp = Idp(issuer, process, workdir)
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    line = b""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(b"READY") or process.poll() is not None:
            break
    if not line.startswith(b"READY"):
        idp.stop()
        log.close()
        pytest.fail(f"the OpenID Provider did not start: {(workdir / log.name).read_text()}")
    log.close()
    return idp


@contextlib.contextmanager
def running_idp(workdir: Path, **kwargs: Any) -> Iterator[Idp]:
    idp = start_idp(workdir, **kwargs)
    try:
        yield idp
    finally:
        idp.stop()
