"""What every console page needs: the signed-in viewer, CSRF, rendering, errors.

The viewer's principal is rebuilt from the key cache's directory; before each page the
cache is brought up to date when the database's change counter moved (one small query), so
a role taken away anywhere applies to the very next page.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from sluice.auth.passwords import Passwords
from sluice.auth.principal import Principal
from sluice.auth.throttle import FailureThrottle
from sluice.console.identity import IdentityProvider, LocalPasswords
from sluice.console.principal import user_principal
from sluice.console.sessions import COOKIE, LOGIN_CSRF_COOKIE, SessionStore, storage_scope
from sluice.control.plane import ControlPlane
from sluice.errors import ErrorKind, GatewayError, retry_after_value
from sluice.storage.console import ConsoleRepository, SessionRecord
from sluice.tenancy import rules
from sluice.tenancy.model import Team, User

HERE = Path(__file__).parent
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
CLEAR_SITE_DATA = '"storage"'
"""Sent when a session ends (sign-out, or a request whose session is gone): the browser drops
this origin's localStorage, sessionStorage and IndexedDB, so no secret of the last person
outlives their session even without the page scripts (Chromium honours it on https and on
loopback http)."""


class SignInNeeded(Exception):
    """No live session: pages redirect to the sign-in form, JSON answers 401."""


class TermsNeeded(Exception):
    """The signed-in person has not accepted the current terms of service: pages redirect
    to the terms page, JSON answers 403."""


class CsrfRejected(Exception):
    """A state-changing request without this session's token."""


@dataclass(frozen=True, slots=True)
class Viewer:
    session: SessionRecord
    user: User
    principal: Principal
    admin_teams: tuple[Team, ...]
    """Teams this person administers (directly, as org-admin or as admin)."""

    @property
    def csrf(self) -> str:
        return self.session.csrf_token

    @property
    def may_org(self) -> bool:
        return self.principal.is_admin or bool(self.principal.org_admin_of)

    @property
    def may_team(self) -> bool:
        return bool(self.admin_teams)


