"""An admin change and its audit entry commit together or not at all (issue #12, point 2).

Every kind of mutation runs three times over SQLite and PostgreSQL: with the audit table
refusing writes (a database trigger: a real failure of the database, not a fake), with the
changed table refusing writes after the audit entry was staged, and unhindered. The first
two leave every table as it was (no change without its entry, no entry without its change,
no half of a multi-step operation); the last writes both.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.app import SluiceApp
from sluice.auth.principal import MASTER
from sluice.control.plane import ControlPlane
from sluice.limits.settings import LimitSettings
from sluice.storage.console import SessionRecord
from sluice.storage.sql import tables as t
from sluice.tenancy.model import Governance, TeamRole
from sluice.usage.dead_letters import DeadLetter
from sluice.usage.event import UsageEvent
from tests.integration.conftest import make_settings, running

TABLES = (
    t.meta,
    t.orgs,
    t.teams,
    t.users,
    t.memberships,
    t.org_roles,
    t.service_accounts,
    t.api_keys,
    t.provider_credentials,
    t.dead_letters,
    t.console_sessions,
    t.audit_log,
)


@dataclass
class World:
    """A gateway with one of everything a mutation can act on."""

    app: SluiceApp
    client: httpx.AsyncClient
    ctx: ControlPlane
    org_id: str
    team_id: str
    user_id: str
    sa_id: str
    key_id: str
    secret: str
    sa_keys: list[str]
    letter_id: int

    @property
    def engine(self) -> AsyncEngine:
        assert self.app.runtime is not None
        return self.app.runtime.storage.engine


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    settings = make_settings(tmp_path, database_url=database_url, secret_key="s" * 32)
    async with running(settings) as (app, client):
        rt, ctx = app.runtime, app.control
        assert rt is not None and ctx is not None
        org = await ctx.tenancy.create_org(MASTER, "acme", Governance())
        assert org.default_team_id is not None
        user = await ctx.tenancy.create_user(
            MASTER,
            email="ann@example.com",
            name="Ann",
            org_id=org.id,
            team_id=None,
            max_keys=None,
            gov=Governance(),
        )
        sa = await ctx.tenancy.create_service_account(MASTER, org.default_team_id, "bot")
        now = rt.clock.now()
        sa_keys = [
            (
                await ctx.keys.create(
                    MASTER,
                    name=f"bot-{i}",
                    now=now,
                    team_id=None,
                    user_id=None,
                    service_account_id=sa.id,
                    expires_at=None,
                    gov=Governance(),
                    metadata={},
                )
            ).record.id
            for i in range(2)
        ]
        key = await ctx.keys.create(
            MASTER,
            name="ann",
            now=now,
            team_id=None,
            user_id=user.id,
            service_account_id=None,
            expires_at=None,
            gov=Governance(),
            metadata={},
        )
        await ctx.credentials.store(MASTER, "mock", "sk-upstream-1234567890")
        await rt.storage.console.create_session(
            SessionRecord("h" * 64, user.id, "csrf", "password", now, now + 3600, now)
        )
        event = UsageEvent("req_dead", now, "chat", None, "mock-gpt")
        await rt.storage.dead_letters.add([DeadLetter("req_dead", now, now, event, "refused")])
        [letter] = await rt.storage.dead_letters.page(limit=1)
        assert letter.id is not None
        yield World(
            app,
            client,
            ctx,
            org.id,
            org.default_team_id,
            user.id,
            sa.id,
            key.record.id,
            key.secret,
            sa_keys,
            letter.id,
        )


async def _state(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in TABLES:
            rows = await conn.execute(select(table))
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


@asynccontextmanager
async def refusing(engine: AsyncEngine, table: str) -> AsyncIterator[None]:
    """Every insert, update and delete on ``table`` fails in the database while inside.
    Each trigger has a fresh name: SQLite checks a new trigger's name against the schema its
    connection last read, which may predate another connection's drop."""
    sqlite = engine.dialect.name == "sqlite"
    tag = uuid.uuid4().hex[:8]
    ops = ("insert", "update", "delete")
    async with engine.connect() as conn:
        if sqlite:
            for op in ops:
                await conn.exec_driver_sql(
                    f"CREATE TRIGGER refuse_{op}_{tag} BEFORE {op.upper()} ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
        else:
            await conn.exec_driver_sql(
                "CREATE OR REPLACE FUNCTION refuse_write() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
            )
            await conn.exec_driver_sql(
                f"CREATE TRIGGER refuse_{tag} BEFORE INSERT OR UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_write()"
            )
        await conn.commit()
        try:
            yield
        finally:
            for statement in (
                [f"DROP TRIGGER refuse_{op}_{tag}" for op in ops]
                if sqlite
                else [f"DROP TRIGGER refuse_{tag} ON {table}"]
            ):
                await conn.exec_driver_sql(statement)
            await conn.commit()


async def _fails(run: Awaitable[object]) -> None:
    """The mutation failed: it raised, or (over HTTP) answered a 5xx."""
    try:
        result = await run
    except Exception:
        return
    assert isinstance(result, httpx.Response), f"succeeded: {result!r}"
    assert result.status_code >= 500, result.text


Run = Callable[[World], Awaitable[object]]


async def _global(w: World) -> object:
    return await w.ctx.tenancy.set_global_governance(
        MASTER, Governance(limits=LimitSettings(rpm=100), budget=None)
    )


async def _org_update(w: World) -> object:
    return await w.ctx.tenancy.update_org(
        MASTER, w.org_id, name="acme-2", gov=Governance(limits=LimitSettings(rpm=10))
    )


async def _team_update(w: World) -> object:
    return await w.ctx.tenancy.update_team(
        MASTER, w.team_id, name="renamed", gov=Governance(limits=LimitSettings(rpm=10))
    )


async def _user_create(w: World) -> object:
    return await w.ctx.tenancy.create_user(
        MASTER,
        email="bob@example.com",
        name="Bob",
        org_id=None,
        team_id=w.team_id,
        max_keys=None,
        gov=Governance(),
        password_hash="$argon2id$fake",
    )


async def _user_update(w: World) -> object:
    return await w.ctx.tenancy.update_user(
        MASTER,
        w.user_id,
        name="Ann B",
        disabled=True,
        max_keys=3,
        fields={"name", "disabled", "max_keys"},
        gov=Governance(),
    )


async def _key_create(w: World) -> object:
    return await w.ctx.keys.create(
        MASTER,
        name="new",
        now=w.ctx.clock.now(),
        team_id=None,
        user_id=w.user_id,
        service_account_id=None,
        expires_at=None,
        gov=Governance(limits=LimitSettings(rpm=5)),
        metadata={"a": "b"},
    )


async def _key_update(w: World) -> object:
    return await w.ctx.keys.update(
        MASTER,
        w.key_id,
        {"name": "renamed", "metadata": {"x": "y"}},
        Governance(limits=LimitSettings(rpm=7)),
        now=w.ctx.clock.now(),
    )


async def _key_rotate(w: World) -> object:
    return await w.ctx.keys.rotate(MASTER, w.key_id, now=w.ctx.clock.now(), grace_s=60)


async def _key_revoke(w: World) -> object:
    return await w.ctx.keys.revoke(MASTER, w.key_id, now=w.ctx.clock.now())


async def _reload(w: World) -> object:
    return await w.ctx.policies.reload(MASTER)


async def _letter_delete(w: World) -> object:
    return await w.client.delete(f"/api/v1/usage/dead-letters/{w.letter_id}")


CASES: dict[str, tuple[str, Run]] = {
    # name: (the table the change writes, the mutation)
    "global.update": ("sluice_meta", _global),
    "org.create": ("orgs", lambda w: w.ctx.tenancy.create_org(MASTER, "new", Governance())),
    "org.update": ("orgs", _org_update),
    "org.admin": (
        "org_roles",
        lambda w: w.ctx.tenancy.set_org_admin(MASTER, w.org_id, w.user_id, True),
    ),
    "team.create": (
        "teams",
        lambda w: w.ctx.tenancy.create_team(MASTER, w.org_id, "ops", Governance()),
    ),
    "team.update": ("teams", _team_update),
    "team.member": (
        "memberships",
        lambda w: w.ctx.tenancy.set_member(MASTER, w.team_id, w.user_id, TeamRole.ADMIN),
    ),
    "team.member_remove": (
        "memberships",
        lambda w: w.ctx.tenancy.remove_member(MASTER, w.team_id, w.user_id),
    ),
    "user.create": ("memberships", _user_create),
    "user.update": ("users", _user_update),
    "user.admin": ("users", lambda w: w.ctx.tenancy.set_admin(MASTER, w.user_id, True)),
    "user.password": (
        "users",
        lambda w: w.ctx.tenancy.set_password(MASTER, w.user_id, "$argon2id$other"),
    ),
    "service_account.create": (
        "service_accounts",
        lambda w: w.ctx.tenancy.create_service_account(MASTER, w.team_id, "bot-2"),
    ),
    "service_account.delete": (
        "service_accounts",
        lambda w: w.ctx.tenancy.delete_service_account(MASTER, w.sa_id),
    ),
    "key.create": ("api_keys", _key_create),
    "key.update": ("api_keys", _key_update),
    "key.rotate": ("api_keys", _key_rotate),
    "key.revoke": ("api_keys", _key_revoke),
    "provider.credential": (
        "provider_credentials",
        lambda w: w.ctx.credentials.store(MASTER, "mock", "sk-upstream-abcdefghijkl"),
    ),
    "provider.credential_remove": (
        "provider_credentials",
        lambda w: w.ctx.credentials.remove(MASTER, "mock"),
    ),
    "routing.reload": ("sluice_meta", _reload),
    "usage.dead_letter_delete": ("usage_dead_letters", _letter_delete),
}


@pytest.mark.parametrize("action", sorted(CASES))
async def test_a_change_and_its_audit_entry_commit_together(world: World, action: str) -> None:
    table, run = CASES[action]
    before = await _state(world.engine)

    async with refusing(world.engine, "audit_log"):
        await _fails(run(world))
    assert await _state(world.engine) == before, "the change stands without its audit entry"

    async with refusing(world.engine, table):
        await _fails(run(world))
    assert await _state(world.engine) == before, "an audit entry (or half a change) stands"

    await run(world)
    after = await _state(world.engine)
    [entry] = await world.ctx.tenancy.repo.audit_entries(limit=1)
    assert entry.action == action
    assert len(after["audit_log"]) == len(before["audit_log"]) + 1
    changed = {name for name in after if after[name] != before[name]} - {"audit_log"}
    assert table in changed


async def test_deleting_a_service_account_revokes_its_keys_in_the_same_unit(
    world: World,
) -> None:
    keys = world.ctx.tenancy.keys
    async with refusing(world.engine, "service_accounts"):
        await _fails(world.ctx.tenancy.delete_service_account(MASTER, world.sa_id))
    for key_id in world.sa_keys:
        record = await keys.get(key_id)
        assert record is not None and record.revoked_at is None, "a key was revoked anyway"

    await world.ctx.tenancy.delete_service_account(MASTER, world.sa_id)
    for key_id in world.sa_keys:
        record = await keys.get(key_id)
        assert record is not None and record.revoked_at is not None
    [entry] = await world.ctx.tenancy.repo.audit_entries(limit=1)
    assert entry.action == "service_account.delete"
    assert entry.after is not None
    assert sorted(entry.after["revoked_keys"]) == sorted(world.sa_keys)


@pytest.mark.parametrize("action", ["user.update", "user.password"])
async def test_disabling_or_a_new_password_ends_sessions_in_the_same_unit(
    world: World, action: str
) -> None:
    _, run = CASES[action]
    console = world.ctx.records.console
    async with refusing(world.engine, "users"):
        await _fails(run(world))
    assert await console.get_session("h" * 64) is not None, "signed out by a change that failed"

    await run(world)
    assert await console.get_session("h" * 64) is None


async def test_a_failed_change_announces_nothing(world: World) -> None:
    """The key cache is reloaded after the commit only: a rolled-back revoke never reaches
    the cache, and a committed one does at once."""
    auth = {"Authorization": f"Bearer {world.secret}"}
    async with refusing(world.engine, "audit_log"):
        await _fails(_key_revoke(world))
    resp = await world.client.get("/v1/models", headers=auth)
    assert resp.status_code == 200, "a key whose revoke rolled back was refused"

    await _key_revoke(world)
    resp = await world.client.get("/v1/models", headers=auth)
    assert resp.status_code == 401, resp.text


async def test_a_rotation_keeps_the_old_secret_only_when_committed(world: World) -> None:
    keys = world.ctx.tenancy.keys
    before = await keys.get(world.key_id)
    assert before is not None
    async with refusing(world.engine, "audit_log"):
        await _fails(_key_rotate(world))
    assert await keys.get(world.key_id) == before

    await _key_rotate(world)
    after = await keys.get(world.key_id)
    assert after is not None
    assert after.previous_hash == before.key_hash
    assert after.key_hash != before.key_hash
