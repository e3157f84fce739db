"""Usage dead letters: rows the database refused, listed, replayed or deleted by admins."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from datetime import UTC, datetime
from math import isfinite
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from sluice.api.admin.deps import ROW_ID_MAX, AdminContext, policy
from sluice.api.admin.schemas import Strict
from sluice.auth.principal import Principal
from sluice.tenancy.rules import forbidden, not_found
from sluice.usage.bounds import text
from sluice.usage.dead_letters import DeadLetter, ReplayResult, replay

MAX_IDS = 500
"""Letters one replay request may name."""
ID_MAX = ROW_ID_MAX
"""Letter ids are 32-bit integer columns."""


class DeadLetterOut(BaseModel):
    id: int
    request_id: str
    created_at: datetime
    """When the request was made."""
    failed_at: datetime
    """When the database last refused the row."""
    error: str
    """The database's message."""
    event: dict[str, Any]
    """The usage row as it was refused."""


class DeadLetterPage(BaseModel):
    data: list[DeadLetterOut]
    total: int
    next_before_id: int | None
    """Pass as ``before_id`` for the next (older) page; ``None`` on the last page."""


class ReplayIn(Strict):
    ids: Annotated[
        list[Annotated[int, Field(strict=True, ge=1, le=ID_MAX)]],
        Field(min_length=1, max_length=MAX_IDS),
    ]
    """Letters to replay (1 to 500)."""


class RefusedOut(BaseModel):
    id: int
    error: str


class ReplayOut(BaseModel):
    replayed: list[int]
    """Their rows are stored now; the letters were deleted."""
    refused: list[RefusedOut]
    """Refused again (kept, with the new error)."""
    missing: list[int]
    """No such letter."""


def _out(d: DeadLetter) -> DeadLetterOut:
    assert d.id is not None
    event = {k: v for k, v in _fields(d).items() if k != "bodies"}
    return DeadLetterOut(
        id=d.id,
        request_id=d.request_id,
        created_at=datetime.fromtimestamp(d.created_at, UTC),
        failed_at=datetime.fromtimestamp(d.failed_at, UTC),
        error=d.error,
        event=event,
    )


def _fields(d: DeadLetter) -> dict[str, Any]:
    """The event's fields as JSON can carry them (a refused row may hold anything)."""
    e = d.event
    out = {}
    for name in e.__dataclass_fields__:
        value = getattr(e, name)
        if isinstance(value, float) and not isfinite(value):
            value = None
        elif isinstance(value, str):
            value = text(value, len(value))  # unpaired surrogates cannot be sent
        out[name] = value
    return out


def _replay_out(r: ReplayResult) -> ReplayOut:
    return ReplayOut(
        replayed=r.replayed,
        refused=[RefusedOut(id=i, error=e) for i, e in r.refused.items()],
        missing=r.missing,
    )


def admin_only(actor: Principal) -> None:
    if not actor.is_admin:
        raise forbidden("only admins see and replay usage dead letters")


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["usage"], prefix="/usage/dead-letters")
    Actor = Annotated[Principal, Depends(ctx.actor)]
    records = ctx.control.records

    @api.get("", response_model=DeadLetterPage, **policy("admin"))
    async def list_dead_letters(
        actor: Actor,
        *,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        before_id: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
    ) -> DeadLetterPage:
        admin_only(actor)
        letters = records.dead_letters
        page = await letters.page(limit=limit + 1, before_id=before_id)
        more = len(page) > limit
        page = page[:limit]
        return DeadLetterPage(
            data=[_out(d) for d in page],
            total=await letters.count(),
            next_before_id=page[-1].id if more else None,
        )

    @api.post("/replay", response_model=ReplayOut, **policy("admin", errors=(503,)))
    async def replay_dead_letters(body: ReplayIn, actor: Actor) -> ReplayOut:
        """Insert the rows again after making them fit by the current rules; a letter
        whose row is stored is deleted, one refused again is kept with the new error."""
        admin_only(actor)
        ids = list(dict.fromkeys(body.ids))
        # A database outage propagates: the admin API answers it with 503
        # dependency_unavailable (``install_error_handlers``).
        result = await replay(
            records.usage.insert_many, records.dead_letters, ids, now=ctx.control.clock.now()
        )
        if result.replayed or result.refused:
            await ctx.tenancy.audit_event(
                actor,
                "usage.dead_letters_replay",
                ("usage_dead_letters", ",".join(str(i) for i in ids)[:100]),
                after={"replayed": result.replayed, "refused": sorted(result.refused)},
            )
        return _replay_out(result)

    @api.delete("/{letter_id}", status_code=204, **policy("admin"))
    async def delete_dead_letter(
        letter_id: Annotated[int, Path(ge=1, le=ID_MAX)], actor: Actor
    ) -> None:
        admin_only(actor)
        async with ctx.tenancy.changing(
            actor, "usage.dead_letter_delete", ("usage_dead_letter", str(letter_id))
        ) as unit:
            if not await unit.dead_letters.delete([letter_id]):
                raise not_found("dead letter", str(letter_id))

    return api
