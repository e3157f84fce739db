"""Sign-in, sign-out and the person's own account (password change)."""

from __future__ import annotations

import asyncio
import hmac
import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sluice.console import forms, pages_sso
from sluice.console.context import (
    LOGIN_CSRF,
    ConsoleContext,
    CsrfRejected,
    SignInNeeded,
    forget_client,
    new_login_csrf,
    redirect,
)
from sluice.console.sessions import COOKIE, storage_scope
from sluice.console.signin import safe_next, session_cookie
from sluice.console.throttle import buckets
from sluice.errors import ErrorKind, GatewayError

GENERIC_FAILURE = "That email and password do not match an active account."
PASSWORDS_OFF = GatewayError(
    ErrorKind.CALLER_FORBIDDEN,
    "Password sign-in is switched off here; sign in with your identity provider.",
)


def _login_form(
    ctx: ConsoleContext,
    request: Request,
    *,
    status: int = 200,
    error: str | None = None,
    email: str = "",
) -> Response:
    token = request.cookies.get(LOGIN_CSRF) or new_login_csrf()
    response = ctx.render(
        request,
        "login.html",
        None,
        status=status,
        csrf=token,
        error=error,
        email=email,
        next=safe_next(request.query_params.get("next")),
        local_accounts=ctx.control.config.auth.local_accounts,
        identity_providers=[
            (name, idp.display_name) for name, idp in ctx.control.config.auth.oidc.items()
        ],
    )
    response.set_cookie(
        LOGIN_CSRF,
        token,
        max_age=3600,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=ctx.secure(request),
    )
    return response


async def _change_password(ctx: ConsoleContext, request: Request) -> Response:
    viewer = await ctx.viewer(request)
    form = await ctx.form(request, viewer)
    current = form.get("current_password")
    new = form.get("password")
    errors: dict[str, str] = {}
    record = await ctx.repo.login_record(viewer.user.email)
    stored = record.password_hash if record else None
    if stored is not None and not await asyncio.to_thread(
        ctx.passwords.verify, stored, current if isinstance(current, str) else ""
    ):
        errors["current_password"] = "this is not your current password"
    elif not isinstance(new, str) or new != form.get("password_again"):
        errors["password_again"] = "the two new passwords differ"
    else:
        try:
            hashed = await asyncio.to_thread(ctx.passwords.hash, new)
        except GatewayError as exc:
            errors["password"] = exc.message
        else:
            # Every other browser signed in as this person is signed out (same unit).
            await ctx.control.tenancy.set_password(viewer.principal, viewer.user.id, hashed)
            started = await ctx.sessions.start(viewer.user.id, method="password")
            response = redirect("/ui/account", "password")
            session_cookie(ctx, request, response, started.token)
            return response
    return ctx.render(request, "account.html", viewer, status=400, errors=errors)


def routes(ctx: ConsoleContext) -> list[Route]:
    sso = ctx.control.sso

    async def login_page(request: Request) -> Response:
        try:
            await ctx.viewer(request)
        except SignInNeeded:
            response = _login_form(ctx, request)
            if COOKIE in request.cookies:
                forget_client(response)  # the session expired or was ended elsewhere
            return response
        return redirect(safe_next(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        if not ctx.control.config.auth.local_accounts:
            return ctx.error_page(request, None, PASSWORDS_OFF)
        form = await request.form()
        cookie = request.cookies.get(LOGIN_CSRF, "")
        sent = form.get("csrf_token")
        if not cookie or not isinstance(sent, str) or not hmac.compare_digest(sent, cookie):
            raise CsrfRejected
        email = forms.text(form, "email", required=False, max_len=320)
        raw = form.get("password")
        password = raw if isinstance(raw, str) else ""
        if not email or not password:
            return _login_form(
                ctx, request, status=400, error="Enter your email and password.", email=email
            )
        keys = buckets(email, ctx.client_address(request))
        wait = ctx.throttle.retry_after_s(keys)
        if wait is not None:
            minutes = max(1, math.ceil(wait / 60))
            response = _login_form(
                ctx,
                request,
                status=429,
                error=f"Too many failed sign-ins. Try again in {minutes} minute(s).",
                email=email,
            )
            response.headers["retry-after"] = str(math.ceil(wait))
            return response
        identity = await ctx.identity.authenticate(email, password[:2048])
        if identity is None:
            ctx.throttle.failed(keys)
            return _login_form(ctx, request, status=400, error=GENERIC_FAILURE, email=email)
        ctx.throttle.succeeded(keys[0])
        await ctx.sessions.end(request.cookies.get(COOKIE))
        started = await ctx.sessions.start(identity.user_id, method=identity.method)
        response = redirect(safe_next(str(form.get("next") or "")))
        session_cookie(ctx, request, response, started.token)
        response.delete_cookie(LOGIN_CSRF, path="/ui")
        return response

    async def logout(request: Request) -> Response:
        viewer = await ctx.viewer(request, terms=False)  # signing out needs no terms
        await ctx.form(request, viewer)
        await ctx.sessions.end(request.cookies.get(COOKIE))
        return await pages_sso.signed_out(ctx, sso, request, viewer.session.method)

    async def session_state(request: Request) -> Response:
        # Polled by the pages' expiry timer and before each playground request: looking
        # must not count as a page view, or an open tab would never go idle.
        record = await ctx.sessions.load(request.cookies.get(COOKIE), touch=False)
        if record is None:
            raise SignInNeeded
        body = {
            "scope": storage_scope(record),
            "expires_in_s": int(ctx.sessions.remaining_s(record)),
        }
        return JSONResponse(body, headers={"cache-control": "no-store"})

    async def account(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        return ctx.render(request, "account.html", viewer)

    async def change_password(request: Request) -> Response:
        return await _change_password(ctx, request)

    return [
        Route("/ui/login", login_page, methods=["GET"]),
        Route("/ui/login", login, methods=["POST"]),
        Route("/ui/logout", logout, methods=["POST"]),
        Route("/ui/session.json", session_state, methods=["GET"]),
        Route("/ui/account", account, methods=["GET"]),
        Route("/ui/account/password", change_password, methods=["POST"]),
        *pages_sso.routes(ctx, sso),
    ]
