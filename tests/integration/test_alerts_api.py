"""Alerts through the running gateway: who sees which alert in ``GET /api/v1/alerts``, the
filters, the test webhook, and a budget alert from real requests to a real receiver."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sluice.alerts import Alert, AlertQuery
from tests.alerts_support import webhook_receiver
from tests.integration.conftest import make_settings, running
from tests.integration.test_tenancy import World, build_world

CONFIG = """
providers:
  mock: {type: mock}
models:
  - name: mock-gpt
    deployments: [{provider: mock, model: "chat"}]
    prices: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}
alerts:
  check_interval_s: 3600
  webhooks: [{url: "RECEIVER", name: ops}]
"""
CHAT = {"model": "mock-gpt", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


async def _seed(w: World) -> dict[str, int]:
    """One alert per case, named by what it is about."""
    rt = w.app.runtime
    assert rt is not None
    ids = w.ids
    cases = {
        "orgA": Alert("budget", "1", "m", 1.0, scope=f"org:{ids['orgA']}", org_id=ids["orgA"]),
        "teamA": Alert(
            "budget", "2", "m", 2.0, scope=f"team:{ids['teamA']}", org_id=ids["orgA"],
            team_id=ids["teamA"],
        ),
        "ua": Alert(
            "budget", "3", "m", 3.0, scope=f"user:{ids['ua']}", org_id=ids["orgA"],
            team_id=ids["teamA"], user_id=ids["ua"],
        ),
        "ta": Alert(
            "budget", "4", "m", 4.0, scope=f"user:{ids['ta']}", org_id=ids["orgA"],
            team_id=ids["teamA"], user_id=ids["ta"],
        ),
        "sa": Alert(
            "budget", "5", "m", 5.0, scope=f"key:{ids['sa_key']}", org_id=ids["orgA"],
            team_id=ids["teamA"],
        ),
        "teamB": Alert(
            "budget", "6", "m", 6.0, scope=f"team:{ids['teamB']}", org_id=ids["orgB"],
            team_id=ids["teamB"],
        ),
        "ub": Alert(
            "budget", "7", "m", 7.0, scope=f"user:{ids['ub']}", org_id=ids["orgB"],
            team_id=ids["teamB"], user_id=ids["ub"],
        ),
        "breaker": Alert("breaker_open", "8", "m", 8.0, deployment="mock/chat"),
    }  # fmt: skip
    out = {}
    for name, alert in cases.items():
        stored = await rt.storage.alerts.insert_if_absent(alert)
        assert stored is not None and stored.id is not None
        out[name] = stored.id
    return out


async def test_each_role_sees_the_alerts_it_may(tmp_path: Path) -> None:
    async with build_world(tmp_path) as w:
        ids = await _seed(w)
        names = {v: k for k, v in ids.items()}
        expected = {
            "admin": set(ids),
            "oa": {"orgA", "teamA", "ua", "ta", "sa"},
            "ta": {"orgA", "teamA", "ua", "ta", "sa"},
            "ua": {"orgA", "teamA", "ua"},
            "ub": {"teamB", "ub"},
        }
        for role, want in expected.items():
            resp = await w.call(role, "GET", "/api/v1/alerts")
            assert resp.status_code == 200, resp.text
            assert {names[a["id"]] for a in resp.json()["data"]} == want, role
        breakers = await w.call("ua", "GET", "/api/v1/alerts?kind=breaker_open")
        assert breakers.json()["data"] == []
        team = await w.call("ua", "GET", "/api/v1/alerts?scope=team:{teamA}")
        assert [names[a["id"]] for a in team.json()["data"]] == ["teamA"]
        other = await w.call("ua", "GET", "/api/v1/alerts?scope=team:{teamB}")
        assert other.json()["data"] == []
        since = await w.call("admin", "GET", "/api/v1/alerts?since=1970-01-01T00:00:06.5")
        assert {names[a["id"]] for a in since.json()["data"]} == {"ub", "breaker"}
        first = (await w.call("admin", "GET", "/api/v1/alerts?limit=3")).json()
        assert [names[a["id"]] for a in first["data"]] == ["breaker", "ub", "teamB"]
        rest = await w.call("admin", "GET", f"/api/v1/alerts?before_id={first['next_before_id']}")
        assert len(rest.json()["data"]) == 5 and rest.json()["next_before_id"] is None
        for query, param in (("kind=nope", "kind"), ("since=yesterday", "since")):
            bad = await w.call("admin", "GET", f"/api/v1/alerts?{query}")
            assert bad.status_code == 400 and bad.json()["error"]["param"] == param


async def _settled(app: object, alert_id: int) -> Alert:
    """The alert once its delivery is recorded (delivery runs in the background too)."""
    rt = app.runtime  # type: ignore[attr-defined]
    async with asyncio.timeout(10):
        while True:
            [alert] = [a for a in await rt.storage.alerts.list(AlertQuery()) if a.id == alert_id]
            if alert.delivery != "pending":
                return alert
            await asyncio.sleep(0.01)


async def test_requests_crossing_a_budget_threshold_alert_the_webhook(tmp_path: Path) -> None:
    async with (
        webhook_receiver() as receiver,
        running(make_settings(tmp_path), CONFIG.replace("RECEIVER", receiver.url)) as (
            app,
            client,
        ),
    ):
        rt, control = app.runtime, app.control
        assert rt is not None and control is not None
        probe = (await client.post("/api/v1/keys", json={"name": "probe"})).json()
        first = await client.post(
            "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {probe['key']}"}
        )
        assert first.status_code == 200
        await rt.usage.flush()
        [row] = await rt.storage.usage.recent()
        cost = row.cost_micros
        assert cost is not None and cost > 0
        made = await client.post(
            "/api/v1/keys", json={"name": "capped", "budget": {"usd": 2 * cost / 1e6}}
        )
        capped = made.json()
        auth = {"Authorization": f"Bearer {capped['key']}"}
        assert (await client.post("/v1/chat/completions", json=CHAT, headers=auth)).is_success
        [fired] = await control.alerts.check_budgets()
        assert fired.id is not None
        assert (fired.scope, fired.threshold_pct) == (f"key:{capped['id']}", 50)
        assert (await _settled(app, fired.id)).delivery == "sent"
        assert receiver.bodies[0]["sluice"]["scope"] == f"key:{capped['id']}"
        listed = (await client.get("/api/v1/alerts?kind=budget")).json()["data"]
        assert [(a["id"], a["delivery"], a["threshold_pct"]) for a in listed] == [
            (fired.id, "sent", 50)
        ]
        assert await control.alerts.check_budgets() == []

        sent = await client.post("/api/v1/alerts/test")
        assert sent.status_code == 200, sent.text
        assert (sent.json()["kind"], sent.json()["delivery"]) == ("test", "sent")
        assert receiver.bodies[-1]["text"].startswith("[Sluice] test alert")


async def test_the_test_alert_without_webhooks_is_recorded(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as (_, client):
        sent = await client.post("/api/v1/alerts/test")
        assert sent.status_code == 200
        assert (sent.json()["delivery"], sent.json()["attempts"]) == ("no_webhook", 0)
        missing = await client.post("/api/v1/alerts/test?webhook=ops")
        assert missing.status_code == 404 and missing.json()["error"]["param"] == "webhook"
        listed = await client.get("/api/v1/alerts", headers={"Authorization": "Bearer x"})
        assert listed.status_code == 401
