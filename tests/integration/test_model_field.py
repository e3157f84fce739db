"""One rule for an answer's ``model``: it names the model (or alias) the caller asked for,
on every dialect, native and translated, JSON and streamed; the deployment's model is in
``x-sluice-deployment`` and the usage row's ``upstream_model``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sluice.app import SluiceApp
from tests.integration.conftest import make_settings, running
from tests.mock_upstream import mock_upstream

UP_CHAT = "chat?completion_tokens=3"
UP_EMBED = "embed?dim=4"


@pytest.fixture
async def gw(
    tmp_path: Path,
) -> AsyncIterator[tuple[SluiceApp, httpx.AsyncClient]]:
    """Deployments on the mock upstream (``sluice mock-upstream``), whose answers name the
    model they were sent (the script, e.g. ``chat?completion_tokens=3``), never the public
    name; and one on the in-process mock provider."""
    async with mock_upstream() as base:
        config = _config(base)
        async with running(make_settings(tmp_path), config) as pair:
            yield pair


def _config(base: str) -> str:
    return f"""
providers:
  oa: {{type: openai, base_url: "{base}/v1", api_key: sk-up}}
  an: {{type: anthropic, base_url: "{base}", api_key: sk-ant}}
  local: {{type: mock}}
models:
  - name: gpt-pub
    aliases: [gpt-alias]
    deployments: [{{provider: oa, model: "{UP_CHAT}"}}]
  - name: claude-pub
    deployments: [{{provider: an, model: "{UP_CHAT}"}}]
  - name: local-pub
    deployments: [{{provider: local, model: "{UP_CHAT}"}}]
  - name: embed-pub
    deployments: [{{provider: oa, model: "{UP_EMBED}"}}]
"""


def _body(path: str, model: str, *, stream: bool) -> dict[str, Any]:
    if path == "/v1/chat/completions":
        return {"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]}
    if path == "/v1/completions":
        return {"model": model, "stream": stream, "prompt": "Hi", "max_tokens": 3}
    if path == "/v1/embeddings":
        return {"model": model, "input": "Hi"}
    if path == "/v1/messages":
        messages = [{"role": "user", "content": "Hi"}]
        return {"model": model, "stream": stream, "max_tokens": 3, "messages": messages}
    return {"model": model, "stream": stream, "input": "Hi"}


def _models_in_stream(text: str) -> list[str]:
    """The ``model`` of every event that carries one (at its top level, in its message or
    in its response)."""
    found = []
    for line in text.split("\n"):
        data = line[5:].strip() if line.startswith("data:") else ""
        if not data or data == "[DONE]":
            continue
        event = orjson.loads(data)
        for holder in (event, event.get("message"), event.get("response")):
            if isinstance(holder, dict) and "model" in holder:
                found.append(holder["model"])
    return found


CASES = [
    ("/v1/chat/completions", "gpt-pub"),  # native OpenAI chat
    ("/v1/chat/completions", "gpt-alias"),  # an alias is named as the caller wrote it
    ("/v1/chat/completions", "claude-pub"),  # translated by the Anthropic adapter
    ("/v1/chat/completions", "local-pub"),  # the in-process mock provider
    ("/v1/completions", "gpt-pub"),
    ("/v1/messages", "claude-pub"),  # native Messages
    ("/v1/messages", "gpt-pub"),  # Messages translated onto chat
    ("/v1/responses", "gpt-pub"),  # native Responses
    ("/v1/responses", "claude-pub"),  # Responses translated onto chat
]


@pytest.mark.parametrize(("path", "model"), CASES)
@pytest.mark.parametrize("stream", [False, True])
async def test_answer_names_the_callers_model(
    gw: tuple[SluiceApp, httpx.AsyncClient], path: str, model: str, stream: bool
) -> None:
    app, client = gw
    resp = await client.post(path, json=_body(path, model, stream=stream))
    assert resp.status_code == 200, resp.text
    if stream:
        models = _models_in_stream(resp.text)
        assert models and set(models) == {model}, models
    else:
        assert resp.json()["model"] == model
    assert UP_CHAT not in resp.text
    assert resp.headers["x-sluice-deployment"].endswith(UP_CHAT)
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    [row] = await rt.storage.usage.recent(limit=10)
    assert (row.status, row.model, row.upstream_model) == (200, model, UP_CHAT)


async def test_embeddings_name_the_callers_model(gw: tuple[SluiceApp, httpx.AsyncClient]) -> None:
    app, client = gw
    resp = await client.post(
        "/v1/embeddings", json=_body("/v1/embeddings", "embed-pub", stream=False)
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["model"] == "embed-pub"
    assert resp.headers["x-sluice-deployment"].endswith(UP_EMBED)
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    [row] = await rt.storage.usage.recent(limit=10)
    assert row.upstream_model == UP_EMBED


async def test_stored_native_response_names_the_callers_model(
    gw: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    _, client = gw
    resp = await client.post("/v1/responses", json=_body("/v1/responses", "gpt-pub", stream=False))
    stored = await client.get(f"/v1/responses/{resp.json()['id']}")
    assert stored.status_code == 200 and stored.json()["model"] == "gpt-pub"
