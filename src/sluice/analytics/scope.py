"""What usage a caller may see, and the ``scope`` parameter that narrows it.

A plain user sees their own usage; a team admin also their teams'; an org admin also their
organisations'; an admin everything. ``scope=org:ID|team:ID|user:ID|key:ID`` narrows to one
object: one the caller cannot see answers 404, one they can see but not read the usage of
(a team you are a member of but do not administer) answers 403, as in the rest of the admin
API. The answer is always the intersection with what the caller may see.
"""

from __future__ import annotations

from dataclasses import replace

from sluice.analytics.model import Narrow, Visibility
from sluice.auth.principal import Principal
from sluice.errors import BadRequest
from sluice.tenancy import rules
from sluice.tenancy.keys import KeyService
from sluice.tenancy.service import Tenancy

SCOPE_HELP = "scope must be global, org:ID, team:ID, user:ID or key:ID"


def visibility(actor: Principal) -> Visibility:
    if actor.is_admin:
        return Visibility(everything=True)
    return Visibility(
        org_ids=actor.org_admin_of,
        team_ids=actor.team_admin_of,
        user_ids=frozenset({actor.user_id}) if actor.user_id else frozenset(),
        key_ids=frozenset({actor.key_id}),
    )


async def narrow_to(
    actor: Principal, scope: str | None, *, tenancy: Tenancy, keys: KeyService
) -> Narrow:
    """The filter ``scope`` stands for, after checking the caller may read it."""
    if scope is None or scope == "global":
        return Narrow()
    kind, _, ident = scope.partition(":")
    if not ident:
        raise BadRequest(SCOPE_HELP, param="scope")
    if kind == "org":
        await tenancy.visible_org(actor, ident)
        if not rules.is_org_admin(actor, ident):
            raise rules.forbidden("only admins and this organisation's admins see its usage")
        return Narrow(org_id=ident)
    if kind == "team":
        team = await tenancy.visible_team(actor, ident)
        if not rules.is_team_admin(actor, team):
            raise rules.forbidden("only this team's admins see its usage")
        return Narrow(team_id=ident)
    if kind == "user":
        await tenancy.visible_user(actor, ident)
        return Narrow(user_id=ident)
    if kind == "key":
        await keys.visible(actor, ident)
        return Narrow(key_id=ident)
    raise BadRequest(SCOPE_HELP, param="scope")


def combine(base: Narrow, **filters: str | None) -> Narrow:
    """Add equality filters to a scope's; a filter that contradicts the scope is a 400."""
    out = base
    for name, value in filters.items():
        if value is None:
            continue
        current = getattr(out, name)
        if current is not None and current != value:
            raise BadRequest(f"{name} {value!r} is outside scope", param=name)
        out = replace(out, **{name: value})
    return out
