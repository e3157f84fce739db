"""The response cache: status, invalidation and warm-up (admins); its analytics live with
the others (``GET /api/v1/analytics/cache``)."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field, StrictBool, StrictStr

from sluice.api.admin.deps import AdminContext, policy
from sluice.api.admin.schemas import Id, Name, Strict
from sluice.auth.principal import Principal
from sluice.control.cache import MAX_WARM_ENTRIES, Clear, WarmEntry
from sluice.control.policies import admin_only

YEAR_S = 365 * 86400.0
MAX_TEXT = 1_000_000


class ClearIn(Strict):
    model: Name | None = None
    """The public model whose entries go."""
    org_id: Id | None = None
    """The organisation's entries (and its teams' and keys')."""
    team_id: Id | None = None
    """The team's entries (and its keys')."""
    key_id: Id | None = None
    older_than_s: Annotated[float, Field(ge=0, le=100 * YEAR_S, allow_inf_nan=False)] | None = None
    """Entries stored more than this many seconds ago."""
    all: StrictBool = False
    """Everything (must be said when no other field is)."""


class MessageIn(Strict):
    role: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    content: Annotated[StrictStr, Field(max_length=MAX_TEXT)]


class WarmEntryIn(Strict):
    model: Name
    scope: Annotated[StrictStr, Field(pattern=r"^(global|(org|team|key):[A-Za-z0-9_-]{1,64})$")]
    """``org:ID``, ``team:ID``, ``key:ID`` (or ``global`` for a model whose scope is)."""
    prompt: Annotated[StrictStr, Field(max_length=MAX_TEXT)] | None = None
    """One user message (or give ``messages``)."""
    messages: Annotated[list[MessageIn], Field(max_length=1000)] | None = None
    answer: Annotated[StrictStr, Field(max_length=MAX_TEXT)]
    params: Annotated[dict[str, Any], Field(max_length=64)] = Field(default_factory=dict)
    """Other request fields the answer is for (e.g. ``temperature``)."""
    ttl_s: Annotated[float, Field(gt=0, le=YEAR_S, allow_inf_nan=False)] | None = None


class WarmIn(Strict):
    entries: Annotated[list[WarmEntryIn], Field(min_length=1, max_length=MAX_WARM_ENTRIES)]


def _entry(i: int, e: WarmEntryIn) -> WarmEntry:
    from sluice.errors import BadRequest

    if (e.prompt is None) == (e.messages is None):
        raise BadRequest(f"entries[{i}]: give prompt or messages (one of them)")
    messages = (
        [{"role": "user", "content": e.prompt}]
        if e.prompt is not None
        else [m.model_dump() for m in e.messages or ()]
    )
    for name in ("model", "messages", "stream"):
        if name in e.params:
            raise BadRequest(f"entries[{i}].params.{name}: not a parameter here")
    return WarmEntry(e.model, e.scope, messages, e.answer, dict(e.params), e.ttl_s)


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["cache"], prefix="/cache")
    Actor = Annotated[Principal, Depends(ctx.actor)]
    admin = ctx.control.response_cache

    @api.get("", **policy("admin"))
    async def status(actor: Actor) -> dict[str, Any]:
        """Whether the cache is on, its backend, bytes held, and its counters since start
        (this process)."""
        admin_only(actor)
        return admin.status()

    @api.post("/clear", **policy("admin"))
    async def clear(body: ClearIn, actor: Actor) -> dict[str, int]:
        """Drop entries from the exact store and the semantic index; how many went."""
        admin_only(actor)
        return await admin.clear(
            Clear(
                model=body.model,
                org_id=body.org_id,
                team_id=body.team_id,
                key_id=body.key_id,
                older_than_s=body.older_than_s,
                everything=body.all,
            )
        )

    @api.post("/warm", **policy("admin"))
    async def warm(body: WarmIn, actor: Actor) -> dict[str, int]:
        """Store prompt/answer pairs as the answers of chat requests."""
        admin_only(actor)
        return await admin.warm([_entry(i, e) for i, e in enumerate(body.entries)], principal=actor)

    return api
