"""Who sees which alerts, and who may send a test: the rules the admin API and the console
share."""

from __future__ import annotations

from sluice.alerts.model import Alert, AlertQuery
from sluice.alerts.service import AlertService
from sluice.auth.principal import Principal
from sluice.errors import ErrorKind, GatewayError


def visibility(actor: Principal, member_orgs: frozenset[str]) -> AlertQuery:
    """What a caller may see: admins everything; everyone else budget alerts only — of
    the orgs they administer, the teams they administer, their own user and keys, and the
    budgets of the teams and orgs they belong to (whose spend they may read too)."""
    if actor.is_admin:
        return AlertQuery()
    return AlertQuery(
        budget_only=True,
        visible_orgs=actor.org_admin_of,
        visible_teams=actor.team_admin_of,
        visible_users=frozenset({actor.user_id} if actor.user_id else ()),
        visible_scopes=frozenset(
            [f"team:{t}" for t in actor.teams] + [f"org:{o}" for o in member_orgs]
        ),
    )


async def send_test(alerts: AlertService, actor: Principal, *, only: str | None) -> Alert:
    """Admins only: a test alert to every webhook, or to the one named ``only`` (404 when
    no webhook has that name)."""
    if not actor.is_admin:
        raise GatewayError(
            ErrorKind.CALLER_FORBIDDEN, "only admins send test alerts", code="forbidden"
        )
    if only is not None and only not in alerts.sender.names:
        raise GatewayError(
            ErrorKind.CALLER_NOT_FOUND,
            f"no webhook named {only!r} under alerts.webhooks",
            param="webhook",
            code="not_found",
        )
    return await alerts.send_test(only=only)
