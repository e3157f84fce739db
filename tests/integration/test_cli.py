"""The CLI sets up a deployment without the console; what it makes works in the gateway."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import app
from sluice.settings import Settings
from tests.integration.conftest import make_settings, running
from tests.services import free_port

CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_bootstrap_with_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path)
    monkeypatch.setenv("SLUICE_DATABASE_URL", settings.resolved_database_url())
    org = json.loads(_cli("orgs", "create", "acme", "--json"))[0]
    team = json.loads(_cli("teams", "create", "acme", "research", "--json"))[0]
    assert team["org_id"] == org["id"]
    user = json.loads(_cli("users", "create", "ada@acme.org", "--team", "acme/research", "--json"))[
        0
    ]
    _cli("teams", "add", "acme/research", "ada@acme.org", "--admin")
    _cli("users", "role", "ada@acme.org", "org-admin", "--org", "acme")
    key = json.loads(_cli("keys", "create", "--name", "laptop", "--user", "ada@acme.org", "--json"))
    assert key["user_id"] == user["id"] and key["team_id"] == team["id"]
    listed = json.loads(_cli("keys", "list", "--json"))
    assert [k["id"] for k in listed] == [key["id"]]
    assert "research" in _cli("teams", "list")
    bad = CliRunner().invoke(app, ["teams", "create", "nope", "x"])
    assert bad.exit_code == 1 and "no organisation 'nope'" in bad.output

    asyncio.run(_check_in_gateway(settings, key, user))


async def _check_in_gateway(settings: Settings, key: dict[str, str], user: dict[str, str]) -> None:
    async with running(settings) as (_, client):
        auth = {"Authorization": f"Bearer {key['key']}"}
        assert (
            await client.post("/v1/chat/completions", json=CHAT, headers=auth)
        ).status_code == 200
        me = (await client.get("/api/v1/users/me", headers=auth)).json()
        assert me["email"] == "ada@acme.org"
        teams = (await client.get("/api/v1/teams", headers=auth)).json()["data"]
        assert {t["name"] for t in teams} == {"default", "research"}  # org-admin sees the org
        audit = (await client.get("/api/v1/audit")).json()["data"]
        assert {e["action"] for e in audit} >= {
            "org.create",
            "team.create",
            "user.create",
            "team.member",
            "org.admin",
            "key.create",
        }
        assert {e["actor"] for e in audit} == {"master"}


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "list"),
        ("keys", "create", "--name", "laptop"),
        ("keys", "revoke", "key_x"),
        ("users", "list"),
        ("routing", "reload"),
    ],
)
def test_an_unreachable_database_is_one_line_and_status_1(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    url = f"postgresql+asyncpg://sluice:hidden@127.0.0.1:{free_port()}/sluice"
    monkeypatch.setenv("SLUICE_DATABASE_URL", url)
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error the database is unavailable (")
    assert "127.0.0.1" in lines[0] and "hidden" not in lines[0]


def test_archive_with_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path)
    monkeypatch.setenv("SLUICE_DATABASE_URL", settings.resolved_database_url())
    _cli("orgs", "create", "initech")
    _cli("teams", "create", "initech", "tps")
    _cli("users", "create", "peter@initech.org", "--team", "initech/tps")
    key = json.loads(_cli("keys", "create", "--name", "k", "--user", "peter@initech.org", "--json"))
    assert "archived team tps" in _cli("teams", "archive", "initech/tps")
    assert "tps" not in _cli("teams", "list")
    assert "archived user peter@initech.org" in _cli("users", "archive", "peter@initech.org")
    assert "peter@initech.org" not in _cli("users", "list")
    assert "archived organisation initech" in _cli("orgs", "archive", "initech")
    assert "initech" not in _cli("orgs", "list")
    revoked = {k["id"]: k for k in json.loads(_cli("keys", "list", "--json"))}
    assert revoked[key["id"]]["revoked_at"] is not None
