"""``sluice orgs|teams|users``: enough to set up a deployment without the console.

The CLI acts as the global admin, through the same rules and audit log as the admin API.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from sluice.settings import load_settings

if TYPE_CHECKING:
    from sluice.tenancy.keys import KeyService
    from sluice.tenancy.model import Directory
    from sluice.tenancy.service import Tenancy

orgs_app = typer.Typer(help="Organisations.", no_args_is_help=True)
teams_app = typer.Typer(help="Teams and their members.", no_args_is_help=True)
users_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (every field).")]
WideOpt = Annotated[bool, typer.Option("--wide", help="Print every column.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the id.")]


def run_as_admin(work: Callable[[Tenancy, KeyService], Awaitable[T]]) -> T:
    """Open storage, run ``work`` as the global admin, tell running gateways."""
    return run_with_storage(lambda t, k, storage: work(t, k))


def run_with_storage(work: Callable[[Tenancy, KeyService, Any], Awaitable[T]]) -> T:
    """:func:`run_as_admin`, with the open storage as well (for the console's accounts)."""
    from sluice.clock import SystemClock
    from sluice.storage.sql.migrate import upgrade_engine
    from sluice.storage.sql.repository import SqlStorage
    from sluice.tenancy.keys import KeyService
    from sluice.tenancy.service import Tenancy

    settings = load_settings()

    async def main() -> T:
        storage = SqlStorage.from_url(settings.resolved_database_url())
        try:
            await upgrade_engine(storage.engine)

            async def changed() -> None:
                return None

            tenancy = Tenancy(
                storage.tenancy,
                storage.keys,
                storage.meta,
                unit=storage.unit,
                clock=SystemClock(),
                changed=changed,
                default_max_keys=settings.max_keys_per_user,
            )
            result = await work(tenancy, KeyService(tenancy), storage)
            await announce(settings.redis_url)
            return result
        finally:
            await storage.close()

    return run_database(main, settings.resolved_database_url())


async def announce(redis_url: str | None) -> None:
    """Tell running gateways to reload their keys now (they also poll the database)."""
    if redis_url:
        from redis.asyncio import Redis

        from sluice.control.sync import publish_key_change

        redis = Redis.from_url(redis_url)
        try:
            await publish_key_change(redis)
        finally:
            await redis.aclose()


def run_database(main: Callable[[], Coroutine[Any, Any, T]], url: str) -> T:
    """Run a command's work on the database: a refused change (a rule, a name taken) or a
    database that cannot be reached is one line on stderr and exit status 1."""
    from sqlalchemy.engine import make_url

    from sluice.errors import GatewayError
    from sluice.storage.availability import database_unavailable

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        err.print(f"[red]error[/red] {exc.message}")
        raise typer.Exit(1) from None
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        shown = make_url(url).render_as_string(hide_password=True)
        err.print(
            f"[red]error[/red] the database is unavailable ({type(exc).__name__}): {shown}",
            highlight=False,
        )
        raise typer.Exit(1) from None


def _admin() -> Any:
    from sluice.auth.principal import MASTER

    return MASTER


def find_team(d: Directory, ref: str) -> str:
    """A team id from its id or ``ORG/TEAM`` names."""
    if "/" in ref:
        org_name, team_name = ref.split("/", 1)
        org = next((o for o in d.orgs if o.name == org_name), None)
        team = next(
            (t for t in d.teams if org and t.org_id == org.id and t.name == team_name), None
        )
    else:
        team = next((t for t in d.teams if t.id == ref), None)
    if team is None:
        err.print(f"[red]error[/red] no team {ref!r} (use an id or ORG/TEAM)")
        raise typer.Exit(1)
    return team.id


def find_org(d: Directory, ref: str) -> str:
    org = next((o for o in d.orgs if ref in (o.id, o.name)), None)
    if org is None:
        err.print(f"[red]error[/red] no organisation {ref!r}")
        raise typer.Exit(1)
    return org.id


def find_user(d: Directory, ref: str) -> str:
    user = next((u for u in d.users if ref in (u.id, u.email)), None)
    if user is None:
        err.print(f"[red]error[/red] no user {ref!r}")
        raise typer.Exit(1)
    return user.id


def show(
    rows: list[dict[str, Any]],
    columns: tuple[str, ...],
    *,
    as_json: bool = False,
    wide: bool = False,
    wide_columns: tuple[str, ...] = (),
    quiet: bool = False,
) -> None:
    """Print rows: ``--json`` every field; ``--quiet`` the ids alone (one per line, for
    ``$(...)``); else a table of ``columns`` that fits 80 columns without cutting a value
    (long values fold onto a second line), plus ``wide_columns`` with ``--wide``."""
    if quiet:
        sys.stdout.write("".join(f"{row['id']}\n" for row in rows))
        return
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    shown = (*columns, *wide_columns) if wide else columns
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in shown:
        table.add_column(column.replace("_", " "), overflow="fold", no_wrap=column == "id")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in shown))
    (Console(width=max(out.width, 240)) if wide else out).print(table)


