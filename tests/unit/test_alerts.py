"""Alert pieces without a database: the Slack payload, the config section, webhook delivery
edge cases against a real loopback receiver, budget owners from principals."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from sluice.alerts import Alert, owners_of
from sluice.alerts.payload import slack_payload
from sluice.alerts.webhook import WebhookSender
from sluice.budgets.spec import BudgetSpec
from sluice.clock import FakeClock
from sluice.config import ConfigError
from sluice.config.alerts import AlertsConfig, WebhookConfig
from sluice.config.loader import parse_config
from sluice.config.secrets import SecretRef
from tests.alerts_support import Receiver, principal_with, webhook_receiver

BUDGET_ALERT = Alert(
    kind="budget",
    dedupe_key="budget:team:t1:day:0:80",
    message="team:t1 reached 80% of its daily budget: $8.00 of $10.00 spent <&>",
    created_at=1_773_100_800.0,
    scope="team:t1",
    team_id="t1",
    period="day",
    period_start=1_773_100_800,
    threshold_pct=80,
    limit_micros=10_000_000,
    spent_micros=8_000_000,
    id=7,
)


def test_slack_payload_has_plain_text_blocks_and_structured_fields() -> None:
    body = slack_payload(BUDGET_ALERT)
    assert orjson.loads(orjson.dumps(body)) == body  # plain JSON
    assert body["text"] == f"[Sluice] {BUDGET_ALERT.message}"
    header, section, facts, context = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Budget threshold reached"},
    }
    assert section["text"]["type"] == "mrkdwn"
    assert section["text"]["text"].endswith("spent &lt;&amp;&gt;")
    assert {"type": "mrkdwn", "text": "*Threshold*\n80%"} in facts["fields"]
    assert context["type"] == "context" and "Sluice alert 7" in context["elements"][0]["text"]
    assert body["sluice"] == {
        "id": 7,
        "kind": "budget",
        "created_at": "2026-03-10T00:00:00Z",
        "scope": "team:t1",
        "org_id": None,
        "team_id": "t1",
        "user_id": None,
        "deployment": None,
        "period": "day",
        "period_start": "2026-03-10T00:00:00Z",
        "threshold_pct": 80,
        "limit_usd": 10.0,
        "spent_usd": 8.0,
        "details": {},
    }


def test_breaker_payload_names_the_deployment() -> None:
    alert = Alert("breaker_open", "k", "opened", 0.0, deployment="mock/chat", id=1)
    body = slack_payload(alert)
    assert body["text"] == "[Sluice] opened"
    assert body["blocks"][0]["text"]["text"] == "Circuit breaker opened"
    assert {"type": "mrkdwn", "text": "*Deployment*\nmock/chat"} in body["blocks"][2]["fields"]


def test_alerts_config_defaults_and_validation() -> None:
    config = parse_config("providers: {}\n", source="a.yaml")
    assert config.alerts.budget_thresholds_pct == (50, 80, 100)
    assert config.alerts.webhooks == () and config.alerts.check_interval_s == 15
    text = """
alerts:
  budget_thresholds_pct: [90, 25]
  check_interval_s: 30
  webhooks:
    - {url: env:SLACK_WEBHOOK_URL, events: [budget]}
    - {url: "https://hooks.example.org/x", name: pager, timeout_s: 2}
