"""Stage 3, the response cache (docs/caching.md), between the hold and routing.

:func:`look_up` decides what the cache does with a request (``x-sluice-cache``): ``hit`` (a
stored answer is replayed and the request ends: no upstream call), ``miss`` (nothing
stored; the answer is kept when it succeeds), ``store`` (``Cache-Control: no-cache``: not
looked up, the answer replaces the entry), ``bypass`` (the cache is not used: off for this
model or team, a non-deterministic request, an answer that is server-side state). A kept
answer goes through :class:`~sluice.pipeline.cache_entry.Keeper`, which the request's sink
is wrapped in; :func:`keep` stores it once the request succeeded in full.

A store or index failure (Redis down) is a miss, never an error; an entry that does not
decode is dropped and counted, never returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import NamedTuple

from sluice.cache import codec, keys
from sluice.cache.base import Embed, Probe, SemanticHit, Vector
from sluice.cache.service import Policy, ResponseCache, scope_of
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.pipeline.cache_entry import Keeper, replay
from sluice.pipeline.context import RequestContext
from sluice.pipeline.outcome import Outcome
from sluice.pipeline.services import Services
from sluice.types import MEDIA_ENDPOINTS, Endpoint, Usage

log = logging.getLogger("sluice.cache")

HIT, MISS, STORE, BYPASS = b"hit", b"miss", b"store", b"bypass"
SIMILARITY_HEADER = b"x-sluice-cache-similarity"
TTL_HEADER = b"x-sluice-cache-ttl"


class Plan(NamedTuple):
    """What the cache does with one request that was not a hit."""

    ctx: RequestContext
    """The context to serve: its status set, its sink a :class:`Keeper` when kept."""
    status: str
    keeper: Keeper | None = None
    key: str = ""
    scope: str = ""
    ttl_s: float = 0.0
    probe: Probe | None = None
    vector: Vector | None = None


class Directives(NamedTuple):
    refresh: bool = False
    """``no-cache``: do not look up; store the answer."""
    no_store: bool = False
    only_cached: bool = False
    """``only-if-cached``: a miss is a 504, never an upstream call."""
    ttl_s: float | None = None


def directives(ctx: RequestContext) -> Directives:
    """The request's ``Cache-Control`` and ``x-sluice-cache-ttl``; 400 naming the header
    when the TTL is not a positive number of seconds."""
    refresh = no_store = only = False
    ttl_header: bytes | None = None
    for name, value in ctx.request_headers:
        if name == b"cache-control":
            for token in value.lower().split(b","):
                word = token.strip()
                refresh |= word == b"no-cache"
                no_store |= word == b"no-store"
                only |= word == b"only-if-cached"
        elif name == TTL_HEADER:
            ttl_header = value
    ttl: float | None = None
    if ttl_header is not None:
        try:
            ttl = float(ttl_header[:32].decode("ascii", "replace"))
        except ValueError:
            ttl = None
        if ttl is None or not 0 < ttl <= 365 * 86400:
            raise BadRequest(
                "x-sluice-cache-ttl must be a number of seconds above 0 (at most a year)",
                param="x-sluice-cache-ttl",
            )
    return Directives(refresh, no_store, only, ttl)


def cacheable(ctx: RequestContext, policy: Policy) -> bool:
    """Whether the request's answer may be shared at all."""
    if ctx.dialect.endpoint in MEDIA_ENDPOINTS:  # audio, images: not JSON to replay
        return False
    body = ctx.request.body
    limit = policy.max_temperature
    temperature = body.get("temperature")
    if limit is not None and isinstance(temperature, int | float) and temperature > limit:
        return False
    if ctx.dialect.endpoint is Endpoint.RESPONSES:
        # Server-side state: a stored response, a conversation, background work, MCP tools.
        if body.get("store", True) is not False or body.get("background"):
            return False
        if body.get("previous_response_id") is not None or body.get("conversation"):
            return False
        tools = body.get("tools")
        if isinstance(tools, list) and any(
            isinstance(t, dict) and t.get("type") == "mcp" for t in tools
        ):
            return False
    return True


def only_cached_miss() -> GatewayError:
    return GatewayError(
        ErrorKind.CALLER_CACHE_MISS,
        "Cache-Control: only-if-cached, and no stored answer matches the request",
    )


