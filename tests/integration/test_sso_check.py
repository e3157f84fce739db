"""The dry run of the sign-in mapping: ``sluice sso check`` and ``POST /api/v1/sso/check``
answer what a set of claims would map to, from the same function as every sign-in, and write
nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import app
from tests.integration.conftest import CONFIG, make_settings, running

# The provisioning example of docs/sso.md (keep the two the same).
AUTH = """
auth:
  oidc:
    campus:
      display_name: Campus login
      issuer: https://login.example.edu
      client_id: sluice
      client_secret: env:SLUICE_OIDC_SECRET
      scopes: [openid, email, profile, groups]
      default_org: visitors
      provisioning:
        orgs:
          physics-staff: Physics
        org_rules:
          - match: '^lab-(?P<org>[a-z0-9-]+)$'
            org: 'lab-{org}'
            create: true
        admin_groups: [llm-admins]
        org_admin_groups: [lab-leads]
        teams:
          - match: '^team-(?P<team>[a-z0-9-]+)$'
        allowed_domains: [example.edu]
"""


def test_the_docs_show_this_example() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "sso.md"
    assert AUTH.strip() in docs.read_text()


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["sso", "check", *args])
    return result.exit_code, result.output


def test_sso_check_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "sluice.yaml"
    config.write_text(CONFIG + AUTH)
    settings = make_settings(tmp_path)
    monkeypatch.setenv("SLUICE_DATABASE_URL", settings.resolved_database_url())
    assert CliRunner().invoke(app, ["orgs", "create", "Physics"]).exit_code == 0
    physics = CliRunner().invoke(app, ["teams", "create", "Physics", "theory"])
    assert physics.exit_code == 0, physics.output
    code, shown = _cli(
        "--idp",
        "campus",
        "--groups",
        "physics-staff,lab-leads,team-theory,team-optics",
        "--email",
        "ada@example.edu",
        "-c",
        str(config),
    )
    assert code == 0, shown
    assert "organisation: Physics from group physics-staff" in shown
    assert "org admin: yes" in shown and "admin: no" in shown
    assert "teams: optics" in shown
    assert "left alone (made by hand): theory" in shown

    code, shown = _cli(
        "--idp", "campus", "--groups", "lab-bio", "-c", str(config), "--offline", "--json"
    )
    assert code == 1  # no e-mail: outside the allowed domains
    assert json.loads(shown)["refused"].endswith("yours is not shared.")
    code, shown = _cli("--idp", "campus", "--groups", "lab-bio,llm-admins", "-c", str(config))
    assert code == 1
    code, shown = _cli(
        "--idp",
        "campus",
        "--groups",
        "lab-bio,llm-admins",
        "--email",
        "x@example.edu",
        "-c",
        str(config),
        "--json",
    )
    planned = json.loads(shown)
    assert code == 0 and planned["org"] == "lab-bio" and planned["create_org"] is True
    assert planned["admin"] is True
    code, shown = _cli("--idp", "nope", "-c", str(config))
    assert code == 2 and "no identity provider named 'nope'" in shown


def test_sso_check_in_the_admin_api(tmp_path: Path) -> None:
    asyncio.run(_api(tmp_path))


async def _api(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path), CONFIG + AUTH) as (gw, client):
        made = await client.post("/api/v1/orgs", json={"name": "visitors"})
        assert made.status_code == 201
        body = {"idp": "campus", "groups": ["students"], "email": "eve@example.edu"}
        resp = await client.post("/api/v1/sso/check", json=body)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {
            "idp": "campus",
            "allowed": True,
            "refused": None,
            "org": "visitors",
            "org_source": "default_org",
            "create_org": False,
            "admin": False,
            "org_admin": False,
            "teams": [],
            "skipped_teams": [],
            "notes": [],
        }
        away = await client.post("/api/v1/sso/check", json={**body, "email": "eve@evil.org"})
        assert away.json()["allowed"] is False
        unknown = await client.post("/api/v1/sso/check", json={**body, "idp": "nope"})
        assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "idp"
        bad = await client.post("/api/v1/sso/check", json={**body, "extra": 1})
        assert bad.status_code == 400
        spec = (await client.get("/api/openapi.json")).json()
        assert "/api/v1/sso/check" in spec["paths"]
        rt = gw.runtime
        assert rt is not None
        assert [o.name for o in (await rt.storage.tenancy.directory()).orgs] == ["visitors"]
