"""Schema-driven fuzzing of the admin API: schemathesis against ``/api/openapi.json`` of a real
``sluice serve`` on 127.0.0.1, with the master key, on PostgreSQL (the stricter of the two
databases: NUL characters, column lengths, 64-bit integers).

Every operation gets schema-valid and schema-violating requests (the examples, coverage and
fuzzing phases; deterministic generation, so CI sees the same cases every run). The run fails
on any 5xx, on a status or body the schema does not document, and on a schema-violating request
that was accepted. Path parameters name real objects, so the requests reach the handlers
instead of stopping at 404. Bounded: a fixed number of examples per operation, one worker, and
a hard timeout on the run.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import base_env, free_port, spawn

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

MASTER = "sk-master-fuzz-0123456789abcdef"
CONFIG = """
providers:
  mock: {type: mock}
models:
  - name: mock-gpt
    aliases: [gpt-demo]
    deployments: [{provider: mock, model: chat}]
"""
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
EXAMPLES_PER_OPERATION = 10
RUN_TIMEOUT_S = 240.0
"""A guard against a hang; the run takes about 40 s on two quiet cores."""


@pytest.fixture
def server(tmp_path: Path, postgres_url: str) -> Iterator[str]:
    data_dir = tmp_path / "data"
    config = tmp_path / "sluice.yaml"
    config.write_text(CONFIG)
    port = free_port()
    # With a secret key, so the provider-credential routes work instead of answering 503.
    env = base_env(
        data_dir,
        MASTER,
        SLUICE_DATABASE_URL=postgres_url,
        SLUICE_LOG_LEVEL="warning",
        SLUICE_SECRET_KEY=secrets.token_hex(32),
    )
    proc = spawn(
        "gateway", ["serve", "--port", str(port), "--config", str(config)], env, tmp_path / "gw.log"
    )
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/health/ready")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
    log = proc.log()
    assert "Traceback" not in log, log[-4000:]


def _objects(base: str) -> dict[str, str]:
    """One object of each kind, for the path parameters."""
    with httpx.Client(
        base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {MASTER}"}
    ) as c:

        def made(path: str, body: dict[str, object]) -> str:
            resp = c.post(path, json=body)
            assert resp.status_code == 201, resp.text
            return str(resp.json()["id"])

        org = made("/orgs", {"name": "fuzz-org"})
        team = made(f"/orgs/{org}/teams", {"name": "fuzz-team"})
        user = made("/users", {"email": "fuzz@example.org", "name": "fuzz", "team_id": team})
        sa = made(f"/teams/{team}/service-accounts", {"name": "fuzz-sa"})
        key = made("/keys", {"name": "fuzz-key", "user_id": user})
    return {
        "org_id": org,
        "team_id": team,
        "user_id": user,
        "sa_id": sa,
        "key_id": key,
        "name": "mock",
    }


def test_admin_api_survives_schema_driven_fuzzing(server: str, tmp_path: Path) -> None:
    params = "\n".join(f'"path.{name}" = "{value}"' for name, value in _objects(server).items())
    config = tmp_path / "schemathesis.toml"
    config.write_text(f"[parameters]\n{params}\n")
    cli = Path(sys.executable).parent / "schemathesis"
    done = subprocess.run(
        [
            str(cli),
            "--config-file",
            str(config),
            "--no-color",
            "run",
            f"{server}/api/openapi.json",
            "--header",
            f"Authorization: Bearer {MASTER}",
            "--checks",
            ",".join(CHECKS),
            "--mode",
            "all",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--generation-deterministic",
            # One worker: several share Hypothesis' lambda-source cache, which trips a CPython
            # 3.11 ast.parse race ("AST constructor recursion depth mismatch").
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--warnings",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-4000:]
    assert f"Tested: {len(_operations(server))}" in done.stdout, done.stdout[-4000:]


def _operations(base: str) -> list[tuple[str, str]]:
    schema = httpx.get(f"{base}/api/openapi.json").json()
    return [(m, p) for p, ops in schema["paths"].items() for m in ops]