async def look_up(svc: Services, cache: ResponseCache, ctx: RequestContext) -> Outcome | Plan:
    """A hit (replayed to the sink: its outcome) or what to do instead (a :class:`Plan`)."""
    principal = ctx.arrival.principal
    model = ctx.entry.name
    policy = cache.policy(model, principal.team_id)
    said = directives(ctx)
    if not policy.enabled or not cacheable(ctx, policy) or (said.refresh and said.no_store):
        if said.only_cached:
            raise only_cached_miss()
        cache.stats.bypasses += 1
        return Plan(ctx._replace(cache_status=BYPASS), "bypass")
    scope = scope_of(
        policy.scope, key_id=principal.key_id, team_id=principal.team_id, org_id=principal.org_id
    )
    generation = cache.generation(model)
    body = ctx.request.body
    endpoint = str(ctx.dialect.endpoint)
    key = keys.exact_key(
        scope=scope,
        model=model,
        generation=generation,
        endpoint=endpoint,
        body=keys.normalised(body),
    )
    embed = _embedder(svc, cache, ctx)
    semantic = (
        cache.semantic
        if policy.mode == "semantic"
        and embed is not None
        and ctx.dialect.endpoint is not Endpoint.EMBEDDINGS
        else None
    )
    probe: Probe | None = None
    if semantic is not None:
        text = keys.prompt_text(body)
        if text:
            params = keys.params_digest(body, generation=generation)
            probe = Probe(scope=scope, model=model, endpoint=endpoint, params=params, text=text)
    vector: Vector | None = None
    if not said.refresh:
        found = await _exact(cache, key)
        if found is not None:
            return await _hit(cache, ctx, found, similarity=None)
        if semantic is not None and probe is not None and embed is not None:
            hit, vector = await _semantic(cache, probe, embed, policy.threshold)
            if hit is not None:
                answer = _decoded(cache, hit.value)
                if answer is not None:
                    return await _hit(cache, ctx, answer, similarity=hit.similarity)
        if said.only_cached:
            raise only_cached_miss()
        cache.stats.misses += 1
    elif said.only_cached:
        raise only_cached_miss()
    status = "store" if said.refresh else "miss"
    served = ctx._replace(cache_status=STORE if said.refresh else MISS)
    if said.no_store:
        return Plan(served, status)
    ttl = policy.ttl_s if said.ttl_s is None else min(said.ttl_s, policy.ttl_s)
    keeper = Keeper(ctx.sink, limit=policy.max_entry_bytes)
    return Plan(served._replace(sink=keeper), status, keeper, key, scope, ttl, probe, vector)


async def _exact(cache: ResponseCache, key: str) -> codec.Answer | None:
    try:
        raw = await cache.store.get(key)
    except GatewayError as exc:
        _failed(cache, "lookup failed, served as a miss", exc.message)
        return None
    if raw is None:
        return None
    answer = _decoded(cache, raw)
    if answer is None:  # never returned, and removed: the request goes on as a miss
        try:
            await cache.store.delete(key)
        except GatewayError as exc:
            _failed(cache, "could not remove an entry that does not decode", exc.message)
    return answer


def _decoded(cache: ResponseCache, raw: bytes) -> codec.Answer | None:
    try:
        return codec.decode(raw)
    except codec.CorruptEntry as exc:
        cache.stats.corrupt += 1
        log.warning("dropped a response cache entry that does not decode: %s", exc)
        return None


def _embedder(svc: Services, cache: ResponseCache, ctx: RequestContext) -> Embed | None:
    """Embeds a text with the configured model through the pipeline, for ``ctx``'s caller."""
    bound, model = cache.embed_for, cache.config.embedding_model
    if bound is None or model is None or cache.semantic is None:
        return None

    def embed(text: str) -> Awaitable[Vector | None]:
        return bound(svc, ctx, model, text)

    return embed


async def _semantic(
    cache: ResponseCache, probe: Probe, embed: Embed, threshold: float
) -> tuple[SemanticHit | None, Vector | None]:
    index = cache.semantic
    assert index is not None
    try:
        return await index.find(probe, embed=embed, threshold=threshold)
    except Exception as exc:  # the index's own failure is a miss, never the request's
        _failed(cache, "semantic lookup failed, served as a miss", type(exc).__name__)
        return None, None


async def _hit(
    cache: ResponseCache, ctx: RequestContext, answer: codec.Answer, *, similarity: float | None
) -> Outcome:
    stats = cache.stats
    stats.hits += 1
    stats.saved_micros += answer.cost_micros
    extra = [(b"x-sluice-cache", HIT)]
    if similarity is not None:
        stats.semantic_hits += 1
        extra.append((SIMILARITY_HEADER, f"{similarity:.4f}".encode()))
    ttft = await replay(ctx, answer, extra)
    return Outcome(
        usage=answer.usage,
        cost_micros=0,
        streamed=ctx.request.stream,
        ttft_ms=ttft,
        cache="hit",
        cost_saved_micros=answer.cost_micros,
    )


async def keep(cache: ResponseCache, ctx: RequestContext, plan: Plan, outcome: Outcome) -> None:
    """Store the answer of a request that succeeded in full (never a broken stream, an
    error, or an answer over the size cap). A store failure is counted, never raised."""
    keeper = plan.keeper
    if keeper is None or outcome.error is not None or outcome.partial or not keeper.complete:
        return
    if keeper.over:
        cache.stats.oversized += 1
        return
    answer = keeper.answer(
        ctx, usage=outcome.usage or Usage(), cost_micros=outcome.cost_micros or 0, now=time.time()
    )
    if answer is None:
        return
    value = codec.encode(answer)
    if len(value) > keeper.limit:
        cache.stats.oversized += 1
        return
    model = ctx.entry.name
    try:
        await cache.store.put(plan.key, value, ttl_s=plan.ttl_s, scope=plan.scope, model=model)
        cache.stats.stores += 1
    except GatewayError as exc:
        _failed(cache, "store failed, answer not kept", exc.message)
    index = cache.semantic
    if index is not None and plan.probe is not None and plan.vector is not None:
        try:
            await index.add(plan.probe, plan.vector, value, ttl_s=plan.ttl_s)
        except Exception as exc:  # the index's own failure never fails the request
            _failed(cache, "semantic add failed", type(exc).__name__)


def _failed(cache: ResponseCache, what: str, why: str) -> None:
    """Count a store or index failure; log the 1st, 2nd, 4th, 8th, ... (an outage would
    otherwise log once per request)."""
    stats = cache.stats
    stats.errors += 1
    n = stats.errors
    if n & (n - 1) == 0:
        log.warning("response cache %s: %s (%d failures so far)", what, why, n)
