"""The console's ASGI app: every page under ``/ui``, static files under ``/ui/static``."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sluice.console import (
    formats,
    pages_admin,
    pages_alerts,
    pages_audit,
    pages_auth,
    pages_batches,
    pages_catalog,
    pages_edit,
    pages_files,
    pages_keys,
    pages_mcp,
    pages_ops,
    pages_org,
    pages_play,
    pages_requests,
    pages_sso_admin,
    pages_team,
    pages_terms,
    pages_usage,
)
from sluice.console.context import HERE, ConsoleContext, CsrfRejected, SignInNeeded, TermsNeeded
from sluice.control.plane import ControlPlane
from sluice.errors import ErrorKind, GatewayError
from sluice.storage.availability import as_dependency_unavailable

MESSAGES = {
    "revoked": "The key was revoked.",
    "key_saved": "The key was saved.",
    "alert_test": "A test alert was recorded and sent; its delivery shows below.",
    "user_saved": "The user's limits were saved.",
    "user_archived": "The user was archived: signed out, their keys revoked.",
    "team_archived": "The team was archived and its keys revoked.",
    "org_archived": "The organisation and its teams were archived and their keys revoked.",
    "member": "The member was saved.",
    "member_removed": "The member was removed from the team.",
    "service_account": "The service account was created.",
    "service_account_deleted": "The service account was deleted and its keys revoked.",
    "limits": "Limits and model access were saved.",
    "team": "The team was created.",
    "user": "The user was created.",
    "org": "The organisation was created.",
    "global": "The global limits were saved.",
    "password": "The password was changed; other sessions of that account were signed out.",
    "role": "The admin role was changed.",
    "disabled": "The account was updated.",
    "credential": "The credential was stored (encrypted).",
    "credential_removed": "The stored credential was deleted.",
    "model_saved": "The model was saved; every replica serves it within a second.",
    "model_removed": "The model was removed.",
    "price_saved": "The price was saved.",
    "provider_saved": "The provider was saved.",
    "provider_removed": "The provider was removed.",
    "terms": "Thank you: you accepted the terms of service.",
    "batch_cancelled": "The batch is being cancelled: lines running finish, no new line starts.",
    "file_uploaded": "The file was uploaded.",
    "file_deleted": "The file was deleted.",
}


def build_console(control: ControlPlane) -> Starlette:
    ctx = ConsoleContext.build(control)
    ctx.messages.update(MESSAGES)
    formats.install(ctx.templates.env)

    async def sign_in(request: Request, exc: Exception) -> Response:
        return ctx.sign_in_redirect(request)

    async def terms(request: Request, exc: Exception) -> Response:
        return ctx.terms_redirect(request)

    async def csrf(request: Request, exc: Exception) -> Response:
        return ctx.csrf_page(request)

    async def gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return ctx.error_page(request, getattr(request.state, "viewer", None), exc)

    async def database(request: Request, exc: Exception) -> Response:
        # The database is down or frozen: a readable 503 page, not a 500; any other error of
        # these classes is a bug and goes on to the server's 500.
        unavailable = as_dependency_unavailable(exc)
        if unavailable is None:
            raise exc
        return ctx.error_page(request, None, unavailable)

    async def not_found(request: Request, exc: Exception) -> Response:
        if getattr(exc, "status_code", 404) == 405:
            error = GatewayError(
                ErrorKind.CALLER_METHOD_NOT_ALLOWED, f"{request.method} is not allowed here"
            )
        else:
            error = GatewayError(ErrorKind.CALLER_NOT_FOUND, "there is no such page")
        return ctx.error_page(request, None, error)

    async def favicon(request: Request) -> Response:
        # Browsers ask for /favicon.ico whatever the page links: the packaged icon, not a 404.
        return FileResponse(
            HERE / "static" / "favicon.ico",
            media_type="image/x-icon",
            headers={"cache-control": "public, max-age=86400"},
        )

    routes = [
        *pages_auth.routes(ctx),
        *pages_keys.routes(ctx),
        *pages_edit.routes(ctx),
        *pages_files.routes(ctx),
        *pages_team.routes(ctx),
        *pages_org.routes(ctx),
        *pages_admin.routes(ctx),
        *pages_sso_admin.routes(ctx),
        *pages_ops.routes(ctx),
        *pages_audit.routes(ctx),
        *pages_alerts.routes(ctx),
        *pages_play.routes(ctx),
        *pages_usage.routes(ctx),
        *pages_requests.routes(ctx),
        *pages_mcp.routes(ctx),
        *pages_catalog.routes(ctx),
        *pages_batches.routes(ctx),
        *pages_terms.routes(ctx),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Mount("/ui/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={
            SignInNeeded: sign_in,
            TermsNeeded: terms,
            CsrfRejected: csrf,
            GatewayError: gateway_error,
            SQLAlchemyError: database,
            OSError: database,
            404: not_found,
            405: not_found,
        },
    )
