"""Files: the signed-in person's files (those any of their keys uploaded; upload, download,
delete) and, for a team admin, the files of a team's service accounts (one team at a time,
``?team=ID``)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from sluice.console.context import (
    CSRF_FIELD,
    CSRF_HEADER,
    SECURITY_HEADERS,
    ConsoleContext,
    CsrfRejected,
    Viewer,
    field_errors,
    not_found,
    redirect,
)
from sluice.control.files import UPLOAD_PURPOSES
from sluice.control.upload import FIELDS, read_upload
from sluice.errors import GatewayError
from sluice.files.multipart import ClientLeft, FormReader, boundary_of
from sluice.files.owner import FileOwner

SHOWN = 200
"""Files listed per owner (newest first); the API pages through all of them."""
FORM_OVERHEAD_BYTES = 64 * 1024
EXPIRY_CHOICES = (
    ("", "never"),
    ("86400", "1 day"),
    ("604800", "7 days"),
    ("2592000", "30 days"),
)


def routes(ctx: ConsoleContext) -> list[Route]:
    files = ctx.control.files

    def owner(viewer: Viewer, request: Request) -> FileOwner:
        team_id = request.query_params.get("team")
        if not team_id:
            return files.owner(viewer.principal)
        team = ctx.control.cache.index.teams.get(team_id)
        if team is None:
            raise not_found("team", team_id)
        return files.owner(viewer.principal, team=team)

    async def render(
        request: Request,
        viewer: Viewer,
        *,
        status: int = 200,
        errors: dict[str, str] | None = None,
    ) -> Response:
        mine = await files.page(files.owner(viewer.principal), limit=SHOWN)
        index = ctx.control.cache.index
        choices = [
            {"id": t.id, "label": f"{t.name} ({org.name})" if org else t.name}
            for t in viewer.admin_teams
            for org in (index.orgs.get(t.org_id),)
        ]
        shown: dict[str, Any] | None = None
        team_id = request.query_params.get("team")
        if team_id and status < 400:
            team = index.teams.get(team_id)
            if team is None:
                raise not_found("team", team_id)
            page = await files.page(files.owner(viewer.principal, team=team), limit=SHOWN)
            shown = {"team": team, "page": page}
        return ctx.render(
            request,
            "files.html",
            viewer,
            status=status,
            mine=mine,
            team_choices=sorted(choices, key=lambda c: c["label"]),
            shown=shown,
            purposes=UPLOAD_PURPOSES,
            expiry_choices=EXPIRY_CHOICES,
            max_file_bytes=files.max_file_bytes,
            errors=errors or {},
        )

    async def page(request: Request) -> Response:
        return await render(request, await ctx.viewer(request))

    async def upload(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        limit = files.max_file_bytes

        def csrf(fields: Mapping[str, str]) -> None:
            sent = fields.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
            if not hmac.compare_digest(sent, viewer.csrf):
                raise CsrfRejected

        try:
            reader = FormReader(
                request.receive,
                boundary_of(request.headers.get("content-type", "").encode("latin-1")),
                max_body_bytes=limit + FORM_OVERHEAD_BYTES,
                file_limit=limit,
            )
            await read_upload(
                files,
                files.owner(viewer.principal),
                reader,
                fields=FIELDS | {CSRF_FIELD},
                before_file=csrf,
            )
        except GatewayError as exc:
            return await render(request, viewer, status=exc.status, errors=field_errors(exc))
        except ClientLeft:
            return Response(status_code=400)
        return redirect("/ui/files", "file_uploaded")

    async def content(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        record, chunks = await files.content(owner(viewer, request), request.path_params["id"])
        first = await anext(chunks, b"")

        async def body() -> Any:
            yield first
            async for chunk in chunks:
                yield chunk

        headers = {
            **SECURITY_HEADERS,
            "content-length": str(record.bytes),
            "content-disposition": f"attachment; filename*=UTF-8''{quote(record.filename)}",
        }
        return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)

    async def delete(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        await ctx.form(request, viewer)
        await files.delete(owner(viewer, request), request.path_params["id"])
        team = request.query_params.get("team")
        back = f"/ui/files?team={quote(team)}&done=file_deleted" if team else None
        return RedirectResponse(back, 303) if back else redirect("/ui/files", "file_deleted")

    return [
        Route("/ui/files", page, methods=["GET"]),
        Route("/ui/files", upload, methods=["POST"]),
        Route("/ui/files/{id}/content", content, methods=["GET"]),
        Route("/ui/files/{id}/delete", delete, methods=["POST"]),
    ]
