"""Helpers for the end-to-end suite: real ``sluice`` processes on 127.0.0.1.

Nothing here sleeps: waits are deadlines over process waits, socket connects or
``asyncio.sleep`` in async code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PYTHON = sys.executable
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reserve_closed_port() -> socket.socket:
    """A socket bound to a loopback port but not listening: connects to that port are
    refused, and no other process can take the port while the socket stays open."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def base_env(data_dir: Path, master_key: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        {
            "SLUICE_DATA_DIR": str(data_dir),
            "SLUICE_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir}/sluice.db",
            "SLUICE_MASTER_KEY": master_key,
            "SLUICE_USAGE_FLUSH_INTERVAL_S": "0.1",
            "SLUICE_KEY_REFRESH_INTERVAL_S": "0.2",
            "SLUICE_SHUTDOWN_GRACE_S": "5",
            "SLUICE_LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def run_cli(env: Mapping[str, str], *args: str, timeout_s: float = 30.0) -> str:
    """Run ``python -m sluice ARGS`` to completion; returns stdout, fails on a non-zero exit."""
    done = subprocess.run(
        [PYTHON, "-m", "sluice", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"sluice {' '.join(args)} exited {done.returncode}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
    return done.stdout


def create_key_cli(env: Mapping[str, str], name: str) -> dict[str, Any]:
    out = run_cli(env, "keys", "create", "--name", name, "--json")
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert data["key"].startswith("sk-slc-")
    return data


@dataclass
class Proc:
    """A child process whose output goes to a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def pause(self, seconds: float) -> None:
        """Wait up to ``seconds`` for the process; fail at once if it died."""
        try:
            code = self.popen.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return
        raise AssertionError(f"{self.name} exited early with {code}:\n{self.log()}")

    def wait_http(self, url: str, *, timeout_s: float = START_TIMEOUT_S) -> None:
        """Poll ``url`` until it answers 200."""
        deadline = time.monotonic() + timeout_s
        last: object = None
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                try:
                    resp = client.get(url)
                    if resp.status_code == 200:
                        return
                    last = resp.status_code
                except httpx.HTTPError as exc:
                    last = exc
                self.pause(0.05)
        raise AssertionError(
            f"{self.name}: {url} not ready in {timeout_s} s ({last})\n{self.log()}"
        )

    def terminate(self, *, timeout_s: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code (raises if it does not exit in time)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} did not exit within {timeout_s} s of SIGTERM\n{self.log()}"
            ) from None

    def stop_hard(self) -> None:
        """For servers whose clean exit we do not assert (the mock upstream): SIGTERM, then
        uvicorn's second-signal force exit, then SIGKILL."""
        for sig, wait_s in ((signal.SIGTERM, 1.0), (signal.SIGINT, 2.0)):
            if not self.alive():
                return
            self.popen.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=wait_s)
        self.kill()

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()
            self.popen.wait(timeout=10)


def spawn(name: str, args: list[str], env: Mapping[str, str], log_path: Path) -> Proc:
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [PYTHON, "-m", "sluice", *args],
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Proc(name, popen, log_path)


def start_mock_upstream(workdir: Path) -> tuple[Proc, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    proc = spawn("mock-upstream", ["mock-upstream", "--port", str(port)], env, workdir / "mock.log")
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/health")
    except BaseException:
        proc.stop_hard()
        raise
    return proc, port


def gateway_config(mock_port: int, down_port: int, echo_port: int) -> str:
    """The YAML config every e2e gateway uses. ``down_port`` refuses connections;
    ``echo_port`` is where a test may run its own recording upstream."""
    up = f"http://127.0.0.1:{mock_port}/v1"
    down = f"http://127.0.0.1:{down_port}/v1"
    echo = f"http://127.0.0.1:{echo_port}/v1"
    models = {
        "m-chat": ("up", "chat"),
        "m-nousage": ("up", "chat?usage=0"),
        "m-429": ("up", "chat?status=429&retry_after_s=2"),
        "m-500": ("up", "chat?status=500"),
        "m-400": ("up", "chat?status=400"),
        "m-timeout": ("fast", "chat?latency_ms=5000"),
        "m-down": ("down", "chat"),
        "m-embed": ("up", "embed?dim=16"),
        "m-slow": ("up", "chat?latency_ms=3000"),
        "m-slower": ("up", "chat?latency_ms=8000"),
        "m-slow-stream": ("up", "chat?chunk_delay_ms=200&chunks=50"),
        # The brief's plain scripts ...
        "m-cut": ("up", "chat?cut=3"),
        "m-stall": ("fast", "chat?stall=2"),
        "m-malformed": ("up", "chat?malformed=2"),
        # ... and paced variants, so each chunk reaches the gateway in its own read and the
        # failure is certain to come after the first byte went to the client.
        "m-cut-paced": ("up", "chat?cut=3&chunk_delay_ms=30"),
        "m-stall-paced": ("fast", "chat?stall=2&chunk_delay_ms=30"),
        "m-malformed-paced": ("up", "chat?malformed=2&chunk_delay_ms=30"),
        "m-slow-stream-fast": ("fast", "chat?chunk_delay_ms=200&chunks=50"),
        "m-local": ("local", "chat"),
        "m-echo": ("echo", "echo-upstream"),
    }
    lines = [
        "providers:",
        f"  up: {{type: openai_compatible, base_url: '{up}', api_key: sk-upstream,"
        " timeouts: {connect_s: 2}}",
        f"  fast: {{type: openai_compatible, base_url: '{up}', api_key: sk-upstream,"
        " timeouts: {connect_s: 1, ttfb_s: 1, idle_s: 1, total_s: 3}}",
        f"  down: {{type: openai_compatible, base_url: '{down}', api_key: sk-upstream,"
        " timeouts: {connect_s: 1}}",
        f"  echo: {{type: openai_compatible, base_url: '{echo}', api_key: sk-upstream-echo,"
        " timeouts: {connect_s: 1, ttfb_s: 5, idle_s: 5, total_s: 10}}",
        "  local: {type: mock}",
        "models:",
    ]
    for name, (provider, upstream) in models.items():
        lines.append(f"  - name: {name}")
        if name == "m-chat":
            lines.append("    aliases: [m-chat-alias]")
        lines.append(f"    deployments: [{{provider: {provider}, model: '{upstream}'}}]")
    return "\n".join(lines) + "\n"


MODEL_NAMES = (
    "m-chat",
    "m-chat-alias",
    "m-nousage",
    "m-429",
    "m-500",
    "m-400",
    "m-timeout",
    "m-down",
    "m-embed",
    "m-slow",
    "m-slower",
    "m-slow-stream",
    "m-cut",
    "m-stall",
    "m-malformed",
    "m-cut-paced",
    "m-stall-paced",
    "m-malformed-paced",
    "m-slow-stream-fast",
    "m-local",
    "m-echo",
)


@dataclass
class Gateway:
    """A running ``sluice serve`` and what a test needs to talk to it."""

    proc: Proc
    port: int
    env: dict[str, str]
    data_dir: Path
    master_key: str
    key: str
    key_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def v1(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "sluice.db"


def spawn_keyless_gateway(
    workdir: Path, mock_port: int, down_port: int, echo_port: int, **extra_env: str
) -> Gateway:
    """Start ``sluice serve`` in ``workdir`` with no key made beforehand and without waiting
    for readiness (its database may be away): callers wait for what they test."""
    workdir.mkdir(parents=True, exist_ok=True)
    master = "sk-master-" + secrets.token_hex(16)
    env = base_env(workdir / "data", master, **extra_env)
    config = workdir / "sluice.yaml"
    config.write_text(gateway_config(mock_port, down_port, echo_port))
    port = free_port()
    args = ["serve", "--port", str(port), "--config", str(config)]
    proc = spawn("gateway", args, env, workdir / "gw.log")
    return Gateway(proc, port, env, workdir / "data", master, key="", key_id="")


def start_gateway(
    workdir: Path,
    mock_port: int,
    down_port: int,
    echo_port: int,
    *,
    config_text: str | None = None,
    workers: int = 1,
    **extra_env: str,
) -> Gateway:
    """Create a key with the CLI, then start ``sluice serve`` (``--workers``) and wait for
    readiness. ``config_text``: a YAML config of the test's own instead of
    :func:`gateway_config`."""
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    master = "sk-master-" + secrets.token_hex(16)
    env = base_env(data_dir, master, **extra_env)
    config = workdir / "sluice.yaml"
    config.write_text(config_text or gateway_config(mock_port, down_port, echo_port))
    created = create_key_cli(env, "e2e")
    proc, port = serve_until_ready(workdir, config, env, "--workers", str(workers))
    return Gateway(proc, port, env, data_dir, master, created["key"], created["id"])


def serve_until_ready(
    workdir: Path, config: Path, env: Mapping[str, str], *args: str, name: str = "gateway"
) -> tuple[Proc, int]:
    """``sluice serve --config CONFIG ARGS`` on a free port, logging to ``workdir``, once its
    readiness answers 200 (killed if it never does); the process and its port."""
    port = free_port()
    argv = ["serve", "--port", str(port), "--config", str(config), *args]
    proc = spawn(name, argv, env, workdir / f"{name}.log")
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/health/ready")
    except BaseException:
        proc.kill()
        raise
    return proc, port


# --- usage rows -----------------------------------------------------------------------


def _connect(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(db_path), timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


@contextlib.contextmanager
def db(db_path: Path) -> Iterator[sqlite3.Connection]:
    conn = _connect(db_path)
    try:
        yield conn
    finally:
        conn.close()


def query(db_path: Path, sql: str, *params: object) -> list[dict[str, Any]]:
    with db(db_path) as conn:
        return [dict(r) for r in conn.execute(sql, params).fetchall()]


def usage_row(db_path: Path, request_id: str) -> dict[str, Any] | None:
    rows = query(db_path, "SELECT * FROM usage_events WHERE request_id = ?", request_id)
    return rows[0] if rows else None


async def wait_row(
    db_path: Path,
    *,
    request_id: str | None = None,
    end_user: str | None = None,
    timeout_s: float = 5.0,
) -> dict[str, Any]:
    """Poll until the usage row for a request id (or a unique ``user``) is written."""
    assert (request_id is None) != (end_user is None)
    deadline = time.monotonic() + timeout_s
    while True:
        if request_id is not None:
            rows = query(db_path, "SELECT * FROM usage_events WHERE request_id = ?", request_id)
        else:
            rows = query(db_path, "SELECT * FROM usage_events WHERE end_user = ?", end_user)
        if rows:
            assert len(rows) == 1, rows
            return rows[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no usage row for {request_id or end_user} within {timeout_s} s")
        await asyncio.sleep(0.05)


async def assert_no_row(db_path: Path, request_id: str, *, settle_s: float = 0.5) -> None:
    """No row appears for ``request_id`` over a few flush intervals."""
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        assert usage_row(db_path, request_id) is None
        await asyncio.sleep(0.05)
    assert usage_row(db_path, request_id) is None


# --- SSE ------------------------------------------------------------------------------


def sse_payloads(raw: str) -> list[str]:
    """The ``data`` payloads of an SSE body, in order."""
    out = []
    for event in raw.replace("\r\n", "\n").split("\n\n"):
        lines = [ln[5:].removeprefix(" ") for ln in event.split("\n") if ln.startswith("data:")]
        if lines:
            out.append("\n".join(lines))
    return out


def content_of(payloads: list[str]) -> str:
    text = []
    for p in payloads:
        if p == "[DONE]":
            continue
        obj = json.loads(p)
        for choice in obj.get("choices") or ():
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                text.append(piece)
    return "".join(text)