@orgs_app.command("create")
def orgs_create(
    name: Annotated[str, typer.Argument()], as_json: JsonOpt = False, quiet: QuietOpt = False
) -> None:
    """Create an organisation (with its default team)."""
    from sluice.tenancy.model import Governance

    org = run_as_admin(lambda t, k: t.create_org(_admin(), name, Governance()))
    row = {"id": org.id, "name": org.name, "default_team_id": org.default_team_id}
    show([row], ("id", "name", "default_team_id"), as_json=as_json, quiet=quiet)


@orgs_app.command("list")
def orgs_list(as_json: JsonOpt = False, wide: WideOpt = False) -> None:
    """List organisations."""
    orgs = run_as_admin(lambda t, k: t.list_orgs(_admin()))
    show(
        [{"id": o.id, "name": o.name, "default_team_id": o.default_team_id} for o in orgs],
        ("id", "name"),
        wide_columns=("default_team_id",),
        as_json=as_json,
        wide=wide,
    )


@orgs_app.command("archive")
def orgs_archive(org: Annotated[str, typer.Argument(help="Organisation id or name.")]) -> None:
    """Archive an organisation and its teams, revoking their keys (usage is kept)."""
    from sluice.tenancy.archive import Archive

    async def work(t: Tenancy, k: KeyService) -> Any:
        return await Archive(t).org(_admin(), find_org(await t.directory(), org))

    archived = run_as_admin(work)
    out.print(f"archived organisation {archived.name} ({archived.id})")


