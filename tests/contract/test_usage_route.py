"""``GET /v1/usage``'s limit list over the memory and Redis limiters: in-flight slots held
by requests (here or on another replica) and per-model limits, each with what remains."""

from __future__ import annotations

from typing import Any

from sluice.analytics.model import LogQuery, RollupQuery, RollupRow, Visibility
from sluice.api.usage import UsageRoute
from sluice.auth.principal import Principal
from sluice.limits import LimitSpec
from sluice.usage.event import UsageEvent
from tests.contract.test_limits import Harness, limits, reserve

__all__ = ["limits"]


class NoRollups:
    async def rollups(self, query: RollupQuery) -> list[RollupRow]:
        return []

    async def log(self, query: LogQuery) -> list[UsageEvent]:
        return []

    async def event(self, request_id: str, visibility: Visibility) -> UsageEvent | None:
        return None


class NoBudgets:
    """The principal below has no budget: any call here is a failure."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"budget store used: {name}")


PRINCIPAL = Principal(
    key_id="key_x",
    name="k",
    team_id="t1",
    limit_checks=(
        ("key:key_x", LimitSpec(rpm=10, max_parallel=2)),
        ("team:t1", LimitSpec(max_parallel=5)),
    ),
    model_limits={
        "gpt-b": (("team:t1:model:gpt-b", LimitSpec(tpm_input=1000, max_parallel=1)),),
        "gpt-a": (("key:key_x:model:gpt-a", LimitSpec(rpm=3)),),
    },
)


def _route(h: Harness, limiter: Any) -> UsageRoute:
    return UsageRoute(
        lambda scope: (PRINCIPAL, 0),
        limiter=limiter,
        budgets=NoBudgets(),  # type: ignore[arg-type]
        store=NoRollups(),
        clock=h.clock,
    )


def _table(body: dict[str, Any]) -> dict[tuple[str, str | None, str], dict[str, Any]]:
    return {(lim["scope"], lim["model"], lim["name"]): lim for lim in body["limits"]}


async def test_limits_report_in_flight_slots_and_per_model_limits(limits: Harness) -> None:
    idle = _table(await _route(limits, limits.limiter).report(PRINCIPAL, "month"))
    assert list(idle) == [
        ("key:key_x", None, "rpm"),
        ("key:key_x", None, "max_parallel"),
        ("team:t1", None, "max_parallel"),
        ("key:key_x:model:gpt-a", "gpt-a", "rpm"),
        ("team:t1:model:gpt-b", "gpt-b", "tpm_input"),
        ("team:t1:model:gpt-b", "gpt-b", "max_parallel"),
    ]
    slot = idle[("key:key_x", None, "max_parallel")]
    assert slot == {
        "scope": "key:key_x",
        "level": "key",
        "model": None,
        "name": "max_parallel",
        "limit": 2,
        "remaining": 2,
        "reset_ms": None,
        "in_flight": 0,
    }
    assert idle[("key:key_x:model:gpt-a", "gpt-a", "rpm")]["remaining"] == 3

    # Two requests in flight (one for gpt-b, reserved as the pipeline does: key, team, model).
    held = [
        await reserve(limits.limiter, PRINCIPAL.checks_for("gpt-b"), inp=300),
        await reserve(limits.limiter, PRINCIPAL.limit_checks),
    ]
    replica = await limits.make_replica()
    busy = _table(await _route(limits, replica).report(PRINCIPAL, "month"))
    assert busy[("key:key_x", None, "max_parallel")]["remaining"] == 0
    assert busy[("key:key_x", None, "max_parallel")]["in_flight"] == 2
    assert busy[("team:t1", None, "max_parallel")]["remaining"] == 3
    assert busy[("team:t1:model:gpt-b", "gpt-b", "max_parallel")]["remaining"] == 0
    assert busy[("team:t1:model:gpt-b", "gpt-b", "tpm_input")]["remaining"] == 700
    assert busy[("key:key_x", None, "rpm")]["remaining"] == 8
    assert busy[("key:key_x:model:gpt-a", "gpt-a", "rpm")]["remaining"] == 3

    for r in held:
        await limits.limiter.settle(r, input_tokens=100, output_tokens=0)
    done = _table(await _route(limits, limits.limiter).report(PRINCIPAL, "month"))
    assert done[("key:key_x", None, "max_parallel")]["remaining"] == 2
    assert done[("team:t1:model:gpt-b", "gpt-b", "max_parallel")]["remaining"] == 1
    assert done[("team:t1:model:gpt-b", "gpt-b", "tpm_input")]["remaining"] == 900
