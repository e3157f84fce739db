"""The response cache's pieces: keys, the entry format, the memory store's bound, the
settings each (model, team) gets, and the cache section of the config."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sluice.cache import codec, keys
from sluice.cache.base import Selector
from sluice.cache.memory import ENTRY_OVERHEAD, MemoryAnswers
from sluice.cache.service import ResponseCache, scope_of
from sluice.clock import FakeClock
from sluice.config import GatewayConfig
from sluice.config.cache import CacheConfig, CacheOverride, ModelCacheOverride
from sluice.types import Usage


def test_field_order_whitespace_and_ignored_fields_do_not_change_the_key() -> None:
    a = keys.normalised(
        {"model": "x", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    )
    b = keys.normalised(
        {
            "temperature": 0,
            "user": "someone",
            "stream_options": {"include_usage": True},
            "metadata": {"run": "1"},
            "messages": [{"content": "hi", "role": "user"}],
            "model": "alias",
            "stream": False,
        }
    )
    assert a == b
    c = keys.normalised({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.5})
    assert a != c
    streamed = keys.normalised(
        {"messages": [{"role": "user", "content": "hi"}], "temperature": 0, "stream": True}
    )
    assert streamed != a  # a stream's entry is its events, apart from the JSON answer


def test_the_key_separates_scope_model_endpoint_and_generation() -> None:
    body = keys.normalised({"messages": []})
    base = {"scope": "org:a", "model": "m", "generation": "g1", "endpoint": "chat", "body": body}
    seen = {keys.exact_key(**base)}  # type: ignore[arg-type]
    for field, other in (
        ("scope", "org:b"),
        ("model", "n"),
        ("generation", "g2"),
        ("endpoint", "responses"),
    ):
        seen.add(keys.exact_key(**{**base, field: other}))  # type: ignore[arg-type]
    assert len(seen) == 5


def test_generation_follows_the_deployments() -> None:
    one = keys.generation([{"provider": "p", "model": "a"}])
    assert one == keys.generation([{"model": "a", "provider": "p"}])
    assert one != keys.generation([{"provider": "p", "model": "b"}])


def test_prompt_text_and_params_of_a_chat_request() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "capital of France?"}]},
        ],
        "temperature": 0,
    }
    assert keys.prompt_text(body) == "system:\nbe brief\nuser:\ncapital of France?"
    other_prompt = {**body, "messages": [{"role": "user", "content": "capital of Spain?"}]}
    assert keys.params_digest(body, generation="g") == keys.params_digest(
        other_prompt, generation="g"
    )
    assert keys.params_digest(body, generation="g") != keys.params_digest(
        {**body, "temperature": 1}, generation="g"
    )


def _answer(kind: str = "json") -> codec.Answer:
    parts = (b"data: {}\n\n", b"data: {}\n\n") if kind == "sse" else ()
    return codec.Answer(
        kind, b'{"id":"x"}' if kind == "json" else b"", parts, Usage(5, 7), 123, 1.5, None, True
    )


@pytest.mark.parametrize("kind", ["json", "sse"])
def test_an_entry_round_trips(kind: str) -> None:
    answer = _answer(kind)
    assert codec.decode(codec.encode(answer)) == answer


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-1],  # cut
        lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:],  # one bit flipped
        lambda b: b"SLC9" + b[4:],  # another version
        lambda b: b"",
        lambda b: b"garbage",
    ],
)
def test_a_damaged_entry_never_decodes(damage: object) -> None:
    raw = codec.encode(_answer("sse"))
    with pytest.raises(codec.CorruptEntry):
        codec.decode(damage(raw))  # type: ignore[operator]


async def test_the_memory_store_stays_within_its_bytes_evicting_least_recent() -> None:
    clock = FakeClock(1000.0)
    size = 100 + 1 + ENTRY_OVERHEAD  # value, one-character key, overhead
    store = MemoryAnswers(clock, max_bytes=3 * size)
    for key in "abc":
        await store.put(key, b"x" * 100, ttl_s=60, scope="s", model="m")
    assert await store.get("a") is not None  # a is now the most recent
    await store.put("d", b"x" * 100, ttl_s=60, scope="s", model="m")
    assert await store.get("b") is None
    assert {k for k in "acd" if await store.get(k)} == {"a", "c", "d"}
    assert store.evictions == 1
    assert store.bytes == 3 * size
    await store.put("huge", b"x" * (4 * size), ttl_s=60, scope="s", model="m")
    assert await store.get("huge") is None and len(store) == 3
    assert await store.drop(Selector(scope="s")) == 3
    assert store.bytes == 0


def _cache(config: CacheConfig, models: dict[str, ModelCacheOverride | None]) -> ResponseCache:
    return ResponseCache(
        config=config,
        store=MemoryAnswers(FakeClock(0), max_bytes=1 << 20),
        models=models,
        generations={},
        team_name={"t1": "research"}.get,
    )


def test_settings_come_from_the_team_then_the_model_then_the_section() -> None:
    config = CacheConfig(
        enabled=False,
        ttl_s=100,
        teams={"research": CacheOverride(enabled=True, ttl_s=5), "t2": CacheOverride(scope="key")},
    )
    cache = _cache(config, {"m": ModelCacheOverride(enabled=True, scope="global", ttl_s=50)})
    assert not cache.policy("n", None).enabled
    assert cache.policy("m", None).enabled and cache.policy("m", None).ttl_s == 50
    assert cache.policy("m", None).scope == "global"
    by_name = cache.policy("n", "t1")
    assert by_name.enabled and by_name.ttl_s == 5
    assert cache.policy("m", "t2").scope == "key"


def test_scope_is_never_wider_than_asked() -> None:
    assert scope_of("org", key_id="k", team_id="t", org_id="o") == "org:o"
    assert scope_of("team", key_id="k", team_id="t", org_id="o") == "team:t"
    assert scope_of("team", key_id="k", team_id=None, org_id="o") == "key:k"
    assert scope_of("org", key_id="k", team_id=None, org_id=None) == "key:k"
    assert scope_of("key", key_id="k", team_id="t", org_id="o") == "key:k"
    assert scope_of("global", key_id="k", team_id="t", org_id="o") == "global"


def _config(cache: dict[str, object], model_cache: dict[str, object] | None = None) -> object:
    model: dict[str, object] = {
        "name": "m",
        "deployments": [{"provider": "mock", "model": "x"}],
    }
    if model_cache is not None:
        model["cache"] = model_cache
    return GatewayConfig.model_validate(
        {"providers": {"mock": {"type": "mock"}}, "models": [model], "cache": cache}
    )


def test_only_a_model_may_choose_the_global_scope() -> None:
    _config({"enabled": True}, {"scope": "global"})
    with pytest.raises(ValidationError):
        _config({"scope": "global"})
    with pytest.raises(ValidationError):
        _config({"teams": {"t": {"scope": "global"}}})


def test_semantic_mode_needs_a_known_embedding_model() -> None:
    with pytest.raises(ValidationError, match="embedding_model"):
        _config({"mode": "semantic"})
    with pytest.raises(ValidationError, match="unknown model"):
        _config({"mode": "semantic", "embedding_model": "nope"})
    _config({"mode": "semantic", "embedding_model": "m"})
    with pytest.raises(ValidationError):
        _config({"unknown": 1})


def test_no_cache_is_built_unless_something_enables_it() -> None:
    from sluice import wiring

    clock = FakeClock(0)
    off = _config({"ttl_s": 10})
    assert wiring.response_cache(off, clock, None) is None  # type: ignore[arg-type]
    by_model = _config({}, {"enabled": True})
    built = wiring.response_cache(by_model, clock, None)  # type: ignore[arg-type]
    assert built is not None and isinstance(built.store, MemoryAnswers)
    assert built.policy("m", None).enabled
    by_team = _config({"teams": {"t": {"enabled": True}}})
    assert wiring.response_cache(by_team, clock, None) is not None  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="SLUICE_REDIS_URL"):
        wiring.response_cache(_config({"enabled": True, "backend": "redis"}), clock, None)  # type: ignore[arg-type]