@teams_app.command("create")
def teams_create(
    org: Annotated[str, typer.Argument(help="Organisation id or name.")],
    name: Annotated[str, typer.Argument()],
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Create a team in an organisation."""
    from sluice.tenancy.model import Governance

    async def work(t: Tenancy, k: KeyService) -> Any:
        return await t.create_team(_admin(), find_org(await t.directory(), org), name, Governance())

    team = run_as_admin(work)
    row = {"id": team.id, "org_id": team.org_id, "name": team.name}
    show([row], ("id", "org_id", "name"), as_json=as_json, quiet=quiet)


@teams_app.command("list")
def teams_list(as_json: JsonOpt = False, wide: WideOpt = False) -> None:
    """List teams (``ORG/TEAM`` names, as the other commands take them)."""

    async def work(t: Tenancy, k: KeyService) -> list[dict[str, Any]]:
        orgs = {o.id: o.name for o in await t.list_orgs(_admin())}
        return [
            {"id": x.id, "name": f"{orgs.get(x.org_id, x.org_id)}/{x.name}", "org_id": x.org_id}
            for x in await t.list_teams(_admin())
        ]

    show(run_as_admin(work), ("id", "name"), wide_columns=("org_id",), as_json=as_json, wide=wide)


@teams_app.command("archive")
def teams_archive(team: Annotated[str, typer.Argument(help="Team id or ORG/TEAM.")]) -> None:
    """Archive a team, revoking the keys that bill it (usage is kept)."""
    from sluice.tenancy.archive import Archive

    async def work(t: Tenancy, k: KeyService) -> Any:
        return await Archive(t).team(_admin(), find_team(await t.directory(), team))

    archived = run_as_admin(work)
    out.print(f"archived team {archived.name} ({archived.id})")


@teams_app.command("add")
def teams_add(
    team: Annotated[str, typer.Argument(help="Team id or ORG/TEAM.")],
    user: Annotated[str, typer.Argument(help="User id or email.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make them team-admin.")] = False,
) -> None:
    """Add a user to a team (or change their role in it)."""
    from sluice.tenancy.model import TeamRole

    async def work(t: Tenancy, k: KeyService) -> Any:
        d = await t.directory()
        role = TeamRole.ADMIN if admin else TeamRole.MEMBER
        return await t.set_member(_admin(), find_team(d, team), find_user(d, user), role)

    m = run_as_admin(work)
    out.print(f"{m.user_id} is {m.role.value} of {m.team_id}")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Option(help="Display name (default: the email).")] = "",
    org: Annotated[str | None, typer.Option(help="Join this organisation's default team.")] = None,
    team: Annotated[str | None, typer.Option(help="Join this team (id or ORG/TEAM).")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Create a user."""
    from sluice.tenancy.model import Governance

    async def work(t: Tenancy, k: KeyService) -> Any:
        d = await t.directory()
        return await t.create_user(
            _admin(),
            email=email,
            name=name or email,
            org_id=find_org(d, org) if org else None,
            team_id=find_team(d, team) if team else None,
            max_keys=None,
            gov=Governance(),
        )

    user = run_as_admin(work)
    row = {"id": user.id, "email": user.email, "name": user.name}
    show([row], ("id", "email", "name"), as_json=as_json, quiet=quiet)


@users_app.command("list")
def users_list(as_json: JsonOpt = False, wide: WideOpt = False) -> None:
    """List users."""
    users = run_as_admin(lambda t, k: t.list_users(_admin()))
    rows = [
        {
            "id": u.id,
            "email": u.email,
            "name": u.name,
            "is_admin": u.is_admin,
            "disabled": u.disabled,
        }
        for u in users
    ]
    show(
        rows,
        ("id", "email", "is_admin"),
        wide_columns=("name", "disabled"),
        as_json=as_json,
        wide=wide,
    )


@users_app.command("archive")
def users_archive(user: Annotated[str, typer.Argument(help="User id or email.")]) -> None:
    """Archive a user: disabled, signed out, personal keys revoked (usage is kept)."""
    from sluice.tenancy.archive import Archive

    async def work(t: Tenancy, k: KeyService) -> Any:
        return await Archive(t).user(_admin(), find_user(await t.directory(), user))

    archived = run_as_admin(work)
    out.print(f"archived user {archived.email} ({archived.id})")


@users_app.command("role")
def users_role(
    user: Annotated[str, typer.Argument(help="User id or email.")],
    role: Annotated[str, typer.Argument(help="admin | org-admin | none")],
    org: Annotated[str | None, typer.Option(help="The organisation, for org-admin.")] = None,
) -> None:
    """Grant or take the admin or org-admin role."""

    async def work(t: Tenancy, k: KeyService) -> str:
        d = await t.directory()
        user_id = find_user(d, user)
        if role == "admin":
            await t.set_admin(_admin(), user_id, True)
        elif role == "org-admin":
            if org is None:
                err.print("[red]error[/red] --org is required for org-admin")
                raise typer.Exit(2)
            await t.set_org_admin(_admin(), find_org(d, org), user_id, True)
        elif role == "none":
            await t.set_admin(_admin(), user_id, False)
            for o in d.orgs if org is None else [o for o in d.orgs if org in (o.id, o.name)]:
                await t.set_org_admin(_admin(), o.id, user_id, False)
        else:
            err.print("[red]error[/red] role must be admin, org-admin or none")
            raise typer.Exit(2)
        return user_id

    user_id = run_as_admin(work)
    out.print(f"{user_id}: {role}")


def create_key(
    *,
    name: str,
    user: str | None,
    team: str | None,
    expires_at: float | None,
    models: tuple[str, ...] | None,
) -> Any:
    """``sluice keys create``: an unowned key, or a user's personal key."""
    from sluice.tenancy.model import Governance

    async def work(t: Tenancy, k: KeyService) -> Any:
        d = await t.directory()
        return await k.create(
            _admin(),
            name=name,
            now=time.time(),
            team_id=find_team(d, team) if team else None,
            user_id=find_user(d, user) if user else None,
            service_account_id=None,
            expires_at=expires_at,
            gov=Governance(models=models),
            metadata={},
        )

    return run_as_admin(work)
