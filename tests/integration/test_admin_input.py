"""Admin input is validated completely before anything is written (issue #12, point 2): every
number has bounds, booleans are not numbers, an expiry in the past is refused, a refused
request changes nothing, and revoking or disabling works whatever else is stored."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.app import SluiceApp
from sluice.auth.principal import MASTER
from sluice.budgets.spec import BUDGET_USD_MAX, BudgetSettings
from sluice.errors import BadRequest
from sluice.limits.settings import LimitSettings, stored_limits
from sluice.limits.spec import LIMIT_MAX
from sluice.tenancy.model import Governance
from tests.integration.conftest import make_settings, running

CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}
HUGE = 2**70


@pytest.fixture
async def gw(
    tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[SluiceApp, httpx.AsyncClient]]:
    async with running(make_settings(tmp_path, database_url=database_url)) as pair:
        yield pair


def _runtime(app: SluiceApp) -> Any:
    assert app.runtime is not None
    return app.runtime


async def _made(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(path, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _refused(resp: httpx.Response, param: str) -> None:
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"


async def _audit_count(client: httpx.AsyncClient) -> int:
    resp = await client.get("/api/v1/audit", params={"limit": 1000})
    assert resp.status_code == 200
    return len(resp.json()["data"])


BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("limits beyond 64 bits", {"limits": {"rpm": HUGE}}, "limits.rpm"),
    ("limit above the bound", {"limits": {"tpd_input": LIMIT_MAX + 1}}, "limits.tpd_input"),
    ("negative limit", {"limits": {"max_parallel": -1}}, "limits.max_parallel"),
    ("boolean limit", {"limits": {"rpm": True}}, "limits.rpm"),
    ("float limit", {"limits": {"rpm": 5.0}}, "limits.rpm"),
    ("text limit", {"limits": {"rpm": "5"}}, "limits.rpm"),
    (
        "per-model limit beyond 64 bits",
        {"limits": {"models": {"mock-gpt": {"tpm_output": HUGE}}}},
        "limits.models.mock-gpt.tpm_output",
    ),
    ("budget above the bound", {"budget": {"usd": BUDGET_USD_MAX * 2}}, "budget.usd"),
    ("boolean budget", {"budget": {"usd": True}}, "budget.usd"),
    ("negative budget", {"budget": {"usd": -0.01}}, "budget.usd"),
    ("unknown limit", {"limits": {"rph": 3}}, "limits.rph"),
]


@pytest.mark.parametrize(("what", "body", "param"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_out_of_bounds_numbers_are_refused_and_nothing_changes(
    gw: tuple[SluiceApp, httpx.AsyncClient], what: str, body: dict[str, Any], param: str
) -> None:
    _, client = gw
    org = await _made(client, "/api/v1/orgs", {"name": "o"})
    team = await _made(client, f"/api/v1/orgs/{org['id']}/teams", {"name": "t"})
    user = await _made(client, "/api/v1/users", {"email": "u@example.org", "name": "u"})
    key = await _made(client, "/api/v1/keys", {"name": "k"})
    audited = await _audit_count(client)
    targets = {
        f"/api/v1/orgs/{org['id']}": org,
        f"/api/v1/teams/{team['id']}": team,
        f"/api/v1/users/{user['id']}": user,
        f"/api/v1/keys/{key['id']}": key,
    }
    for path, before in targets.items():
        _refused(await client.patch(path, json=body), param)
        after = (await client.get(path)).json()
        assert {k: after[k] for k in ("limits", "budget")} == {
            k: before[k] for k in ("limits", "budget")
        }
    _refused(await client.put("/api/v1/global", json=body), param)
    assert (await client.get("/api/v1/global")).json()["limits"] is None
    _refused(await client.post("/api/v1/keys", json={"name": "k2", **body}), param)
    _refused(await client.post("/api/v1/orgs", json={"name": "o2", **body}), param)
    listed = (await client.get("/api/v1/keys")).json()["data"]
    assert [k["name"] for k in listed] == ["k"]
    assert [o["name"] for o in (await client.get("/api/v1/orgs")).json()["data"]] == ["o"]
    assert await _audit_count(client) == audited


async def test_largest_values_are_accepted_and_enforced(
    gw: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    _, client = gw
    body = {"limits": {"rpm": LIMIT_MAX, "max_parallel": 0}, "budget": {"usd": BUDGET_USD_MAX}}
    key = await _made(client, "/api/v1/keys", {"name": "k", **body})
    assert key["limits"] == {"rpm": LIMIT_MAX, "max_parallel": 0}
    # max_parallel 0 refuses every request: the stored limits are in force.
    chat = await client.post(
        "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key['key']}"}
    )
    assert chat.status_code == 429, chat.text


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_keys": True}, "max_keys"),
        ({"max_keys": 10**6}, "max_keys"),
        ({"disabled": 0}, "disabled"),
        ({"disabled": "yes"}, "disabled"),
    ],
)
async def test_user_numbers_and_booleans_are_strict(
    gw: tuple[SluiceApp, httpx.AsyncClient], body: dict[str, Any], param: str
) -> None:
    _, client = gw
    user = await _made(client, "/api/v1/users", {"email": "u@example.org", "name": "u"})
    _refused(await client.patch(f"/api/v1/users/{user['id']}", json=body), param)
    after = (await client.get(f"/api/v1/users/{user['id']}")).json()
    assert (after["max_keys"], after["disabled"]) == (None, False)


async def test_rotation_grace_is_a_bounded_number(gw: tuple[SluiceApp, httpx.AsyncClient]) -> None:
    _, client = gw
    key = await _made(client, "/api/v1/keys", {"name": "k"})
    for grace in (True, "60", 7 * 86400 + 1, -1):
        _refused(
            await client.post(f"/api/v1/keys/{key['id']}/rotate", json={"grace_s": grace}),
            "grace_s",
        )
    ok = await client.get("/v1/models", headers={"Authorization": f"Bearer {key['key']}"})
    assert ok.status_code == 200, "a refused rotation must not change the secret"


async def test_expiry_must_be_in_the_future(gw: tuple[SluiceApp, httpx.AsyncClient]) -> None:
    _, client = gw
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    _refused(
        await client.post("/api/v1/keys", json={"name": "k", "expires_at": past}), "expires_at"
    )
    far = (datetime.now(UTC) + timedelta(days=365 * 101)).isoformat()
    _refused(await client.post("/api/v1/keys", json={"name": "k", "expires_at": far}), "expires_at")
    _refused(
        await client.post("/api/v1/keys", json={"name": "k", "expires_at": 1e12}), "expires_at"
    )
    assert (await client.get("/api/v1/keys")).json()["data"] == []
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    key = await _made(client, "/api/v1/keys", {"name": "k", "expires_at": soon})
    resp = await client.patch(f"/api/v1/keys/{key['id']}", json={"expires_at": past, "name": "x"})
    _refused(resp, "expires_at")
    after = (await client.get(f"/api/v1/keys/{key['id']}")).json()
    assert after["name"] == "k" and after["expires_at"] == key["expires_at"]
    cleared = await client.patch(f"/api/v1/keys/{key['id']}", json={"expires_at": None})
    assert cleared.status_code == 200 and cleared.json()["expires_at"] is None


async def test_text_fields_are_bounded(gw: tuple[SluiceApp, httpx.AsyncClient]) -> None:
    _, client = gw
    for body, param in (
        ({"name": "x" * 201}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "k", "metadata": {f"k{i}": "v" for i in range(65)}}, "metadata"),
        ({"name": "k", "metadata": {"k": "v" * 501}}, "metadata.k"),
        ({"name": "k", "models": ["m" * 201]}, "models.0"),
    ):
        _refused(await client.post("/api/v1/keys", json=body), param)
    explain = {"model": "mock-gpt", "key_id": "key\x00"}
    _refused(await client.post("/api/v1/routing/explain", json=explain), "key_id")
    credential = {"api_key": "sk-\x00"}
    _refused(await client.put("/api/v1/providers/mock/credential", json=credential), "api_key")


async def test_legacy_out_of_range_limits_never_block_revocation_or_disabling(
    gw: tuple[SluiceApp, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    """Values an older version stored unchecked: the key can still be revoked (and stops
    working at once), its owner disabled; other keys are unaffected."""
    app, client = gw
    rt = _runtime(app)
    user = await _made(client, "/api/v1/users", {"email": "u@example.org", "name": "u"})
    legacy = await _made(client, "/api/v1/keys", {"name": "legacy", "user_id": user["id"]})
    odd = await _made(client, "/api/v1/keys", {"name": "odd"})
    other = await _made(client, "/api/v1/keys", {"name": "other"})
    record = await rt.storage.keys.get(legacy["id"])
    await rt.storage.keys.update(
        replace(
            record,
            limits=LimitSettings(rpm=HUGE, models={"mock-gpt": LimitSettings(tpm_input=HUGE)}),
        )
    )
    odd_record = await rt.storage.keys.get(odd["id"])
    await rt.storage.keys.update(replace(odd_record, limits=stored_limits({"rpm": "lots"})))
    stored_user = await rt.storage.tenancy.get_user(user["id"])
    await rt.storage.tenancy.update_user(
        replace(stored_user, governance=Governance(limits=LimitSettings(tpm_output=HUGE)))
    )
    with caplog.at_level(logging.WARNING, logger="sluice.tenancy"):
        assert app.control is not None
        await app.control.sync.refresh(force=True)
    assert f"key {odd['id']}" in caplog.text

    def auth(key: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {key['key']}"}

    # Over-large limits mean "that much" (capped at the bound); unreadable ones fail closed.
    assert (
        await client.post("/v1/chat/completions", json=CHAT, headers=auth(legacy))
    ).status_code == 200
    assert (await client.get("/v1/models", headers=auth(odd))).status_code == 401
    assert (await client.get("/v1/models", headers=auth(other))).status_code == 200

    # An unrelated change does not re-validate the stored limits.
    renamed = await client.patch(f"/api/v1/keys/{legacy['id']}", json={"name": "renamed"})
    assert renamed.status_code == 200, renamed.text
    disabled = await client.patch(f"/api/v1/users/{user['id']}", json={"disabled": True})
    assert disabled.status_code == 200, disabled.text
    assert (await client.get("/v1/models", headers=auth(legacy))).status_code == 401
    enabled = await client.patch(f"/api/v1/users/{user['id']}", json={"disabled": False})
    assert enabled.status_code == 200, enabled.text
    assert (await client.get("/v1/models", headers=auth(legacy))).status_code == 200

    revoked = await client.delete(f"/api/v1/keys/{legacy['id']}")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    after = await client.get("/v1/models", headers=auth(legacy))
    assert after.status_code == 401 and "revoked" in after.json()["error"]["message"]
    assert (await client.delete(f"/api/v1/keys/{odd['id']}")).status_code == 200
    entries = (await client.get("/api/v1/audit")).json()["data"]
    revoke = next(
        e for e in entries if e["action"] == "key.revoke" and e["target_id"] == legacy["id"]
    )
    assert revoke["before"]["limits"]["rpm"] == str(HUGE)


async def test_the_domain_refuses_what_the_api_refuses(
    gw: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    """The console and the CLI call the tenancy service directly: it applies the same bounds."""
    app, client = gw
    org = await _made(client, "/api/v1/orgs", {"name": "o"})
    assert app.control is not None
    tenancy = app.control.tenancy
    for gov, param in (
        (Governance(limits=LimitSettings(rpm=HUGE)), "limits.rpm"),
        (Governance(limits=LimitSettings(rpm=True)), "limits.rpm"),
        (
            Governance(limits=LimitSettings(models={"mock-gpt": LimitSettings(rpd=-1)})),
            "limits.models.mock-gpt.rpd",
        ),
        (Governance(budget=BudgetSettings(usd=float("inf"))), "budget.usd"),
        (Governance(budget=BudgetSettings(usd=1, period="year")), "budget.period"),  # type: ignore[arg-type]
    ):
        with pytest.raises(BadRequest) as caught:
            await tenancy.update_org(MASTER, org["id"], name=None, gov=gov)
        assert caught.value.param == param
        with pytest.raises(BadRequest):
            await tenancy.create_team(MASTER, org["id"], "t", gov)
    assert (await client.get(f"/api/v1/orgs/{org['id']}")).json()["limits"] is None


async def test_renaming_to_a_taken_name_is_a_conflict(
    gw: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    _, client = gw
    first = await _made(client, "/api/v1/orgs", {"name": "first"})
    second = await _made(client, "/api/v1/orgs", {"name": "second"})
    resp = await client.patch(f"/api/v1/orgs/{second['id']}", json={"name": "first"})
    assert resp.status_code == 409, resp.text
    team = await _made(client, f"/api/v1/orgs/{first['id']}/teams", {"name": "t"})
    resp = await client.patch(f"/api/v1/teams/{team['id']}", json={"name": "default"})
    assert resp.status_code == 409, resp.text


async def test_openapi_publishes_the_bounds_and_400(
    gw: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    _, client = gw
    schema = (await client.get("/api/openapi.json")).json()
    components = schema["components"]["schemas"]
    rpm = components["ModelLimits"]["properties"]["rpm"]["anyOf"][0]
    assert (rpm["type"], rpm["minimum"], rpm["maximum"]) == ("integer", 0, LIMIT_MAX)
    assert components["Budget"]["properties"]["usd"]["maximum"] == BUDGET_USD_MAX
    assert "HTTPValidationError" not in components
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert "422" not in op["responses"], (method, path)
            assert "400" in op["responses"], (method, path)


async def test_nul_characters_in_path_or_query_are_a_400(
    gw: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    """PostgreSQL cannot compare text holding NUL: refused before any query, on every route."""
    _, client = gw
    for path, param in (
        ("/api/v1/keys/a%00b", "key_id"),
        ("/api/v1/audit?org_id=a%00", "org_id"),
        ("/api/v1/analytics/summary?key_id=a%00", "key_id"),
        ("/api/v1/analytics/requests/a%00", "request_id"),
        ("/api/v1/spend?scope=key:a%00", "scope"),
    ):
        _refused(await client.get(path), param)
    _refused(await client.get(f"/api/v1/audit?before_id={2**31}"), "before_id")


@pytest.mark.parametrize(
    "moment",
    ["0001-01-01T00:00:00%2B23:59", "9999-12-31T23:59:59-23:59", "1969-12-31T23:59:59Z", "1e9"],
)
async def test_date_times_are_iso_text_within_range(
    gw: tuple[SluiceApp, httpx.AsyncClient], moment: str
) -> None:
    _, client = gw
    for path, param in (
        (f"/api/v1/analytics/summary?to={moment}", "to"),
        (f"/api/v1/analytics/series?from={moment}", "from"),
        (f"/api/v1/analytics/requests?to={moment}", "to"),
        (f"/api/v1/alerts?since={moment}", "since"),
    ):
        _refused(await client.get(path), param)
