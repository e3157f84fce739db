"""``sluice users create-admin | set-password``: local console accounts from the shell.

The first admin of a fresh deployment is made here; after that admins can set passwords in
the console too.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.cli_tenancy import _admin, err, find_user, out, run_with_storage, users_app

if TYPE_CHECKING:
    from sluice.tenancy.keys import KeyService
    from sluice.tenancy.service import Tenancy

StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first stdin line.")
]


def read_password(from_stdin: bool) -> str:
    """The new password, checked for length before anything is written."""
    from sluice.auth.passwords import check_strength
    from sluice.errors import GatewayError

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_strength(password)
    except GatewayError as exc:
        err.print(f"[red]error[/red] {exc.message}")
        raise typer.Exit(2) from None
    return str(password)


def _hash(password: str) -> str:
    from sluice.auth.passwords import Passwords

    return Passwords().hash(password)


@users_app.command("create-admin")
def users_create_admin(
    email: Annotated[str, typer.Option(help="The admin's email (their sign-in name).")],
    name: Annotated[str, typer.Option(help="Display name (default: the email).")] = "",
    password_stdin: StdinOpt = False,
) -> None:
    """Create an admin who can sign in to the console (or make an existing user one)."""
    from sluice.tenancy.model import Governance

    hashed = _hash(read_password(password_stdin))

    async def work(t: Tenancy, k: KeyService, storage: Any) -> str:
        d = await t.directory()
        user = next((u for u in d.users if u.email == email), None)
        if user is None:
            user = await t.create_user(
                _admin(),
                email=email,
                name=name or email,
                org_id=None,
                team_id=None,
                max_keys=None,
                gov=Governance(),
                password_hash=hashed,
            )
        else:
            await t.set_password(_admin(), user.id, hashed)
        await t.set_admin(_admin(), user.id, True)
        return str(user.id)

    user_id = run_with_storage(work)
    out.print(f"{user_id}: admin {email} can sign in at /ui")


@users_app.command("set-password")
def users_set_password(
    user: Annotated[str, typer.Argument(help="User id or email.")],
    password_stdin: StdinOpt = False,
) -> None:
    """Set a user's console password (signs out their open sessions)."""
    hashed = _hash(read_password(password_stdin))

    async def work(t: Tenancy, k: KeyService, storage: Any) -> str:
        user_id = find_user(await t.directory(), user)
        await t.set_password(_admin(), user_id, hashed)
        return user_id

    user_id = run_with_storage(work)
    out.print(f"{user_id}: password set")
