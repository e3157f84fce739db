"""The response cache's control plane: what it holds and did, invalidation (by model, team,
organisation, key, age, or all; the exact store and the semantic index alike) and warm-up
from prompt/answer pairs. The admin API and the CLI (through the admin API) share it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from sluice.auth.principal import Principal
from sluice.cache import codec, keys
from sluice.cache.base import Probe, Selector, Vector
from sluice.cache.service import ResponseCache
from sluice.clock import Clock
from sluice.errors import BadRequest
from sluice.tenancy.resolve import DirectoryIndex
from sluice.tokens import estimate_prompt, estimate_text
from sluice.types import Usage

MAX_WARM_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Clear:
    """What to drop; every field set narrows. ``everything`` must be said explicitly."""

    model: str | None = None
    org_id: str | None = None
    """The organisation's entries, and those of its teams and keys."""
    team_id: str | None = None
    """The team's entries, and those of its keys."""
    key_id: str | None = None
    older_than_s: float | None = None
    """Entries stored more than this many seconds ago."""
    everything: bool = False


@dataclass(frozen=True, slots=True)
class WarmEntry:
    """One prompt/answer pair, stored as the answer to a chat request of ``messages`` (and
    ``params``) to ``model`` in ``scope``."""

    model: str
    scope: str
    """``org:ID``, ``team:ID``, ``key:ID``, or ``global`` for a model whose scope is global."""
    messages: list[dict[str, Any]]
    answer: str
    params: dict[str, Any]
    ttl_s: float | None = None


class CacheAdmin:
    """Over the process's :class:`~sluice.cache.service.ResponseCache` (``None``: no cache
    configured; every operation says so with a 400)."""

    def __init__(
        self,
        cache: ResponseCache | None,
        *,
        directory: Callable[[], DirectoryIndex],
        principals: Callable[[], list[Principal]],
        canonical: Callable[[str], str | None],
        clock: Clock,
    ) -> None:
        self.cache = cache
        self.embed: Callable[[Principal, str], Awaitable[Vector | None]] | None = None
        """Embeds a warm-up prompt for the semantic index (the embedding model called through
        the pipeline, accounted to the admin warming up); set by the composition root with
        the index. ``None``: warm-up fills the exact store only."""
        self._directory = directory
        self._principals = principals
        self._canonical = canonical
        self._clock = clock

    def _on(self) -> ResponseCache:
        if self.cache is None:
            raise BadRequest("the response cache is not enabled (cache.enabled in the config)")
        return self.cache

    def status(self) -> dict[str, Any]:
        cache = self.cache
        if cache is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "backend": type(cache.store).__name__,
            "semantic_index": cache.semantic is not None,
            "bytes": cache.store_bytes(),
            "evictions": cache.store_evictions(),
            **cache.stats.as_dict(),
        }

    def _scopes(self, clear: Clear) -> list[str | None]:
        if clear.key_id is not None:
            return ["key:" + clear.key_id]
        if clear.team_id is not None:
            team = clear.team_id
            members = [p.key_id for p in self._principals() if p.team_id == team]
            return ["team:" + team, *("key:" + k for k in members)]
        if clear.org_id is not None:
            org = clear.org_id
            teams = [t.id for t in self._directory().teams.values() if t.org_id == org]
            members = [p.key_id for p in self._principals() if p.org_id == org]
            return ["org:" + org, *("team:" + t for t in teams), *("key:" + k for k in members)]
        return [None]

    async def clear(self, clear: Clear) -> dict[str, int]:
        """Drop the selected entries from the exact store and the semantic index."""
        cache = self._on()
        narrowed = (clear.model, clear.org_id, clear.team_id, clear.key_id, clear.older_than_s)
        if not clear.everything and all(v is None for v in narrowed):
            raise BadRequest("say what to clear (model, team, org, key, older_than_s) or all")
        older = None if clear.older_than_s is None else self._clock.now() - clear.older_than_s
        exact = semantic = 0
        for scope in self._scopes(clear):
            selector = Selector(model=clear.model, scope=scope, older_than=older)
            exact += await cache.store.drop(selector)
            if cache.semantic is not None:
                semantic += await cache.semantic.drop(selector)
        return {"exact": exact, "semantic": semantic}

    async def warm(self, entries: Iterable[WarmEntry], *, principal: Principal) -> dict[str, int]:
        """Store each pair as an exact entry, and in the semantic index when the model's mode
        is semantic and :attr:`embed` is set (the embeddings are ``principal``'s requests).
        Raises 400 naming the first bad entry."""
        cache = self._on()
        stored = semantic = 0
        for i, entry in enumerate(entries):
            model = self._canonical(entry.model)
            if model is None:
                raise BadRequest(f"entries[{i}].model: unknown model {entry.model!r}")
            policy = cache.policy(model, None)
            if entry.scope == "global" and policy.scope != "global":
                raise BadRequest(f"entries[{i}].scope: model {model!r} is not global")
            body = {**entry.params, "messages": entry.messages}
            key = keys.exact_key(
                scope=entry.scope,
                model=model,
                generation=cache.generation(model),
                endpoint="chat",
                body=keys.normalised(body),
            )
            value = codec.encode(_answer(model, entry.answer, body, now=time.time()))
            if len(value) > policy.max_entry_bytes:
                raise BadRequest(f"entries[{i}].answer: larger than the entry cap")
            ttl = policy.ttl_s if entry.ttl_s is None else min(entry.ttl_s, policy.ttl_s)
            await cache.store.put(key, value, ttl_s=ttl, scope=entry.scope, model=model)
            stored += 1
            if policy.mode == "semantic" and await self._index(
                principal, model=model, entry=entry, body=body, value=value, ttl=ttl
            ):
                semantic += 1
        return {"stored": stored, "semantic": semantic}

    async def _index(
        self,
        principal: Principal,
        *,
        model: str,
        entry: WarmEntry,
        body: dict[str, Any],
        value: bytes,
        ttl: float,
    ) -> bool:
        cache, embed = self.cache, self.embed
        text = keys.prompt_text(body)
        if cache is None or cache.semantic is None or embed is None or not text:
            return False
        params = keys.params_digest(body, generation=cache.generation(model))
        probe = Probe(scope=entry.scope, model=model, endpoint="chat", params=params, text=text)
        vector = await embed(principal, text)
        if vector is None:
            return False
        await cache.semantic.add(probe, vector, value, ttl_s=ttl)
        return True


def _answer(model: str, text: str, body: dict[str, Any], *, now: float) -> codec.Answer:
    usage = Usage(estimate_prompt(body), estimate_text(len(text)), estimated=True)
    completion = {
        "id": "chatcmpl-warm-" + keys.params_digest({"a": text, "b": body}, generation="")[:24],
        "object": "chat.completion",
        "created": int(now),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
    }
    return codec.Answer("json", orjson.dumps(completion), (), usage, 0, now)
