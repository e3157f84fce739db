"""What the Usage and Requests pages are asked for: a date range and a scope.

The scope picker offers only what the person may read: their own usage, each team and
organisation they administer, everything for admins. Whatever the URL says, the scope goes
through :func:`sluice.analytics.scope.narrow_to` with the person's principal, so an
invisible team answers 404 and a visible one they do not administer 403, as in the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from starlette.datastructures import QueryParams

from sluice.analytics import scope as scoping
from sluice.analytics.model import Narrow
from sluice.analytics.service import MAX_DAYS
from sluice.console.context import ConsoleContext, Viewer
from sluice.errors import BadRequest
from sluice.tenancy import rules

DAY_S = 86_400
PRESETS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}
"""Preset ranges: ``24h`` is the last 24 hours; the others are whole UTC days ending with
today (today so far included)."""
DEFAULT_PRESET = "30d"
DEFAULT_DAYS_BACK = 29
"""A ``from`` left empty: 30 days ending with ``to``."""
HOURLY_UP_TO_S = 3 * DAY_S
"""Ranges up to three days are drawn per hour, longer ones per day."""


@dataclass(frozen=True, slots=True)
class DateRange:
    start: float
    end: float
    interval: str
    """``hour`` or ``day``."""
    preset: str | None
    from_value: str
    to_value: str
    """The form's date inputs (``YYYY-MM-DD``, inclusive), for filling them again."""

    def start_dt(self) -> datetime:
        return datetime.fromtimestamp(self.start, UTC)

    def end_dt(self) -> datetime:
        return datetime.fromtimestamp(self.end, UTC)

    def query(self) -> dict[str, str]:
        """The range as query parameters (for links that keep it)."""
        if self.preset:
            return {"range": self.preset}
        return {"from": self.from_value, "to": self.to_value}


def _day(params: QueryParams, name: str) -> date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD)", param=name) from None


def parse_range(params: QueryParams, now: float) -> DateRange:
    """``range=24h|7d|30d|90d`` (the last 24 hours, or whole days up to today), or
    ``from``/``to`` dates (UTC, ``to``
    inclusive; a missing ``to`` is today, a missing ``from`` 30 days before ``to``).
    Default: the last 30 days."""
    first, last = _day(params, "from"), _day(params, "to")
    preset = (params.get("range") or "").strip() or None
    if first is None and last is None:
        preset = preset or DEFAULT_PRESET
        if preset not in PRESETS:
            raise BadRequest(f"range must be one of {', '.join(PRESETS)}", param="range")
        today = datetime.fromtimestamp(now, UTC).date()
        if PRESETS[preset] == 1:
            start, end = now - DAY_S, now  # the last 24 hours, drawn per hour
            first = datetime.fromtimestamp(start, UTC).date()
        else:
            # Whole UTC days ending with today: the daily rollups answer them alone.
            first = today - timedelta(days=PRESETS[preset] - 1)
            start, end = _midnight(first), _midnight(today + timedelta(days=1))
        return DateRange(start, end, _interval(start, end), preset, str(first), str(today))
    today = datetime.fromtimestamp(now, UTC).date()
    last = last or today
    first = first or last - timedelta(days=DEFAULT_DAYS_BACK)
    if first > last:
        raise BadRequest("from must be on or before to", param="from")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadRequest(f"the range is longer than {MAX_DAYS} days", param="from")
    start, end = _midnight(first), _midnight(last + timedelta(days=1))
    if start > now:
        raise BadRequest("from is in the future", param="from")
    return DateRange(start, end, _interval(start, end), None, str(first), str(last))


def kept_range(params: QueryParams, now: float) -> dict[str, str]:
    """The date inputs to show again after another field's error: the range the query
    stands for (a preset's dates included), or what was typed when the range itself is
    what is wrong. A filter error never clears the date range."""
    try:
        span = parse_range(params, now)
    except BadRequest:
        return {"from": params.get("from", ""), "to": params.get("to", "")}
    return {"from": span.from_value, "to": span.to_value}


def _midnight(day: date) -> float:
    return datetime.combine(day, datetime.min.time(), UTC).timestamp()


def _interval(start: float, end: float) -> str:
    return "hour" if end - start <= HOURLY_UP_TO_S else "day"


@dataclass(frozen=True, slots=True)
class ScopeChoice:
    value: str
    """``own``, ``team:ID``, ``org:ID`` or ``global``."""
    label: str
    kind: str
    """``own``, ``team``, ``org`` or ``global``."""
    ident: str | None = None


def choices(ctx: ConsoleContext, viewer: Viewer) -> list[ScopeChoice]:
    """The scopes this person may read, widest first."""
    index = ctx.control.cache.index
    p = viewer.principal
    out: list[ScopeChoice] = []
    if p.is_admin:
        out.append(ScopeChoice("global", "Everything", "global"))
    orgs = [o for o in index.orgs.values() if rules.is_org_admin(p, o.id)]
    for org in sorted(orgs, key=lambda o: o.name):
        out.append(ScopeChoice(f"org:{org.id}", f"Organisation {org.name}", "org", org.id))
    for team in sorted(viewer.admin_teams, key=lambda t: t.name):
        parent = index.orgs.get(team.org_id)
        where = f" ({parent.name})" if parent and len(orgs) != 1 else ""
        out.append(ScopeChoice(f"team:{team.id}", f"Team {team.name}{where}", "team", team.id))
    out.append(ScopeChoice("own", "My usage", "own", viewer.user.id))
    return out


async def resolve(
    ctx: ConsoleContext, viewer: Viewer, value: str | None
) -> tuple[ScopeChoice, Narrow, list[ScopeChoice]]:
    """The chosen scope (default: the widest offered), its filter, and the choices."""
    offered = choices(ctx, viewer)
    value = (value or "").strip() or offered[0].value
    chosen = next((c for c in offered if c.value == value), None)
    p = viewer.principal
    if value == "own":
        narrow = await scoping.narrow_to(
            p, f"user:{viewer.user.id}", tenancy=ctx.control.tenancy, keys=ctx.control.keys
        )
    elif value == "global":
        if not p.is_admin:
            raise rules.forbidden("only admins see everyone's usage")
        narrow = Narrow()
    elif value.partition(":")[0] in ("org", "team"):
        # The same checks as the API's scope=...: 404 when invisible, 403 when not managed.
        narrow = await scoping.narrow_to(
            p, value, tenancy=ctx.control.tenancy, keys=ctx.control.keys
        )
    else:
        raise BadRequest("scope must be own, team:ID, org:ID or global", param="scope")
    if chosen is None:
        # Visible and administered, yet not offered (e.g. the directory just changed).
        kind, _, ident = value.partition(":")
        chosen = ScopeChoice(value, value, kind, ident)
    return chosen, narrow, offered