"""
    alerts = parse_config(text, source="a.yaml").alerts
    assert alerts.budget_thresholds_pct == (25, 90)
    assert alerts.webhook_names() == ["webhook-1", "pager"]
    assert alerts.webhooks[0].url == SecretRef("env:SLACK_WEBHOOK_URL")
    assert "hooks.example.org" not in repr(alerts)
    for bad, where in (
        ("alerts: {budget_thresholds_pct: [0]}", "alerts.budget_thresholds_pct[0]"),
        ("alerts: {budget_thresholds_pct: [50, 50]}", "alerts.budget_thresholds_pct"),
        ("alerts: {webhooks: [{url: ftp://x}]}", "alerts.webhooks[0].url"),
        ("alerts: {webhooks: [{url: env:X, events: [nope]}]}", "alerts.webhooks[0].events[0]"),
        ("alerts: {webhooks: [{url: env:X, retry: 2}]}", "alerts.webhooks[0].retry"),
        ("alerts: {check_interval_s: 0}", "alerts.check_interval_s"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_config(bad, source="a.yaml")
        assert where in str(caught.value), str(caught.value)
    with pytest.raises(ValueError, match="already used"):
        AlertsConfig.model_validate(
            {"webhooks": [{"url": "env:A", "name": "x"}, {"url": "env:B", "name": "x"}]}
        )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as r:
        yield r


def _hook(url: str, **extra: object) -> WebhookConfig:
    return WebhookConfig.model_validate({"url": url, **extra})


async def test_a_4xx_answer_is_final(receiver: Receiver) -> None:
    receiver.statuses = [404]
    waits = FakeClock()
    async with aiohttp.ClientSession() as session:
        sender = WebhookSender(session, [("ops", _hook(receiver.url))], sleep=waits.sleep)
        result = await sender.deliver(BUDGET_ALERT)
    assert (result.delivery, result.attempts, result.last_error) == ("failed", 1, "ops: HTTP 404")
    assert waits.sleeps == [] and receiver.hits == 1


async def test_an_unreachable_webhook_is_named_without_its_url() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        sender = WebhookSender(
            session,
            [("ops", _hook(f"http://127.0.0.1:{port}/secret-path", retries=1))],
            sleep=FakeClock().sleep,
        )
        result = await sender.deliver(BUDGET_ALERT)
    assert result.delivery == "failed" and result.attempts == 2
    assert result.last_error == f"ops: could not connect to 127.0.0.1:{port}"


async def test_an_unset_env_url_is_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLUICE_TEST_UNSET_HOOK", raising=False)
    async with aiohttp.ClientSession() as session:
        sender = WebhookSender(session, [("ops", _hook("env:SLUICE_TEST_UNSET_HOOK"))])
        result = await sender.deliver(BUDGET_ALERT)
    assert result.last_error == "ops: environment variable SLUICE_TEST_UNSET_HOOK is not set"


async def test_webhooks_get_only_the_events_they_subscribe_to(receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as session:
        sender = WebhookSender(
            session,
            [
                ("budgets", _hook(receiver.url, events=["budget"])),
                ("breakers", _hook(receiver.url, events=["breaker"])),
            ],
        )
        breaker = Alert("breaker_open", "k", "opened", 0.0, deployment="d", id=2)
        assert (await sender.deliver(breaker)).webhooks == ("breakers",)
        assert (await sender.deliver(BUDGET_ALERT)).webhooks == ("budgets",)
        test = Alert("test", "t", "test", 0.0, id=3)
        assert (await sender.deliver(test)).webhooks == ("budgets", "breakers")
        assert (await sender.deliver(test, only="breakers")).webhooks == ("breakers",)
    assert len(receiver.bodies) == 5


def test_budget_owners_carry_where_each_scope_sits() -> None:
    spec = BudgetSpec(usd=5)
    principal = principal_with(
        ("key:k1", spec),
        ("user:u1", spec),
        ("team:t1", spec),
        ("org:o1", spec),
        user_id="u1",
        team_id="t1",
        org_id="o1",
    )
    second_key = principal_with(("user:u1", spec), key_id="k2", user_id="u1")
    owners = {o.scope: (o.org_id, o.team_id, o.user_id) for o in owners_of([principal, second_key])}
    assert owners == {
        "key:k1": ("o1", "t1", "u1"),
        "user:u1": ("o1", "t1", "u1"),
        "team:t1": ("o1", "t1", None),
        "org:o1": ("o1", None, None),
    }
