"""Every command and code block of the README runs against a started gateway (issue #21,
point 1), so the README cannot drift from the code.

``bash`` blocks run in ``bash -euo pipefail`` with ``sluice`` on the PATH, ``python`` blocks
with this interpreter, ``yaml`` blocks are validated as a gateway config. The gateway listens
on a free port instead of 4000 (the address is rewritten), and ``SLUICE_KEY`` is its admin
key. A block may be skipped only with a ``<!-- readme-test: skip: why -->`` line before it;
plain (language-less) blocks are text: the CLI synopsis is checked against ``--help`` in
tests/integration/test_cli_output.py.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sluice.config.loader import parse_config
from tests.e2e.support import base_env, serve_until_ready

pytestmark = pytest.mark.e2e

README = Path(__file__).parents[2] / "README.md"
FENCE = re.compile(
    r"(?:<!-- readme-test: (?P<note>[^\n]*?) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S
)
EXECUTED = ("bash", "python", "yaml")


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    body: str
    note: str

    @property
    def skipped(self) -> bool:
        return self.note.startswith("skip:")


def blocks() -> list[Block]:
    text = README.read_text()
    return [
        Block(text[: m.start()].count("\n") + 1, m["lang"], m["body"], m["note"] or "")
        for m in FENCE.finditer(text)
        if m["lang"] in EXECUTED
    ]


def test_only_the_quick_start_itself_is_skipped() -> None:
    found = blocks()
    assert len(found) >= 5
    skipped = [b for b in found if b.skipped]
    assert [b.body.split()[:2] for b in skipped] == [["make", "serve"]]


def test_every_readme_block_runs(tmp_path: Path) -> None:
    master = "sk-slc-admin-" + secrets.token_hex(16)
    env = base_env(tmp_path / "data", master)
    config = tmp_path / "sluice.yaml"
    from sluice.config.loader import default_config_text

    config.write_text(default_config_text())
    proc, port = serve_until_ready(tmp_path, config, env)
    bin_dir = str(Path(sys.executable).parent)
    env = {**env, "SLUICE_KEY": master, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"}
    try:
        for block in blocks():
            if block.skipped:
                continue
            body = block.body.replace("127.0.0.1:4000", f"127.0.0.1:{port}")
            where = f"README.md:{block.line} ({block.lang})"
            if block.lang == "yaml":
                parse_config(body, source=where)
                continue
            if block.lang == "bash":
                body = "\n".join(
                    line for line in body.splitlines() if not line.startswith("export SLUICE_KEY=")
                )
                argv = ["bash", "-euo", "pipefail", "-c", body]
            else:
                script = tmp_path / f"block_{block.line}.py"
                script.write_text(body)
                argv = [sys.executable, str(script)]
            done = subprocess.run(
                argv,
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            shown = f"{where}\nstdout: {done.stdout}\nstderr: {done.stderr}"
            assert done.returncode == 0, shown
            assert done.stdout.strip(), shown
            assert '"error"' not in done.stdout, shown
    finally:
        assert proc.terminate() == 0
