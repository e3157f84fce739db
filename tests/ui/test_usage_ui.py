"""Usage and Requests in a real browser: traffic through the OpenAI SDK, charts with the
values under the pointer, date ranges, the request log's model filter and a detail view,
and what another tenant's person cannot reach by typing URLs."""

from __future__ import annotations

import threading
import time
from typing import Any

import openai
import pytest

from tests.ui.conftest import UiWorld, sign_in

pytestmark = pytest.mark.ui

CHAT = [{"role": "user", "content": "hello"}]


def traffic(ui_world: UiWorld, who: str, count: int) -> list[str]:
    """``count`` chat requests with a new key of ``who``; their request ids, once the
    gateway has stored them (flushed every 0.1 s)."""
    key = ui_world.api("POST", "/keys", {"name": f"{who}-usage", "user_id": ui_world.ids[who]})
    client = openai.OpenAI(
        base_url=f"{ui_world.url}/v1", api_key=key["key"], max_retries=0, timeout=20
    )
    ids = []
    for _ in range(count):
        raw = client.chat.completions.with_raw_response.create(model="m-chat", messages=CHAT)  # type: ignore[arg-type]
        ids.append(raw.headers["x-request-id"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page = ui_world.api("GET", f"/analytics/requests?key_id={key['id']}&limit=100")
        if len(page["data"]) == count:
            return ids
        threading.Event().wait(0.1)
    raise AssertionError(f"{count} usage rows of {who} not stored in 20 s")


def test_usage_charts_after_traffic_hover_and_date_range(context: Any, ui_world: UiWorld) -> None:
    ids = traffic(ui_world, "ua", 3)
    page = context.new_page()
    sign_in(page, "ua@example.org")
    page.click('nav a:has-text("Usage")')
    page.wait_for_url("**/ui/usage")
    requests = int(page.locator(".stat:has-text('Requests') strong").inner_text().replace(",", ""))
    assert requests >= 3
    today = page.locator("#chart-requests g.point").last
    assert f"Requests {requests}" in (today.get_attribute("data-tip") or "")
    today.hover()
    tip = page.locator("#chart-requests .chart-tip")
    tip.wait_for(state="visible")
    assert f"Requests {requests}" in tip.inner_text()
    page.locator("#chart-tokens g.point").last.focus()  # keyboard reaches the points too
    assert "Input" in page.locator("#chart-tokens .chart-tip").inner_text()
    assert page.locator("#chart-models").count() == 1 and "m-chat" in page.inner_text("#models")

    page.click('a.preset:has-text("24h")')
    page.wait_for_url("**range=24h**")
    points = page.locator("#chart-requests g.point")
    assert points.count() in (24, 25) and "UTC" in (points.last.get_attribute("data-tip") or "")
    page.fill('input[name="from"]', "2020-01-01")
    page.fill('input[name="to"]', "2020-01-05")
    page.click('button:has-text("Show")')
    page.wait_for_url("**from=2020-01-01**")
    assert page.locator(".stat:has-text('Requests') strong").inner_text() == "0"
    page.fill('input[name="from"]', "2020-02-01")
    page.click('button:has-text("Show")')
    assert "from must be on or before to" in page.inner_text(".field.invalid")

    page.click('nav a:has-text("Requests")')
    page.fill('input[name="model"]', "m-chat")
    page.click('button:has-text("Show")')
    page.wait_for_url("**model=m-chat**")
    assert page.locator("table.log tbody tr").count() >= 3
    page.locator(f'a[href="/ui/requests/{ids[-1]}"]').click()
    page.wait_for_url(f"**/ui/requests/{ids[-1]}")
    main = page.inner_text("main")
    assert ids[-1] in main and "Attempts" in main and "m-chat" in main and "Latency" in main


def test_another_tenant_sees_none_of_it_even_by_url(context: Any, ui_world: UiWorld) -> None:
    theirs = traffic(ui_world, "ua", 1)[0]
    traffic(ui_world, "ub", 1)
    page = context.new_page()
    sign_in(page, "ub@example.org")
    page.goto("/ui/usage")
    options = page.locator('select[name="scope"] option').all_inner_texts()
    assert options == ["My usage"]
    assert "Admin" not in page.locator("nav.nav").inner_text()
    assert page.goto(f"/ui/requests/{theirs}").status == 404
    assert page.goto(f"/ui/usage?scope=team:{ui_world.ids['research']}").status == 404
    assert page.goto(f"/ui/usage?scope=org:{ui_world.ids['acme']}").status == 404
    assert page.goto("/ui/usage?scope=global").status == 403
    page.goto("/ui/requests")
    assert theirs not in page.content()
