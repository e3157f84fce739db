"""``GET /api/v1/analytics/mcp``: MCP tool calls per server and tool, scoped like the other
analytics; MCP rows leave the model analytics as they were."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluice.usage.event import MCP_TOOL, UsageEvent
from tests.integration.test_tenancy import World, build_world

A = "/api/v1/analytics"


def _row(w: World, rid: str, who: str, tool: str, **fields: object) -> UsageEvent:
    team = "teamA" if who != "ub" else "teamB"
    org = "orgA" if who != "ub" else "orgB"
    assert w.app.runtime is not None
    e = UsageEvent(
        rid,
        w.app.runtime.clock.now(),
        MCP_TOOL,
        w.ids[f"{who}_key"],
        None,
        latency_ms=40.0,
        user_id=w.ids[who],
        team_id=w.ids[team],
        org_id=w.ids[org],
        mcp_server="everything",
        mcp_tool=tool,
        bytes_in=10,
        bytes_out=20,
    )
    for name, value in fields.items():
        setattr(e, name, value)
    return e


async def _get(w: World, role: str, path: str, **params: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {w.tokens[role]}"}
    resp = await w.client.get(path, params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _calls(body: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int]]:
    return {(r["server"], r["tool"]): (r["calls"], r["errors"]) for r in body["data"]}


async def test_mcp_analytics_are_scoped_and_leave_model_analytics_alone(tmp_path: Path) -> None:
    async with build_world(tmp_path) as w:
        assert w.app.runtime is not None
        before = await _get(w, "admin", f"{A}/summary")
        for i, who in enumerate(("ua", "ua", "ta", "ub")):
            w.app.runtime.usage.record(_row(w, f"m{i}", who, "echo"))
        w.app.runtime.usage.record(_row(w, "m-err", "ua", "add", rpc_error=-32602))
        await w.app.runtime.usage.flush()

        everything = _calls(await _get(w, "admin", f"{A}/mcp"))
        assert everything == {("everything", "echo"): (4, 0), ("everything", "add"): (1, 1)}
        assert _calls(await _get(w, "ua", f"{A}/mcp")) == {
            ("everything", "echo"): (2, 0),
            ("everything", "add"): (1, 1),
        }
        assert _calls(await _get(w, "ta", f"{A}/mcp", scope=f"team:{w.ids['teamA']}")) == {
            ("everything", "echo"): (3, 0),
            ("everything", "add"): (1, 1),
        }
        assert _calls(await _get(w, "ub", f"{A}/mcp")) == {("everything", "echo"): (1, 0)}
        assert _calls(await _get(w, "admin", f"{A}/mcp", server="other")) == {}
        row = (await _get(w, "admin", f"{A}/mcp"))["data"][0]
        assert row["latency_ms_mean"] == 40.0 and row["latency_ms_p95"] is not None
        assert (row["bytes_in"], row["bytes_out"]) == (40, 80)

        # A team member who does not administer the team: 403, like the other analytics.
        resp = await w.client.get(
            f"{A}/mcp",
            params={"scope": f"team:{w.ids['teamA']}"},
            headers={"Authorization": f"Bearer {w.tokens['ua']}"},
        )
        assert resp.status_code == 403
        resp = await w.client.get(f"{A}/mcp", params={"server": "Bad Name"})
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "server"
        resp = await w.client.get(
            f"{A}/mcp", params={"from": datetime(2030, 1, 2, tzinfo=UTC).isoformat(), "to": "x"}
        )
        assert resp.status_code == 400

        # The model analytics did not count the tool calls.
        after = await _get(w, "admin", f"{A}/summary")
        assert after["requests"] == before["requests"]
        log = await _get(w, "ua", f"{A}/requests")
        tool_rows = [r for r in log["data"] if r["endpoint"] == MCP_TOOL]
        assert {r["mcp_tool"] for r in tool_rows} == {"echo", "add"}
        assert next(r for r in tool_rows if r["mcp_tool"] == "add")["rpc_error"] == -32602
