"""What every way of signing in ends with: the session cookie, and a landing page that is
always inside the console."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sluice.console.context import ConsoleContext
from sluice.console.sessions import COOKIE

HOME = "/ui/keys"


def safe_next(target: str | None) -> str:
    """Only a path inside the console (no scheme, no ``//host``): no open redirect."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


def session_cookie(ctx: ConsoleContext, request: Request, response: Response, token: str) -> None:
    """HttpOnly (no script reads it), SameSite=Lax (no cross-site POST carries it), Secure
    over https, scoped to the console's paths."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(ctx.sessions.max_s),
        path="/ui",
        httponly=True,
        samesite="lax",
        secure=ctx.secure(request),
    )
