"""The real coding-agent CLIs through a real ``sluice serve``: Claude Code (``claude -p``) and
Codex CLI (``codex exec``), default settings and tools on, each behind a mock model reached
through an alias, natively and through translation.

The CLIs are the versions pinned in ``tests/clients/package.json`` (installed by ``make test``,
or here when missing). Without npm's registry the tests skip, except under ``CI``, where they
fail. A recording proxy between the CLI and the gateway counts the requests the CLI made:
each must have exactly one usage row, for the run's key and the public model, status 200.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.capture import recording_proxy, run_bounded
from tests.e2e.conftest import stop_gateway
from tests.e2e.support import (
    Gateway,
    base_env,
    create_key_cli,
    query,
    serve_until_ready,
)

pytestmark = pytest.mark.e2e

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
BIN = CLIENTS / "node_modules" / ".bin"
STAMP = CLIENTS / "node_modules" / ".installed"
RUN_TIMEOUT_S = 150.0
INSTALL_TIMEOUT_S = 300.0
MAX_REQUESTS = 40
"""A run that makes more requests is stopped (and fails): an agent looping, not finishing."""

TARGETS = {
    "agent-anthropic": "anth",
    "agent-openai": "oai",
    "agent-compat": "compat",
    "agent-gemini": "gem",
}
"""Public model -> provider. Each model has an alias ``<name>-alias``; the CLIs ask for it."""

CLAUDE_CASES = ["agent-anthropic", "agent-compat", "agent-gemini"]
"""Messages natively (Anthropic), then translated to Chat Completions and Gemini."""
CODEX_CASES = ["agent-openai", "agent-anthropic", "agent-compat"]
"""Responses natively (OpenAI), then translated to Messages and Chat Completions."""

QUIET = {
    # Claude Code: no telemetry, error reports, update checks or other non-essential traffic.
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}
"""Codex has no such variables: its config file turns off the update check and analytics."""


def _installed() -> bool:
    if not (BIN / "claude").exists() or not (BIN / "codex").exists() or not STAMP.exists():
        return False
    pinned = max((CLIENTS / n).stat().st_mtime for n in ("package.json", "package-lock.json"))
    return STAMP.stat().st_mtime >= pinned


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: the client CLIs are required under CI")
    pytest.skip(f"{reason}: skipping the Claude Code and Codex CLI tests")


@pytest.fixture(scope="session")
def cli_bin() -> Path:
    """The pinned CLIs, installed with ``npm ci`` when missing or older than their pins
    (``make test`` normally did it already)."""
    if _installed():
        return BIN
    npm = shutil.which("npm")
    if npm is None:
        _missing("npm is not installed")
    try:
        done = subprocess.run(
            [str(npm), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CLIENTS,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _missing(f"npm ci in {CLIENTS} took over {INSTALL_TIMEOUT_S:.0f} s")
    if done.returncode != 0:
        _missing(f"npm ci in {CLIENTS} failed (is the npm registry reachable?): {done.stderr}")
    STAMP.touch()
    return BIN


def cli_config(mock_port: int) -> str:
    root = f"http://127.0.0.1:{mock_port}"
    lines = [
        "providers:",
        f"  anth: {{type: anthropic, base_url: '{root}', api_key: sk-ant-cli}}",
        f"  oai: {{type: openai, base_url: '{root}/v1', api_key: sk-oai-cli}}",
        f"  compat: {{type: openai_compatible, base_url: '{root}/v1', api_key: sk-compat-cli}}",
        f"  gem: {{type: gemini, base_url: '{root}', api_key: gm-cli}}",
        "models:",
    ]
    for name, provider in TARGETS.items():
        lines.append(f"  - name: {name}")
        lines.append(f"    aliases: [{name}-alias]")
        lines.append(f"    deployments: [{{provider: {provider}, model: chat}}]")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def cli_gateway(e2e_dir: Path, mock_port: int) -> Iterator[Gateway]:
    """A gateway of its own, with one key per CLI run (created before it starts)."""
    workdir = e2e_dir / "clients"
    workdir.mkdir(parents=True, exist_ok=True)
    env = base_env(workdir / "data", "sk-master-" + secrets.token_hex(16))
    config = workdir / "sluice.yaml"
    config.write_text(cli_config(mock_port))
    keys = {
        f"{cli}:{model}": create_key_cli(env, f"{cli}-{model}")
        for cli, models in (("claude", CLAUDE_CASES), ("codex", CODEX_CASES))
        for model in models
    }
    proc, port = serve_until_ready(workdir, config, env, name="clients-gateway")
    first = next(iter(keys.values()))
    gw = Gateway(proc, port, env, workdir / "data", env["SLUICE_MASTER_KEY"], first["key"], "")
    gw.extra["keys"] = keys
    try:
        yield gw
    finally:
        if gw.proc.alive():
            stop_gateway(gw)


def _plain_env(home: Path, bin_dir: Path, **extra: str) -> dict[str, str]:
    """Nothing of the machine's own settings: a fresh HOME, PATH with the pinned CLIs."""
    return {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        **QUIET,
        **extra,
    }


