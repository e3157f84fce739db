"""Names where a person would type them: ``/api/v1/orgs/acme``, ``/api/v1/teams/acme/lab``,
``/api/v1/users/ada@acme.org`` reach the same routes as the ids do.

The path is rewritten to the id before routing, so every route, rule and audit entry sees ids
only; the service still decides what the caller may see (a name the caller may not see answers
404 like an unknown id). A path that already holds an id (``org_``, ``team_``, ``user_``
followed by 16 hex digits, or ``me``) is not looked up.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from sluice.tenancy.model import Directory

PREFIX = "/api/v1/"
_ID = re.compile(r"(org|team|user)_[0-9a-f]{16}")


def _resolve(parts: list[str], directory: Directory) -> list[str] | None:
    """``parts`` (after ``/api/v1/``) with the name at ``parts[1]`` replaced by its id, or
    ``None`` when it names nothing."""
    collection, ref = parts[0], parts[1]
    if collection == "orgs":
        org = next((o for o in directory.orgs if o.name == ref), None)
        return None if org is None else [collection, org.id, *parts[2:]]
    if collection == "users":
        user = next((u for u in directory.users if u.email == ref), None)
        return None if user is None else [collection, user.id, *parts[2:]]
    if len(parts) < 3:
        return None
    org = next((o for o in directory.orgs if o.name == ref), None)
    team = next(
        (
            t
            for t in directory.teams
            if org is not None and t.org_id == org.id and t.name == parts[2]
        ),
        None,
    )
    return None if team is None else [collection, team.id, *parts[3:]]


class NamedPaths:
    """ASGI middleware: rewrite ``orgs/NAME``, ``teams/ORG/TEAM`` and ``users/EMAIL`` to ids."""

    def __init__(self, app: ASGIApp, *, directory: Callable[[], Awaitable[Directory]]) -> None:
        self.app = app
        self.directory = directory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith(PREFIX):
            parts = path[len(PREFIX) :].split("/")
            if _named(parts):
                resolved = await self._resolved(parts)
                if resolved != parts:
                    new = PREFIX + "/".join(resolved)
                    scope = {**scope, "path": new, "raw_path": new.encode()}
        await self.app(scope, receive, send)

    async def _resolved(self, parts: list[str]) -> list[str]:
        directory = await self.directory()
        if parts[0] in ("orgs", "teams", "users") and _is_name(parts[1]):
            parts = _resolve(parts, directory) or parts
        emails = {u.email: u.id for u in directory.users}
        return [
            emails.get(p, p) if i > 0 and parts[i - 1] in ("admins", "members") else p
            for i, p in enumerate(parts)
        ]


def _is_name(ref: str) -> bool:
    return bool(ref) and ref != "me" and not _ID.fullmatch(ref)


def _named(parts: list[str]) -> bool:
    """Whether the path names an organisation, team or user (not by id) anywhere."""
    if len(parts) >= 2 and parts[0] in ("orgs", "teams", "users") and _is_name(parts[1]):
        return True
    return any("@" in p and parts[i - 1] in ("admins", "members") for i, p in enumerate(parts) if i)
