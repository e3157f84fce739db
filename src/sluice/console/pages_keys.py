"""Keys: everyone's own keys (create with the secret shown once, list, rotate, revoke) and
the keys they manage for others, as the key service lets them."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.auth.keys import KeyRecord
from sluice.auth.service import CreatedKey
from sluice.console import forms
from sluice.console.context import ConsoleContext, Viewer, field_errors, redirect
from sluice.console.spend import month_spend
from sluice.errors import BadRequest, GatewayError
from sluice.tenancy.model import Governance

DAY_S = 86_400.0
GRACE_CHOICES = {"0": 0.0, "3600": 3600.0, "86400": 86_400.0}


def key_view(
    record: KeyRecord, now: float, owners: dict[str, str], spend: dict[str, float] | None = None
) -> dict[str, Any]:
    """``spend``: US dollars this month per key id (absent: no usage; ``None``: not shown)."""
    if record.revoked_at is not None:
        state = "revoked"
    elif record.expires_at is not None and now >= record.expires_at:
        state = "expired"
    else:
        state = "active"
    owner = owners.get(record.user_id or record.service_account_id or "", "—")
    spent = None if spend is None else spend.get(record.id, 0.0)
    return {"record": record, "state": state, "owner": owner, "spend": spent}


def routes(ctx: ConsoleContext) -> list[Route]:
    keys = ctx.control.keys
    clock = ctx.control.clock

    async def render(
        request: Request,
        viewer: Viewer,
        *,
        status: int = 200,
        created: CreatedKey | None = None,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Response:
        index = ctx.control.cache.index
        owners = {u.id: u.email for u in index.users.values()}
        owners.update({s.id: f"service account {s.name}" for s in index.service_accounts.values()})
        now = clock.now()
        visible = await keys.list(viewer.principal)
        spend = await month_spend(ctx, viewer, by="key", ids=(r.id for r in visible))
        mine = [key_view(r, now, owners, spend) for r in visible if r.user_id == viewer.user.id]
        others = [key_view(r, now, owners, spend) for r in visible if r.user_id != viewer.user.id]
        teams = [index.teams[t] for t in sorted(viewer.principal.teams) if t in index.teams]
        return ctx.render(
            request,
            "keys.html",
            viewer,
            status=status,
            mine=mine,
            others=others,
            teams=teams,
            created=created,
            errors=errors or {},
            values=values or {},
        )

    async def page(request: Request) -> Response:
        return await render(request, await ctx.viewer(request))

    def expiry(form: FormData) -> float | None:
        days = forms.count(form, "expires_days", maximum=3650)
        if days == 0:
            raise BadRequest(
                "expires_days must be at least 1 (or empty: never)", param="expires_days"
            )
        return clock.now() + days * DAY_S if days else None

    async def create(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        form = await ctx.form(request, viewer)
        try:
            models = forms.names(form, "models", ctx.control.table.canonical)
            created = await keys.create(
                viewer.principal,
                name=forms.text(form, "name"),
                now=clock.now(),
                team_id=forms.text(form, "team_id", required=False) or None,
                user_id=None,
                service_account_id=None,
                expires_at=expiry(form),
                gov=Governance(models=models),
                metadata={"created_by": "console"},
            )
        except GatewayError as exc:
            return await render(
                request,
                viewer,
                status=exc.status,
                errors=field_errors(exc),
                values=forms.submitted(form),
            )
        return await render(request, viewer, status=201, created=created)

    async def rotate(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        form = await ctx.form(request, viewer)
        grace = GRACE_CHOICES.get(str(form.get("grace_s", "0")))
        try:
            if grace is None:
                raise BadRequest("grace_s must be 0, 3600 or 86400", param="grace_s")
            created = await keys.rotate(
                viewer.principal, request.path_params["key_id"], now=clock.now(), grace_s=grace
            )
        except GatewayError as exc:
            return await render(request, viewer, status=exc.status, errors=field_errors(exc))
        return await render(request, viewer, created=created)

    async def revoke(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        await ctx.form(request, viewer)
        try:
            await keys.revoke(viewer.principal, request.path_params["key_id"], now=clock.now())
        except GatewayError as exc:
            return await render(request, viewer, status=exc.status, errors=field_errors(exc))
        back = request.query_params.get("back", "")
        return redirect(back if back.startswith("/ui/team/") else "/ui/keys", "revoked")

    return [
        Route("/ui/keys", page, methods=["GET"]),
        Route("/ui/keys", create, methods=["POST"]),
        Route("/ui/keys/{key_id}/rotate", rotate, methods=["POST"]),
        Route("/ui/keys/{key_id}/revoke", revoke, methods=["POST"]),
    ]
