"""The semantic index embeds prompts through the gateway's own pipeline: the embedding is a
request of the caller's (their limits, their usage row), and any failure is a miss."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluice.app import SluiceApp
from sluice.auth.principal import Principal
from sluice.cache.base import Probe
from sluice.limits.spec import LimitSpec
from tests.integration.conftest import make_settings, running
from tests.semantic_support import Semantic

CONFIG = """
providers:
  mock: {type: mock}
models:
  - name: gpt
    deployments: [{provider: mock, model: chat}]
  - name: embed-words
    deployments: [{provider: mock, model: "embed?dim=64&bow=1"}]
  - name: embed-down
    deployments: [{provider: mock, model: "embed?status=503"}]
"""
ALICE = Principal(key_id="k_alice", name="alice", org_id="o_a", team_id="t_a")


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[SluiceApp]:
    async with running(make_settings(tmp_path), CONFIG) as (gateway, _):
        yield gateway


def probe(text: str) -> Probe:
    return Probe("org:o_a", "gpt", "chat", "d", text)


async def test_the_prompt_is_embedded_as_a_request_of_the_caller(app: SluiceApp) -> None:
    sem = Semantic(app, "embed-words")
    index, rows = sem.index, sem.rows
    text = "What is the capital city of France?"
    hit, vector = await index.find(probe(text), embed=sem.embed(ALICE, text), threshold=0.8)
    assert hit is None and vector is not None and len(vector) == 64
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-9
    [row] = rows
    assert row.request_id == "req_1.embed" and row.endpoint == "embeddings"
    assert (row.model, row.status, row.key_id, row.org_id) == ("embed-words", 200, "k_alice", "o_a")
    assert row.prompt_tokens > 0 and row.attempts == 1

    await index.add(probe(text), vector, b"Paris", ttl_s=60)
    near = "what is the capital of France"
    hit, _ = await index.find(probe(near), embed=sem.embed(ALICE, near), threshold=0.8)
    assert hit is not None and hit.value == b"Paris"
    far = "How do I bake sourdough bread at home?"
    hit, _ = await index.find(probe(far), embed=sem.embed(ALICE, far), threshold=0.8)
    assert hit is None
    assert len(rows) == 3  # one usage row per embedding


async def test_an_upstream_failure_is_a_miss_and_is_accounted(app: SluiceApp) -> None:
    sem = Semantic(app, "embed-down")
    index, rows = sem.index, sem.rows
    found = await index.find(probe("hello"), embed=sem.embed(ALICE, "hello"), threshold=0.8)
    assert found == (None, None)
    [row] = rows
    assert row.status >= 500 and row.model == "embed-down"
    assert (row.error_kind or "").startswith("provider_")


async def test_the_callers_rate_limit_applies_to_the_embedding(app: SluiceApp) -> None:
    sem = Semantic(app, "embed-words")
    index, rows = sem.index, sem.rows
    limited = Principal(
        key_id="k_bob", name="bob", org_id="o_a", limit_checks=(("key:k_bob", LimitSpec(rpm=0)),)
    )
    found = await index.find(probe("hello"), embed=sem.embed(limited, "hello"), threshold=0.8)
    assert found == (None, None)
    [row] = rows
    assert row.status == 429 and row.key_id == "k_bob" and row.attempts == 0


async def test_an_embedding_model_that_is_not_configured_is_a_miss(app: SluiceApp) -> None:
    sem = Semantic(app, "no-such-model")
    index, rows = sem.index, sem.rows
    found = await index.find(probe("hello"), embed=sem.embed(ALICE, "hello"), threshold=0.8)
    assert found == (None, None)
    assert rows == []
