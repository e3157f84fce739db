"""The audit log (admins): names instead of raw ids, filters (who, action, target, dates)
and paging back through older entries. A filter error is shown next to its field and every
filter typed, the date range included, stays in the form."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.auth.principal import MASTER_KEY_ID
from sluice.console.context import ConsoleContext, field_errors
from sluice.console.pages_admin import admin_viewer
from sluice.errors import BadRequest, GatewayError
from sluice.tenancy.model import AuditEntry, AuditFilter, Directory

AUDIT_ROWS = 50
FILTERS = ("actor", "action", "target", "from", "to")
ACTIONS = ("org.", "team.", "user.", "key.", "service_account.", "global.", "provider.")
"""Action families offered in the filter's suggestions (any action may be typed)."""


async def audit_names(ctx: ConsoleContext) -> dict[str, str]:
    """Id → what a person reads (names, emails), for every id the audit log may show; read
    once per page (the directory and the key list), archived rows included."""
    t = ctx.control.tenancy
    directory = await t.directory()
    names: dict[str, str] = {}
    for org in directory.orgs:
        names[org.id] = org.name
    for team in directory.teams:
        names[team.id] = team.name
    for user in directory.users:
        names[user.id] = user.email
    for sa in directory.service_accounts:
        names[sa.id] = f"service account {sa.name}"
    for record in await t.keys.list():
        names.setdefault(record.id, record.name)
    names.setdefault(MASTER_KEY_ID, "master key")
    return names


def _day(params: QueryParams, name: str) -> date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)", param=name) from None


def _target_id(raw: str, directory: Directory) -> str:
    """A target typed as a name or email (an organisation, team or user) or an id."""
    for org in directory.orgs:
        if org.name == raw:
            return org.id
    for team in directory.teams:
        if team.name == raw:
            return team.id
    for user in directory.users:
        if user.email == raw:
            return user.id
    return raw


def parse_filter(params: QueryParams, directory: Directory) -> AuditFilter:
    """The query's filters; a bad one is a ``BadRequest`` naming it."""
    first, last = _day(params, "from"), _day(params, "to")
    if first is not None and last is not None and first > last:
        raise BadRequest("from must be on or before to", param="from")
    action = (params.get("action") or "").strip()[:64] or None
    target = (params.get("target") or "").strip()[:320]
    return AuditFilter(
        actor=(params.get("actor") or "").strip()[:64] or None,
        action=action,
        target_id=_target_id(target, directory) if target else None,
        start=_midnight(first) if first else None,
        end=_midnight(last + timedelta(days=1)) if last else None,
    )


def _midnight(day: date) -> float:
    return datetime.combine(day, datetime.min.time(), UTC).timestamp()


def routes(ctx: ConsoleContext) -> list[Route]:
    t = ctx.control.tenancy

    async def audit(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        params = request.query_params
        values = {k: (params.get(k) or "").strip() for k in FILTERS}
        raw = params.get("before_id", "")
        before = int(raw) if raw.isdigit() and len(raw) < 19 else None
        directory = await t.directory()
        errors: dict[str, str] = {}
        entries: list[AuditEntry] = []
        status = 200
        try:
            where = parse_filter(params, directory)
            entries = await t.audit_entries(
                viewer.principal, org_id=None, limit=AUDIT_ROWS, before_id=before, where=where
            )
        except GatewayError as exc:
            errors, status = field_errors(exc), exc.status
        kept = {k: v for k, v in values.items() if v}
        older = None
        if len(entries) == AUDIT_ROWS and entries[-1].id is not None:
            older = "?" + urlencode({**kept, "before_id": entries[-1].id})
        return ctx.render(
            request,
            "admin_audit.html",
            viewer,
            status=status,
            audit=entries,
            names=await audit_names(ctx),
            people=sorted(directory.users, key=lambda u: u.email),
            actions=ACTIONS,
            errors=errors,
            values=values,
            older=older,
            newest="?" + urlencode(kept) if before is not None else None,
        )

    return [Route("/ui/admin/audit", audit, methods=["GET"])]
