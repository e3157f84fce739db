"""Tenancy through the admin API: the role matrix over every route, tenant isolation, no
escalation, model access narrowing, key rotation and caps, the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from sluice.app import SluiceApp
from tests.integration.conftest import make_settings, running

CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class World:
    app: SluiceApp
    client: httpx.AsyncClient
    ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    async def call(self, role: str, method: str, path: str, body: object = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return await self.client.request(
            method, path.format(**self.ids), json=body, headers=headers
        )


async def _ok(resp: httpx.Response) -> dict[str, object]:
    assert resp.status_code < 300, resp.text
    return resp.json() if resp.content else {}  # type: ignore[no-any-return]


@asynccontextmanager
async def build_world(tmp_path: Path) -> AsyncIterator[World]:
    async with running(make_settings(tmp_path)) as (app, client):
        w = World(app, client)
        w.tokens["admin"] = "test-master-key"
        for org in ("A", "B"):
            made = await _ok(await w.call("admin", "POST", "/api/v1/orgs", {"name": f"org-{org}"}))
            w.ids[f"org{org}"] = str(made["id"])
            team = await _ok(
                await w.call(
                    "admin", "POST", f"/api/v1/orgs/{made['id']}/teams", {"name": f"team-{org}1"}
                )
            )
            w.ids[f"team{org}"] = str(team["id"])
        people = {"oa": "teamA", "ta": "teamA", "ua": "teamA", "ub": "teamB"}
        for name, team in people.items():
            user = await _ok(
                await w.call(
                    "admin",
                    "POST",
                    "/api/v1/users",
                    {"email": f"{name}@example.org", "name": name, "team_id": w.ids[team]},
                )
            )
            w.ids[name] = str(user["id"])
            key = await _ok(
                await w.call(
                    "admin", "POST", "/api/v1/keys", {"name": f"{name}-key", "user_id": user["id"]}
                )
            )
            w.tokens[name] = str(key["key"])
            w.ids[f"{name}_key"] = str(key["id"])
        await _ok(await w.call("admin", "PUT", "/api/v1/orgs/{orgA}/admins/{oa}"))
        await _ok(
            await w.call(
                "admin", "PUT", "/api/v1/teams/{teamA}/members/{ta}", {"role": "team_admin"}
            )
        )
        sa = await _ok(
            await w.call("admin", "POST", "/api/v1/teams/{teamA}/service-accounts", {"name": "ci"})
        )
        w.ids["sa"] = str(sa["id"])
        sakey = await _ok(
            await w.call(
                "admin", "POST", "/api/v1/keys", {"name": "ci", "service_account_id": sa["id"]}
            )
        )
        w.ids["sa_key"] = str(sakey["id"])
        w.tokens["sa"] = str(sakey["key"])
        yield w


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with build_world(tmp_path) as w:
        yield w


ROLES = ("admin", "oa", "ta", "ua", "ub")

# Each case: method, path, body, and the expected status per role (admin, org-admin A,
# team-admin A1, member A1, member B1). 2 = any 2xx.
MATRIX: list[tuple[str, str, object, tuple[int, int, int, int, int]]] = [
    ("GET", "/api/v1/global", None, (2, 403, 403, 403, 403)),
    ("PUT", "/api/v1/global", {"limits": {"rpm": 1000}}, (2, 403, 403, 403, 403)),
    ("POST", "/api/v1/orgs", {"name": "new"}, (2, 403, 403, 403, 403)),
    ("GET", "/api/v1/orgs", None, (2, 2, 2, 2, 2)),
    ("GET", "/api/v1/orgs/{orgA}", None, (2, 2, 2, 2, 404)),
    ("PATCH", "/api/v1/orgs/{orgA}", {"limits": {"rpm": 500}}, (2, 2, 403, 403, 404)),
    ("PUT", "/api/v1/orgs/{orgA}/admins/{ua}", None, (2, 403, 403, 403, 404)),
    ("DELETE", "/api/v1/orgs/{orgA}/admins/{ua}", None, (2, 403, 403, 403, 404)),
    ("POST", "/api/v1/orgs/{orgA}/teams", {"name": "x"}, (2, 2, 403, 403, 404)),
    ("GET", "/api/v1/teams", None, (2, 2, 2, 2, 2)),
    ("GET", "/api/v1/teams/{teamA}", None, (2, 2, 2, 2, 404)),
    ("PATCH", "/api/v1/teams/{teamA}", {"limits": {"rpm": 100}}, (2, 2, 2, 403, 404)),
    ("GET", "/api/v1/teams/{teamA}/members", None, (2, 2, 2, 2, 404)),
    ("PUT", "/api/v1/teams/{teamA}/members/{ua}", {"role": "member"}, (2, 2, 2, 403, 404)),
    ("DELETE", "/api/v1/teams/{teamA}/members/{ua}", None, (2, 2, 2, 403, 404)),
    ("POST", "/api/v1/teams/{teamA}/service-accounts", {"name": "bot"}, (2, 2, 2, 403, 404)),
    ("GET", "/api/v1/teams/{teamA}/service-accounts", None, (2, 2, 2, 2, 404)),
    ("DELETE", "/api/v1/service-accounts/{sa}", None, (2, 2, 2, 403, 404)),
    (
        "POST",
        "/api/v1/users",
        {"email": "n@x.org", "name": "n", "org_id": "{orgA}"},
        (2, 2, 403, 403, 404),
    ),
    ("GET", "/api/v1/users", None, (2, 2, 2, 2, 2)),
    ("GET", "/api/v1/users/me", None, (404, 2, 2, 2, 2)),
    ("GET", "/api/v1/users/{ua}", None, (2, 2, 2, 2, 404)),
    ("PATCH", "/api/v1/users/{ua}", {"limits": {"rpm": 5}}, (2, 2, 403, 403, 404)),
    ("PUT", "/api/v1/users/{ua}/admin", None, (2, 403, 403, 403, 403)),
    ("DELETE", "/api/v1/users/{ua}/admin", None, (2, 403, 403, 403, 403)),
    ("POST", "/api/v1/keys", {"name": "k"}, (2, 2, 2, 2, 2)),
    ("POST", "/api/v1/keys", {"name": "k", "service_account_id": "{sa}"}, (2, 2, 2, 403, 404)),
    ("GET", "/api/v1/keys", None, (2, 2, 2, 2, 2)),
    ("GET", "/api/v1/keys/{ua_key}", None, (2, 2, 404, 2, 404)),
    ("GET", "/api/v1/keys/{sa_key}", None, (2, 2, 2, 404, 404)),
    ("PATCH", "/api/v1/keys/{ua_key}", {"name": "renamed"}, (2, 2, 404, 2, 404)),
    ("POST", "/api/v1/keys/{sa_key}/rotate", {"grace_s": 0}, (2, 2, 2, 404, 404)),
    ("DELETE", "/api/v1/keys/{ua_key}", None, (2, 2, 404, 2, 404)),
    ("GET", "/api/v1/audit", None, (2, 403, 403, 403, 403)),
    ("GET", "/api/v1/audit?org_id={orgA}", None, (2, 2, 403, 403, 403)),
]


def _fill(body: object, ids: dict[str, str]) -> object:
    if isinstance(body, dict):
        return {k: (v.format(**ids) if isinstance(v, str) else v) for k, v in body.items()}
    return body


async def test_every_route_declares_its_policy_and_is_in_the_matrix(world: World) -> None:
    spec = (await world.client.get("/api/openapi.json")).json()
    operations = [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    ]
    assert len(operations) > 20
    covered = {(m, p.split("?")[0]) for m, p, _, _ in MATRIX}
    for method, path, op in operations:
        assert op.get("x-sluice-policy"), f"{method} {path} declares no policy"
        assert any(m == method and _same_shape(p, path) for m, p in covered), (
            f"{method} {path} is not in the role matrix"
        )


def _same_shape(concrete: str, template: str) -> bool:
    a, b = concrete.strip("/").split("/"), template.strip("/").split("/")
    return len(a) == len(b) and all(x == y or y.startswith("{") for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX)
async def test_role_matrix(
    tmp_path: Path, method: str, path: str, body: object, expected: tuple[int, ...]
) -> None:
    """Denied roles run first in one world (a refusal changes nothing); a mutation allowed to
    several roles gets a world per role, since one success may change what the next finds."""
    roles = list(zip(ROLES, expected, strict=True))
    denied = [(r, w) for r, w in roles if w != 2]
    allowed = [r for r, w in roles if w == 2]
    mutates = method != "GET"
    async with build_world(tmp_path / "first") as w:
        for role, want in denied:
            resp = await w.call(role, method, path, _fill(body, w.ids))
            assert resp.status_code == want, f"{role} {method} {path}: {resp.text}"
            assert set(resp.json()["error"]) == {"message", "type", "param", "code"}
        for role in allowed if not mutates else allowed[:1]:
            resp = await w.call(role, method, path, _fill(body, w.ids))
            assert resp.status_code < 300, f"{role} {method} {path}: {resp.text}"
    for role in allowed[1:] if mutates else ():
        async with build_world(tmp_path / role) as w:
            resp = await w.call(role, method, path, _fill(body, w.ids))
            assert resp.status_code < 300, f"{role} {method} {path}: {resp.text}"
