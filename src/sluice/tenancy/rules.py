"""Authorization rules: who may see and change what. One place, used by the admin API and
the CLI (which acts as the global admin).

Visibility failures answer 404 (another tenant's objects do not exist for you); a visible
object you may not change answers 403.
"""

from __future__ import annotations

from sluice.auth.principal import Principal
from sluice.budgets.spec import BudgetSettings
from sluice.errors import ErrorKind, GatewayError
from sluice.limits.settings import LimitSettings
from sluice.tenancy.model import Team
from sluice.types import Unreadable


def not_found(kind: str, ident: str) -> GatewayError:
    return GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no {kind} {ident!r}", code="not_found")


def forbidden(message: str) -> GatewayError:
    return GatewayError(ErrorKind.CALLER_FORBIDDEN, message, code="forbidden")


def live(kind: str, name: str, archived_at: float | None) -> None:
    """Refuse (409) to put anything new under an archived organisation, team or user."""
    if archived_at is not None:
        raise GatewayError(
            ErrorKind.CALLER_BAD_REQUEST,
            f"the {kind} {name!r} is archived",
            status=409,
            code="archived",
        )


def is_org_admin(p: Principal, org_id: str) -> bool:
    return p.is_admin or org_id in p.org_admin_of


def is_team_admin(p: Principal, team: Team) -> bool:
    return is_org_admin(p, team.org_id) or team.id in p.team_admin_of


def sees_org(p: Principal, org_id: str, member_orgs: frozenset[str]) -> bool:
    return p.is_admin or org_id in p.org_admin_of or org_id in member_orgs


def sees_team(p: Principal, team: Team) -> bool:
    return is_team_admin(p, team) or team.id in p.teams


def within(
    child: LimitSettings | Unreadable | None,
    parent: LimitSettings | Unreadable | None,
    *,
    what: str,
) -> None:
    """A lower level may only narrow: each limit at most the parent's (when it has one)."""
    if not isinstance(child, LimitSettings) or not isinstance(parent, LimitSettings):
        return
    for name, value in child.items():
        cap = getattr(parent, name)
        if cap is not None and value > cap:
            raise GatewayError(
                ErrorKind.CALLER_FORBIDDEN,
                f"limits.{name} {value} is above the {what}'s {cap}",
                param=f"limits.{name}",
                code="above_parent_limit",
            )


def budget_within(
    child: BudgetSettings | Unreadable | None,
    parent: BudgetSettings | Unreadable | None,
    *,
    what: str,
) -> None:
    if not isinstance(child, BudgetSettings) or not isinstance(parent, BudgetSettings):
        return
    if child.period != parent.period:
        return
    if float(child.usd) > float(parent.usd):
        raise GatewayError(
            ErrorKind.CALLER_FORBIDDEN,
            f"budget.usd {child.usd} is above the {what}'s {parent.usd}",
            param="budget.usd",
            code="above_parent_budget",
        )