async def _assert_usage(gw: Gateway, key_id: str, model: str, requests: int) -> None:
    """One row per request the CLI made: the run's key, the public model (as asked, through
    its alias, or resolved to its name), status 200 (rows are written in the background: wait
    for them, then make sure no more come)."""
    sql = "SELECT request_id, model, status FROM usage_events WHERE key_id = ?"
    deadline = time.monotonic() + 10.0
    rows = query(gw.db_path, sql, key_id)
    while len(rows) < requests and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        rows = query(gw.db_path, sql, key_id)
    await asyncio.sleep(0.3)  # a few flush intervals: a doubled row would show by now
    rows = query(gw.db_path, sql, key_id)
    names = {r["model"] for r in rows}
    assert names in ({model}, {f"{model}-alias"}), rows
    assert [r["status"] for r in rows] == [200] * requests, rows
    assert len(rows) == requests, rows
    assert len({r["request_id"] for r in rows}) == requests


@pytest.mark.parametrize("model", CLAUDE_CASES)
async def test_claude_code(cli_bin: Path, cli_gateway: Gateway, tmp_path: Path, model: str) -> None:
    key = cli_gateway.extra["keys"][f"claude:{model}"]
    alias = f"{model}-alias"
    home = tmp_path / "home"
    home.mkdir()
    async with recording_proxy(
        cli_gateway.base_url, to_mock=False, max_requests=MAX_REQUESTS
    ) as proxy:
        env = _plain_env(
            home,
            cli_bin,
            ANTHROPIC_BASE_URL=proxy.base_url,
            ANTHROPIC_API_KEY=key["key"],
            # Every model Claude Code picks (main, subagents, side tasks) is the alias.
            ANTHROPIC_MODEL=alias,
            ANTHROPIC_SMALL_FAST_MODEL=alias,
            ANTHROPIC_DEFAULT_OPUS_MODEL=alias,
            ANTHROPIC_DEFAULT_SONNET_MODEL=alias,
            ANTHROPIC_DEFAULT_HAIKU_MODEL=alias,
        )
        code, out = await run_bounded(
            [str(cli_bin / "claude"), "-p", "List the files here and say what they are."],
            env=env,
            cwd=tmp_path,
            timeout_s=RUN_TIMEOUT_S,
            stop=proxy.enough,
        )
    text = out.decode(errors="replace")
    assert code == 0, f"claude exited {code}: {text[-3000:]}"
    assert "The tool returned" in text or "Sluice relays" in text, text[-3000:]
    assert proxy.seen, "claude made no request"
    assert {r["body"]["model"] for r in proxy.seen} == {alias}
    await _assert_usage(cli_gateway, key["id"], model, len(proxy.seen))


@pytest.mark.parametrize("model", CODEX_CASES)
async def test_codex_exec(cli_bin: Path, cli_gateway: Gateway, tmp_path: Path, model: str) -> None:
    key = cli_gateway.extra["keys"][f"codex:{model}"]
    alias = f"{model}-alias"
    home = tmp_path / "home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    async with recording_proxy(
        cli_gateway.base_url, to_mock=False, max_requests=MAX_REQUESTS
    ) as proxy:
        (codex_home / "config.toml").write_text(
            f'model = "{alias}"\n'
            'model_provider = "sluice"\n'
            "check_for_update_on_startup = false\n"
            "[analytics]\n"
            "enabled = false\n"
            "[model_providers.sluice]\n"
            'name = "Sluice"\n'
            f'base_url = "{proxy.base_url}/v1"\n'
            'env_key = "SLUICE_API_KEY"\n'
            'wire_api = "responses"\n'
        )
        env = _plain_env(home, cli_bin, CODEX_HOME=str(codex_home), SLUICE_API_KEY=key["key"])
        code, out = await run_bounded(
            [
                str(cli_bin / "codex"),
                "exec",
                "--skip-git-repo-check",
                "List the files here and say what they are.",
            ],
            env=env,
            cwd=tmp_path,
            timeout_s=RUN_TIMEOUT_S,
            stop=proxy.enough,
        )
    text = out.decode(errors="replace")
    assert code == 0, f"codex exited {code}: {text[-3000:]}"
    assert "The tool returned" in text or "Sluice relays" in text, text[-3000:]
    assert proxy.seen, "codex made no request"
    assert {r["body"]["model"] for r in proxy.seen} == {alias}
    await _assert_usage(cli_gateway, key["id"], model, len(proxy.seen))
