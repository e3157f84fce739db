"""Console sign-in through OpenID Connect identity providers (``auth.oidc`` in the config):
``/ui/sso/<idp>/start`` sends the browser to the IdP, ``/ui/sso/<idp>/callback`` verifies
what comes back and opens a console session exactly as a password sign-in does.

Refusals (bad or replayed state, wrong nonce or issuer, an IdP that is down, a person not
provisioned here) are a page that says what happened, never a 500.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sluice.auth.oidc.service import METHOD_PREFIX, SsoService
from sluice.auth.oidc.transactions import TTL_S
from sluice.console.context import ConsoleContext, forget_client, redirect
from sluice.console.sessions import COOKIE
from sluice.console.signin import safe_next, session_cookie
from sluice.errors import GatewayError

BROWSER_COOKIE = "sluice_sso"
"""Binds a sign-in's callback to the browser that started it."""
ID_TOKEN_COOKIE = "sluice_id_token"
"""The ID token of an SSO session, sent back to the IdP as ``id_token_hint`` at sign-out."""


def base_url(ctx: ConsoleContext, request: Request) -> str:
    scheme = "https" if ctx.secure(request) else request.url.scheme
    return f"{scheme}://{request.url.netloc}"


async def signed_out(
    ctx: ConsoleContext, sso: SsoService, request: Request, method: str
) -> Response:
    """After the console session ended: a session from an IdP goes on to
    ``/ui/sso/<idp>/signed-out`` (which sends the browser to the IdP's end-session endpoint
    when it has one), any other to the sign-in page."""
    idp = sso.idp_of(method)
    if idp is not None:
        response = redirect(f"/ui/sso/{idp.name}/signed-out")
    else:
        response = redirect("/ui/login")
        response.delete_cookie(ID_TOKEN_COOKIE, path="/ui")
    forget_client(response)
    return response


def routes(ctx: ConsoleContext, sso: SsoService) -> list[Route]:
    def failed(request: Request, exc: GatewayError) -> Response:
        # The browser cookie stays: a forged callback must not spoil the real one.
        return ctx.render(
            request,
            "error.html",
            None,
            status=exc.status,
            title="Sign-in failed",
            detail=exc.message,
        )

    async def start(request: Request) -> Response:
        name = request.path_params["idp"]
        callback = f"{base_url(ctx, request)}/ui/sso/{name}/callback"
        try:
            started = await sso.login.start(
                name,
                redirect_uri=callback,
                next_path=safe_next(request.query_params.get("next")),
            )
        except GatewayError as exc:
            return failed(request, exc)
        response = RedirectResponse(started.url, status_code=303)
        # Lax: the IdP's redirect back is a top-level GET, which carries it.
        response.set_cookie(
            BROWSER_COOKIE,
            started.browser_token,
            max_age=int(TTL_S),
            path="/ui/sso",
            httponly=True,
            samesite="lax",
            secure=ctx.secure(request),
        )
        return response

    async def callback(request: Request) -> Response:
        name = request.path_params["idp"]
        params = {k: v for k, v in request.query_params.items() if len(v) <= 4096}
        try:
            done = await sso.login.finish(
                name, params, browser_token=request.cookies.get(BROWSER_COOKIE)
            )
            config = sso.login.provider(name).config
            user_id = await sso.provisioner.provision(name, config, done.claims)
        except GatewayError as exc:
            return failed(request, exc)
        await ctx.sessions.end(request.cookies.get(COOKIE))
        started = await ctx.sessions.start(user_id, method=METHOD_PREFIX + name)
        response = redirect(safe_next(done.next))
        session_cookie(ctx, request, response, started.token)
        response.set_cookie(
            ID_TOKEN_COOKIE,
            done.id_token,
            max_age=int(ctx.sessions.max_s),
            path="/ui",
            httponly=True,
            samesite="lax",
            secure=ctx.secure(request),
        )
        response.delete_cookie(BROWSER_COOKIE, path="/ui/sso")
        return response

    async def ended(request: Request) -> Response:
        # A page, not a redirect: this request is still the sign-out form's navigation,
        # whose redirects the console's CSP (form-action 'self') keeps on this origin.
        # Only right after a sign-out (the ID token cookie is still there, the console
        # session is not): another site linking here cannot sign a person out of the IdP.
        if await ctx.sessions.load(request.cookies.get(COOKIE), touch=False) is not None:
            return redirect("/ui/keys")
        name = request.path_params["idp"]
        back = f"{base_url(ctx, request)}/ui/login"
        hint = request.cookies.get(ID_TOKEN_COOKIE)
        url = await sso.end_session_url(METHOD_PREFIX + name, hint, back) if hint else None
        response = (
            redirect("/ui/login")
            if url is None
            else ctx.render(
                request,
                "sso_signout.html",
                None,
                end_session_url=url,
                display_name=sso.login.providers[name].config.display_name,
            )
        )
        response.delete_cookie(ID_TOKEN_COOKIE, path="/ui")
        return response

    return [
        Route("/ui/sso/{idp}/signed-out", ended, methods=["GET"]),
        Route("/ui/sso/{idp}/start", start, methods=["GET"]),
        Route("/ui/sso/{idp}/callback", callback, methods=["GET"]),
    ]
