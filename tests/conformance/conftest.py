"""The conformance gateway: one real ``sluice serve`` whose models sit behind every provider
family, each talking to ``sluice mock-upstream`` in its own wire format (the in-process
``mock`` provider too)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import stop_gateway
from tests.e2e.support import (
    Gateway,
    base_env,
    create_key_cli,
    serve_until_ready,
    start_mock_upstream,
)
from tests.providers.conftest import service_account

TARGETS = {
    "c-anthropic": "anth",
    "c-openai": "oai",
    "c-compat": "compat",
    "c-gemini": "gem",
    "c-vertex": "vtx",
    "c-bedrock": "bed",
    "c-cohere": "coh",
    "c-mock": "local",
}
"""Public model name -> provider: one model per provider family. A capture's requests are
replayed to each, so every dialect meets every family, natively or translated."""


def conformance_config(mock_port: int, credentials: Path) -> str:
    root = f"http://127.0.0.1:{mock_port}"
    lines = [
        "providers:",
        f"  anth: {{type: anthropic, base_url: '{root}', api_key: sk-ant-conformance}}",
        f"  oai: {{type: openai, base_url: '{root}/v1', api_key: sk-oai-conformance}}",
        f"  compat: {{type: openai_compatible, base_url: '{root}/v1', api_key: sk-compat}}",
        f"  gem: {{type: gemini, base_url: '{root}', api_key: gm-conformance}}",
        f"  vtx: {{type: vertex, base_url: '{root}', location: us-east5,"
        f" credentials: '{credentials}'}}",
        f"  bed: {{type: bedrock, base_url: '{root}', region: eu-central-1,"
        " access_key_id: AKIDCONFORMANCE, secret_access_key: conformance-secret}",
        f"  coh: {{type: cohere, base_url: '{root}', api_key: co-conformance}}",
        "  local: {type: mock}",
        "models:",
    ]
    for name, provider in TARGETS.items():
        lines.append(f"  - name: {name}")
        lines.append(f"    deployments: [{{provider: {provider}, model: chat}}]")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def conformance_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("conformance")
    mock, mock_port = start_mock_upstream(workdir)
    try:
        credentials = workdir / "service-account.json"
        credentials.write_text(json.dumps(service_account(f"http://127.0.0.1:{mock_port}/token")))
        data_dir = workdir / "data"
        env = base_env(data_dir, "sk-master-" + secrets.token_hex(16))
        config = workdir / "sluice.yaml"
        config.write_text(conformance_config(mock_port, credentials))
        created = create_key_cli(env, "conformance")
        proc, port = serve_until_ready(workdir, config, env, name="conformance-gateway")
        gw = Gateway(proc, port, env, data_dir, env["SLUICE_MASTER_KEY"], **_key(created))
        try:
            yield gw
        finally:
            if gw.proc.alive():
                stop_gateway(gw)
    finally:
        mock.stop_hard()


def _key(created: dict[str, str]) -> dict[str, str]:
    return {"key": created["key"], "key_id": created["id"]}