@dataclass
class ConsoleContext:
    control: ControlPlane
    repo: ConsoleRepository
    sessions: SessionStore
    throttle: FailureThrottle
    identity: IdentityProvider
    passwords: Passwords
    templates: Jinja2Templates
    messages: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, control: ControlPlane) -> ConsoleContext:
        s = control.settings
        repo = control.records.console
        passwords = Passwords()
        templates = Jinja2Templates(directory=str(HERE / "templates"))
        templates.env.filters["when"] = _when
        templates.env.filters["day"] = _day
        templates.env.filters["usd"] = _usd
        return cls(
            control=control,
            repo=repo,
            sessions=SessionStore(
                repo, control.clock, idle_s=s.console_session_idle_s, max_s=s.console_session_max_s
            ),
            throttle=FailureThrottle(
                control.clock,
                max_failures=s.console_login_max_failures,
                window_s=s.console_login_window_s,
            ),
            identity=LocalPasswords(repo, passwords),
            passwords=passwords,
            templates=templates,
        )

    # who is asking -----------------------------------------------------------------------
    def secure(self, request: Request) -> bool:
        if request.url.scheme == "https":
            return True
        proto = request.headers.get("x-forwarded-proto", "")
        return self.control.settings.console_trust_proxy_headers and proto.split(",")[0] == "https"

    def client_address(self, request: Request) -> str:
        if self.control.settings.console_trust_proxy_headers:
            forwarded = request.headers.get("x-forwarded-for", "")
            if forwarded:
                return forwarded.split(",")[-1].strip()
        return request.client.host if request.client else "unknown"

    async def viewer(self, request: Request, *, terms: bool = True) -> Viewer:
        """The signed-in person; :class:`TermsNeeded` while they have not accepted the
        current terms (``terms=False``: the terms page and sign-out, which they may use)."""
        session = await self.sessions.load(request.cookies.get(COOKIE))
        if session is None:
            raise SignInNeeded
        await self.control.sync.refresh()
        index = self.control.cache.index
        principal = user_principal(
            index,
            session.user_id,
            everything=self.control.table.everything,
            canonical=self.control.table.canonical,
        )
        if principal is None:
            await self.sessions.end_all(session.user_id)
            raise SignInNeeded
        user = index.users[session.user_id]
        if terms and index.terms_pending(user) is not None:
            raise TermsNeeded
        admin_teams = tuple(
            t
            for t in index.teams.values()
            if rules.is_team_admin(principal, t) and t.archived_at is None
        )
        viewer = Viewer(session, user, principal, admin_teams)
        request.state.viewer = viewer
        return viewer

    async def form(self, request: Request, viewer: Viewer) -> FormData:
        """The posted form, after the CSRF check (hidden field or header)."""
        form = await request.form()
        sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
        if not isinstance(sent, str) or not hmac.compare_digest(sent, viewer.csrf):
            raise CsrfRejected
        return form

    # answers -----------------------------------------------------------------------------
    def render(
        self,
        request: Request,
        template: str,
        viewer: Viewer | None,
        *,
        status: int = 200,
        **values: Any,
    ) -> Response:
        context = {
            "viewer": viewer,
            "session_scope": storage_scope(viewer.session) if viewer else None,
            "session_left_s": int(self.sessions.remaining_s(viewer.session)) if viewer else None,
            "csrf": viewer.csrf if viewer else values.pop("csrf", ""),
            "errors": values.pop("errors", {}),
            "values": values.pop("values", {}),
            "message": self.messages.get(str(request.query_params.get("done", ""))),
            "path": request.url.path,
            **values,
        }
        response = self.templates.TemplateResponse(request, template, context, status_code=status)
        response.headers.update(SECURITY_HEADERS)
        return response

    def error_page(self, request: Request, viewer: Viewer | None, exc: GatewayError) -> Response:
        titles = {403: "Not allowed", 404: "Not found", 429: "Slow down"}
        titles[503] = "Temporarily unavailable"
        response = self.render(
            request,
            "error.html",
            viewer,
            status=exc.status,
            title=titles.get(exc.status, "Something is wrong"),
            detail=exc.message,
        )
        retry_after = retry_after_value(exc)
        if retry_after is not None:
            response.headers["retry-after"] = retry_after
        return response

    def csrf_page(self, request: Request) -> Response:
        response = self.render(
            request,
            "error.html",
            None,
            status=403,
            title="Form rejected",
            detail=(
                "This form did not carry a valid security token (CSRF check). It may be "
                "stale or come from another site. Reload the page and try again."
            ),
        )
        return response

    def terms_redirect(self, request: Request) -> Response:
        if request.url.path.endswith(".json") or request.method != "GET":
            return JSONResponse(
                {"error": "accept the terms of service first", "code": "terms_not_accepted"},
                status_code=403,
            )
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"/ui/terms?next={quote(target)}", status_code=303)

    def sign_in_redirect(self, request: Request) -> Response:
        response: Response
        if request.url.path.endswith(".json") or request.method != "GET":
            response = JSONResponse({"error": "sign in first"}, status_code=401)
        else:
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            response = RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)
        if COOKIE in request.cookies:
            forget_client(response)  # the session expired or was ended elsewhere
        return response


def forget_client(response: Response) -> None:
    """A session is over: the browser drops its cookie and everything the pages stored."""
    response.headers["clear-site-data"] = CLEAR_SITE_DATA
    response.delete_cookie(COOKIE, path="/ui")


def redirect(path: str, done: str | None = None) -> Response:
    return RedirectResponse(path + (f"?done={done}" if done else ""), status_code=303)


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


LOGIN_CSRF = LOGIN_CSRF_COOKIE


def field_errors(exc: GatewayError, default: str = "_form") -> dict[str, str]:
    """A service error next to the form field it names (``param``), else at the form top."""
    return {exc.param or default: exc.message}


def not_found(kind: str, ident: str) -> GatewayError:
    return GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no {kind} {ident!r}")


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(ts: float | None) -> str:
    """The UTC date alone, for narrow table columns (the full time goes in a ``title``)."""
    if ts is None:
        return "—"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _usd(value: Any) -> str:
    return "—" if value is None else f"${float(value):,.2f}"
