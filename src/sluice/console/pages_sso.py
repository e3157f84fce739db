"""Console sign-in through OpenID Connect identity providers (``auth.oidc`` in the config):
``/ui/sso/<idp>/start`` sends the browser to the IdP, ``/ui/sso/<idp>/callback`` verifies
what comes back and opens a console session exactly as a password sign-in does.

Refusals (bad or replayed state, wrong nonce or issuer, an IdP that is down, a person not
provisioned here) are a page that says what happened, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sluice.auth.oidc.login import OidcLogin
from sluice.auth.oidc.metadata import IdentityProvider
from sluice.auth.oidc.provision import Provisioner
from sluice.auth.oidc.transactions import TTL_S, transaction_store
from sluice.console.context import ConsoleContext, forget_client, redirect
from sluice.console.sessions import COOKIE
from sluice.console.signin import safe_next, session_cookie
from sluice.errors import GatewayError

BROWSER_COOKIE = "sluice_sso"
"""Binds a sign-in's callback to the browser that started it."""
ID_TOKEN_COOKIE = "sluice_id_token"
"""The ID token of an SSO session, sent back to the IdP as ``id_token_hint`` at sign-out."""
METHOD_PREFIX = "oidc:"


@dataclass(frozen=True, slots=True)
class Sso:
    login: OidcLogin
    provisioner: Provisioner

    @classmethod
    def build(cls, ctx: ConsoleContext) -> Sso:
        rt = ctx.rt
        providers = {
            name: IdentityProvider(name, config, session=rt.session, clock=rt.clock)
            for name, config in rt.config.auth.oidc.items()
        }
        tenancy = ctx.admin.tenancy

        def org_named(name: str) -> str | None:
            return next((o.id for o in rt.keys.index.orgs.values() if o.name == name), None)

        return cls(
            OidcLogin(providers, transaction_store(rt.clock, rt.redis), rt.clock),
            Provisioner(
                tenancy, tenancy.repo, rt.storage.identities, rt.clock, org_named=org_named
            ),
        )

    async def end_session_url(self, method: str, id_token: str | None, back: str) -> str | None:
        """Where to send the browser at sign-out to end the IdP's session too (RP-initiated
        logout), when the session came from an IdP that offers it and that answers now."""
        if not method.startswith(METHOD_PREFIX):
            return None
        idp = self.login.providers.get(method[len(METHOD_PREFIX) :])
        if idp is None:
            return None
        try:
            end = (await idp.discovery()).end_session_endpoint
        except GatewayError:
            return None  # the IdP is down: the console session ends anyway
        if end is None:
            return None
        query = {"client_id": idp.config.client_id, "post_logout_redirect_uri": back}
        if id_token:
            query["id_token_hint"] = id_token
        return end + ("&" if "?" in end else "?") + urlencode(query)


def base_url(ctx: ConsoleContext, request: Request) -> str:
    scheme = "https" if ctx.secure(request) else request.url.scheme
    return f"{scheme}://{request.url.netloc}"


async def signed_out(ctx: ConsoleContext, sso: Sso, request: Request, method: str) -> Response:
    """After the console session ended: a session from an IdP goes on to
    ``/ui/sso/<idp>/signed-out`` (which sends the browser to the IdP's end-session endpoint
    when it has one), any other to the sign-in page."""
    name = method[len(METHOD_PREFIX) :] if method.startswith(METHOD_PREFIX) else None
    if name is not None and name in sso.login.providers:
        response = redirect(f"/ui/sso/{name}/signed-out")
    else:
        response = redirect("/ui/login")
        response.delete_cookie(ID_TOKEN_COOKIE, path="/ui")
    forget_client(response)
    return response


def routes(ctx: ConsoleContext, sso: Sso) -> list[Route]:
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
        name = request.path_params["idp"]
        back = f"{base_url(ctx, request)}/ui/login"
        hint = request.cookies.get(ID_TOKEN_COOKIE)
        url = await sso.end_session_url(METHOD_PREFIX + name, hint, back)
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
