"""A start that fails says why in a line or two, without a traceback, and does not use up
the one-time admin key (issue #21, point 3): the next, corrected start still prints it."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.support import PYTHON, base_env, free_port, serve_until_ready

pytestmark = pytest.mark.e2e

CONFIG = """\
providers:
  m: {type: mock}
models:
  - name: mock-gpt
    deployments: [{provider: m, model: chat}]
"""
KEY_LINE = "admin key (shown once"


def _keyless_env(data_dir: Path) -> dict[str, str]:
    env = base_env(data_dir, master_key="")
    env.pop("SLUICE_MASTER_KEY")
    return env


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "sluice", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_failed_starts_are_short_and_keep_the_admin_key(tmp_path: Path) -> None:
    env = _keyless_env(tmp_path / "data")
    config = tmp_path / "sluice.yaml"
    config.write_text(CONFIG)

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _serve(env, "--config", str(config), "--port", str(port))
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in output
    assert "Traceback" not in output and KEY_LINE not in output
    assert len(output.strip().splitlines()) <= 2, output

    policies = tmp_path / "missing.cedar"
    config.write_text(CONFIG + f"routing:\n  policies: [{policies}]\n")
    done = _serve(env, "--config", str(config), "--port", str(free_port()))
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert output.strip() == f"error {policies}: no such file or directory"

    config.write_text(CONFIG)
    proc, _ = serve_until_ready(tmp_path, config, env)
    try:
        assert KEY_LINE in proc.log()
    finally:
        assert proc.terminate() == 0
