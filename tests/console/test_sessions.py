"""Session store and login throttle against a fake clock; sessions over SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.auth.passwords import Passwords
from sluice.auth.throttle import FailureThrottle
from sluice.cli import app as cli
from sluice.clock import FakeClock
from sluice.console.sessions import TOUCH_EVERY_S, SessionStore, storage_scope, token_hash
from sluice.console.throttle import buckets
from sluice.storage.sql.repository import SqlStorage
from tests.integration.conftest import make_settings


def store(storage: SqlStorage, clock: FakeClock) -> SessionStore:
    return SessionStore(storage.console, clock, idle_s=600, max_s=3600)


async def test_a_session_is_stored_hashed_and_loads(storage: SqlStorage) -> None:
    clock = FakeClock()
    sessions = store(storage, clock)
    started = await sessions.start("user_1", method="password")
    assert started.record.id_hash == token_hash(started.token) != started.token
    assert await storage.console.get_session(started.token) is None  # not stored in clear
    loaded = await sessions.load(started.token)
    assert loaded is not None and loaded.user_id == "user_1"
    assert loaded.csrf_token == started.record.csrf_token


async def test_idle_expiry_counts_from_the_last_page_view(storage: SqlStorage) -> None:
    clock = FakeClock()
    sessions = store(storage, clock)
    started = await sessions.start("user_1", method="password")
    clock.advance(TOUCH_EVERY_S + 1)
    assert await sessions.load(started.token) is not None  # recorded as seen now
    clock.advance(599 - TOUCH_EVERY_S)
    assert await sessions.load(started.token) is not None
    clock.advance(601)
    assert await sessions.load(started.token) is None
    assert await storage.console.get_session(started.record.id_hash) is None


async def test_absolute_expiry_ends_an_active_session(storage: SqlStorage) -> None:
    clock = FakeClock()
    sessions = store(storage, clock)
    started = await sessions.start("user_1", method="password")
    for _ in range(7):
        clock.advance(500)
        await sessions.load(started.token)
    clock.advance(200)  # 3700 s after sign-in, never idle for long
    assert await sessions.load(started.token) is None


async def test_looking_without_touching_lets_a_session_go_idle(storage: SqlStorage) -> None:
    clock = FakeClock()
    sessions = store(storage, clock)
    started = await sessions.start("user_1", method="password")
    assert sessions.remaining_s(started.record) == 600  # idle_s comes before max_s
    for _ in range(5):
        clock.advance(TOUCH_EVERY_S + 1)
        looked = await sessions.load(started.token, touch=False)
        assert looked is not None and looked.last_seen_at == started.record.last_seen_at
    assert sessions.remaining_s(looked) == 600 - 5 * (TOUCH_EVERY_S + 1)
    clock.advance(600)
    assert await sessions.load(started.token, touch=False) is None


async def test_remaining_time_ends_at_the_absolute_expiry(storage: SqlStorage) -> None:
    clock = FakeClock()
    sessions = store(storage, clock)
    started = await sessions.start("user_1", method="password")
    for _ in range(6):
        clock.advance(550)
        record = await sessions.load(started.token)
        assert record is not None
    assert record.last_seen_at == clock.now()  # the view just recorded
    assert sessions.remaining_s(record) == 3600 - 6 * 550  # 300 s left of max_s
    clock.advance(300)
    assert sessions.remaining_s(record) == 0


async def test_the_storage_scope_names_a_session_without_giving_it_away(
    storage: SqlStorage,
) -> None:
    sessions = store(storage, FakeClock())
    one = await sessions.start("user_1", method="password")
    two = await sessions.start("user_1", method="password")
    scopes = {storage_scope(one.record), storage_scope(two.record)}
    assert len(scopes) == 2
    for started in (one, two):
        scope = storage_scope(started.record)
        assert scope not in (started.token, started.record.id_hash, started.record.csrf_token)
        assert scope not in started.record.id_hash


async def test_end_and_end_all(storage: SqlStorage) -> None:
    clock = FakeClock()
    sessions = store(storage, clock)
    a = await sessions.start("user_1", method="password")
    b = await sessions.start("user_1", method="password")
    c = await sessions.start("user_2", method="password")
    await sessions.end(a.token)
    assert await sessions.load(a.token) is None
    assert await sessions.end_all("user_1") == 1
    assert await sessions.load(b.token) is None
    assert await sessions.load(c.token) is not None


async def test_expired_sessions_are_purged_at_the_next_sign_in(storage: SqlStorage) -> None:
    clock = FakeClock()
    sessions = store(storage, clock)
    old = await sessions.start("user_1", method="password")
    clock.advance(3601)
    await sessions.start("user_2", method="password")
    assert await storage.console.get_session(old.record.id_hash) is None


def test_throttle_window_slides() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(clock, max_failures=3, window_s=900)
    keys = buckets("Ada@Example.org ", "10.0.0.1")
    assert keys[0] == "account:ada@example.org"
    for _ in range(3):
        assert throttle.retry_after_s(keys) is None
        throttle.failed(keys)
        clock.advance(10)
    assert throttle.retry_after_s(keys) == pytest.approx(870)
    clock.advance(871)  # the first failure left the window
    assert throttle.retry_after_s(keys) is None
    throttle.succeeded(keys[0])
    throttle.failed(keys)
    assert throttle.retry_after_s(keys) is not None  # the address still has three


def test_passwords_hash_verify_and_refuse_short_ones() -> None:
    passwords = Passwords()
    hashed = passwords.hash("a long enough password")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "a long enough password")
    assert not passwords.verify(hashed, "a long enough passwore")
    assert not passwords.verify(None, "anything at all")
    with pytest.raises(Exception, match="at least 10"):
        passwords.hash("short")


def test_cli_create_admin_and_set_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path)
    monkeypatch.setenv("SLUICE_DATABASE_URL", settings.resolved_database_url())
    runner = CliRunner()
    made = runner.invoke(
        cli,
        ["users", "create-admin", "--email", "root@example.org", "--password-stdin"],
        input="first password!\n",
    )
    assert made.exit_code == 0, made.output
    short = runner.invoke(
        cli, ["users", "set-password", "root@example.org", "--password-stdin"], input="x\n"
    )
    assert short.exit_code == 2 and "at least 10" in short.output
    changed = runner.invoke(
        cli,
        ["users", "set-password", "root@example.org", "--password-stdin"],
        input="second password\n",
    )
    assert changed.exit_code == 0, changed.output
    listed = json.loads(runner.invoke(cli, ["users", "list", "--json"]).output)
    assert [u["is_admin"] for u in listed if u["email"] == "root@example.org"] == [True]

    async def stored_hash() -> str | None:
        storage = SqlStorage.from_url(settings.resolved_database_url())
        try:
            record = await storage.console.login_record("ROOT@example.org")
            return record.password_hash if record else None
        finally:
            await storage.close()

    assert Passwords().verify(asyncio.run(stored_hash()), "second password")
