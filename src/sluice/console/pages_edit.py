"""Editing what already exists: a key (name, expiry, models, limits, budget) and a user's
limits, budget and model access, within the caller's rights as the key and tenancy services
decide; archiving organisations, teams and users through the archive service."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.auth.keys import KeyRecord
from sluice.console import forms
from sluice.console.context import ConsoleContext, Viewer, field_errors, redirect
from sluice.errors import BadRequest, GatewayError
from sluice.tenancy.model import Governance, User


def expiry_on(form: FormData) -> float | None:
    """``expires_on`` (``YYYY-MM-DD``, the key stops at 00:00 UTC that day); empty: never."""
    raw = forms.text(form, "expires_on", required=False, max_len=10)
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest("expires_on must be a date (YYYY-MM-DD)", param="expires_on") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def key_values(record: KeyRecord) -> dict[str, str]:
    values = forms.governance_values(Governance.of_key(record))
    values["name"] = record.name
    if record.expires_at is not None:
        values["expires_on"] = datetime.fromtimestamp(record.expires_at, UTC).date().isoformat()
    return values


def routes(ctx: ConsoleContext) -> list[Route]:
    keys = ctx.control.keys
    t = ctx.control.tenancy
    clock = ctx.control.clock
    canonical = ctx.control.table.canonical

    async def key_page(
        request: Request,
        viewer: Viewer,
        record: KeyRecord,
        *,
        status: int = 200,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Response:
        return ctx.render(
            request,
            "key_edit.html",
            viewer,
            status=status,
            key=record,
            errors=errors or {},
            values=values or key_values(record),
        )

    async def edit_key(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        record, _ = await keys.visible(viewer.principal, request.path_params["key_id"])
        return await key_page(request, viewer, record)

    async def save_key(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        form = await ctx.form(request, viewer)
        record, _ = await keys.visible(viewer.principal, request.path_params["key_id"])
        try:
            changes: dict[str, Any] = {
                "name": forms.text(form, "name"),
                "expires_at": expiry_on(form),
            }
            gov = forms.governance(form, Governance.of_key(record), canonical, mcp=False)
            await keys.update(viewer.principal, record.id, changes, gov, now=clock.now())
        except GatewayError as exc:
            errors = field_errors(exc)
            if "expires_at" in errors:  # the service's name for the date field
                errors["expires_on"] = errors.pop("expires_at")
            return await key_page(
                request,
                viewer,
                record,
                status=exc.status,
                errors=errors,
                values=forms.submitted(form),
            )
        return redirect("/ui/keys", "key_saved")

    async def user_page(
        request: Request,
        viewer: Viewer,
        user: User,
        *,
        status: int = 200,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Response:
        if values is None:
            values = forms.governance_values(user.governance)
            values["max_keys"] = "" if user.max_keys is None else str(user.max_keys)
        return ctx.render(
            request,
            "user_edit.html",
            viewer,
            status=status,
            person=user,
            errors=errors or {},
            values=values,
        )

    async def edit_user(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        user = await t.visible_user(viewer.principal, request.path_params["user_id"])
        return await user_page(request, viewer, user)

    async def save_user(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        form = await ctx.form(request, viewer)
        user = await t.visible_user(viewer.principal, request.path_params["user_id"])
        try:
            await t.update_user(
                viewer.principal,
                user.id,
                name=None,
                disabled=None,
                max_keys=forms.count(form, "max_keys"),
                fields={"max_keys", "limits", "budget", "models"},
                gov=forms.governance(form, user.governance, canonical, mcp=False),
            )
        except GatewayError as exc:
            return await user_page(
                request,
                viewer,
                user,
                status=exc.status,
                errors=field_errors(exc),
                values=forms.submitted(form),
            )
        return redirect(f"/ui/users/{user.id}", "user_saved")

    async def archive_user(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        await ctx.form(request, viewer)
        await ctx.control.archive.user(viewer.principal, request.path_params["user_id"])
        back = "/ui/admin/users" if viewer.principal.is_admin else "/ui/org"
        return redirect(back, "user_archived")

    async def archive_team(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        await ctx.form(request, viewer)
        team = await ctx.control.archive.team(viewer.principal, request.path_params["team_id"])
        return redirect(f"/ui/org/{team.org_id}", "team_archived")

    async def archive_org(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        await ctx.form(request, viewer)
        await ctx.control.archive.org(viewer.principal, request.path_params["org_id"])
        return redirect("/ui/admin", "org_archived")

    return [
        Route("/ui/keys/{key_id}/edit", edit_key, methods=["GET"]),
        Route("/ui/keys/{key_id}/edit", save_key, methods=["POST"]),
        Route("/ui/users/{user_id}", edit_user, methods=["GET"]),
        Route("/ui/users/{user_id}", save_user, methods=["POST"]),
        Route("/ui/users/{user_id}/archive", archive_user, methods=["POST"]),
        Route("/ui/team/{team_id}/archive", archive_team, methods=["POST"]),
        Route("/ui/admin/orgs/{org_id}/archive", archive_org, methods=["POST"]),
    ]
