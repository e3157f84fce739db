"""Everyday admin in the console, in a real browser: edit a key, a user's budget, archive a
team, the alerts page, the audit log's names, filters and paging, the favicon; each with
the role check that keeps it to those allowed."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.ui.conftest import UiWorld, _password, sign_in

pytestmark = pytest.mark.ui

CHAT = [{"role": "user", "content": "hello"}]


def _client(ui_world: UiWorld, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{ui_world.url}/v1", api_key=key, max_retries=0, timeout=20)


def _post(page: Any, path: str, form: dict[str, str] | None = None) -> Any:
    """A console POST with this session's CSRF token (what a forged form could not send)."""
    token = page.get_attribute('meta[name="csrf-token"]', "content")
    return page.request.post(path, form={**(form or {}), "csrf_token": token}, max_redirects=0)


def _person(ui_world: UiWorld, name: str, team: str) -> dict[str, Any]:
    user = ui_world.api(
        "POST", "/users", {"email": f"{name}@example.org", "name": name, "team_id": team}
    )
    _password(ui_world.gateway.env, "set-password", f"{name}@example.org")
    return user  # type: ignore[no-any-return]


def test_edit_a_key_and_a_member_cannot_edit_another_s_key(context: Any, ui_world: UiWorld) -> None:
    key = ui_world.api("POST", "/keys", {"name": "notebook", "user_id": ui_world.ids["ua"]})
    page = context.new_page()
    sign_in(page, "ua@example.org")
    page.locator("tr", has_text="notebook").locator('a:has-text("Edit")').click()
    page.wait_for_url(f"**/ui/keys/{key['id']}/edit")
    page.fill('input[name="name"]', "notebook-2")
    page.fill('input[name="expires_on"]', "2099-01-31")
    page.fill('input[name="models"]', "m-chat")
    page.fill('input[name="budget.usd"]', "3")
    page.click('button:has-text("Save key")')
    page.wait_for_selector("text=The key was saved.")
    row = page.locator("tr", has_text="notebook-2")
    assert "2099-01-31" in row.inner_text()
    stored = ui_world.api("GET", f"/keys/{key['id']}")
    assert stored["models"] == ["m-chat"] and stored["budget"]["usd"] == 3
    # The key now serves m-chat only.
    client = _client(ui_world, key["key"])
    assert client.chat.completions.create(model="m-chat", messages=CHAT)  # type: ignore[arg-type]
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="m-nousage", messages=CHAT)  # type: ignore[arg-type]
    assert refused.value.status_code in (403, 404)
    client.close()
    # A bad date is named next to its field; the other values stay typed.
    page.goto(f"/ui/keys/{key['id']}/edit")
    page.fill('input[name="expires_on"]', "2000-01-01")
    page.click('button:has-text("Save key")')
    assert page.locator(".field.invalid", has_text="Expires on").count() == 1
    assert page.input_value('input[name="name"]') == "notebook-2"

    other = context.browser.new_context(base_url=ui_world.url)
    try:
        page_b = other.new_page()
        sign_in(page_b, "ub@example.org")
        resp = page_b.goto(f"/ui/keys/{key['id']}/edit")
        assert resp.status == 404
        assert _post(page_b, f"/ui/keys/{key['id']}/edit", {"name": "stolen"}).status == 404
    finally:
        other.close()
    assert ui_world.api("GET", f"/keys/{key['id']}")["name"] == "notebook-2"


def test_archive_a_team_and_its_keys_get_401(context: Any, ui_world: UiWorld) -> None:
    team = ui_world.api("POST", f"/orgs/{ui_world.ids['acme']}/teams", {"name": "temp"})
    user = _person(ui_world, "tz", team["id"])
    key = ui_world.api("POST", "/keys", {"name": "tz-key", "user_id": user["id"]})
    client = _client(ui_world, key["key"])
    assert client.chat.completions.create(model="m-chat", messages=CHAT)  # type: ignore[arg-type]

    # A team admin of another team does not see it; its own team admin may not archive it.
    page = context.new_page()
    sign_in(page, "ta@example.org")
    assert _post(page, f"/ui/team/{team['id']}/archive").status == 404
    boss = _person(ui_world, "tboss", team["id"])
    ui_world.api("PUT", f"/teams/{team['id']}/members/{boss['id']}", {"role": "team_admin"})
    own = context.browser.new_context(base_url=ui_world.url)
    try:
        page_t = own.new_page()
        sign_in(page_t, "tboss@example.org")
        assert _post(page_t, f"/ui/team/{team['id']}/archive").status == 403
    finally:
        own.close()
    assert ui_world.api("GET", f"/teams/{team['id']}")["archived_at"] is None

    admin = context.browser.new_context(base_url=ui_world.url)
    try:
        page_a = admin.new_page()
        sign_in(page_a, "root@example.org")
        page_a.goto(f"/ui/org/{ui_world.ids['acme']}")
        page_a.on("dialog", lambda dialog: dialog.accept())
        page_a.locator("#teams tr", has_text="temp").locator('button:has-text("Archive")').click()
        page_a.wait_for_selector("text=The team was archived and its keys revoked.")
        assert page_a.locator("#teams tr", has_text="temp").count() == 0
    finally:
        admin.close()
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="m-chat", messages=CHAT)  # type: ignore[arg-type]
    client.close()


def test_a_per_user_budget_set_in_the_console_refuses_a_request_over_it(
    context: Any, ui_world: UiWorld
) -> None:
    user = _person(ui_world, "bz", ui_world.ids["research"])
    key = ui_world.api("POST", "/keys", {"name": "bz-key", "user_id": user["id"]})
    client = _client(ui_world, key["key"])
    client.chat.completions.create(model="m-chat", messages=CHAT)  # type: ignore[arg-type]
    # A member cannot open, let alone change, another person's limits.
    member = context.new_page()
    sign_in(member, "ua@example.org")
    assert member.goto(f"/ui/users/{user['id']}").status == 404
    assert _post(member, f"/ui/users/{user['id']}", {"budget.usd": "100"}).status == 404

    admin = context.browser.new_context(base_url=ui_world.url)
    try:
        page = admin.new_page()
        sign_in(page, "root@example.org")
        page.goto("/ui/admin/users")
        page.locator("tr", has_text="bz@example.org").locator('a:has-text("Limits")').click()
        page.wait_for_url(f"**/ui/users/{user['id']}")
        # The e2e models are free: a budget of 0 is one every request is over.
        page.fill('input[name="budget.usd"]', "0")
        page.select_option('select[name="budget.period"]', "day")
        page.click('button:has-text("Save")')
        page.wait_for_selector("text=The user's limits were saved.")
        assert page.input_value('input[name="budget.usd"]') in ("0", "0.0")
    finally:
        admin.close()
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="m-chat", messages=CHAT)  # type: ignore[arg-type]
    assert "budget" in str(refused.value)
    client.close()


def test_alerts_page_sends_a_test_alert_admins_only(context: Any, ui_world: UiWorld) -> None:
    page = context.new_page()
    sign_in(page, "ua@example.org")
    page.goto("/ui/alerts")
    assert page.locator('form[action="/ui/alerts/test"]').count() == 0
    assert _post(page, "/ui/alerts/test").status == 403

    admin = context.browser.new_context(base_url=ui_world.url)
    try:
        page_a = admin.new_page()
        sign_in(page_a, "root@example.org")
        page_a.click('nav a:has-text("Alerts")')
        page_a.wait_for_url("**/ui/alerts")
        page_a.click('form[action="/ui/alerts/test"] button')
        page_a.wait_for_selector("text=A test alert was recorded and sent")
        row = page_a.locator("tbody tr").first
        assert "test" in row.inner_text() and "no webhook" in row.inner_text()
    finally:
        admin.close()


def test_audit_log_shows_names_filters_and_pages(context: Any, ui_world: UiWorld) -> None:
    user = ui_world.api(
        "POST",
        "/users",
        {"email": "audited@example.org", "name": "a0", "team_id": ui_world.ids["ops"]},
    )
    for i in range(1, 56):
        ui_world.api("PATCH", f"/users/{user['id']}", {"name": f"a{i}"})
    page = context.new_page()
    sign_in(page, "ua@example.org")
    assert page.goto("/ui/admin/audit").status == 403

    admin = context.browser.new_context(base_url=ui_world.url)
    try:
        page_a = admin.new_page()
        sign_in(page_a, "root@example.org")
        page_a.goto("/ui/admin/audit")
        page_a.fill('input[name="target"]', "audited@example.org")
        page_a.fill('input[name="action"]', "user.update")
        page_a.click('button:has-text("Filter")')
        page_a.wait_for_url("**/ui/admin/audit?*")
        rows = page_a.locator("table.audit tbody tr")
        assert rows.count() == 50
        # Names, not ids: the target is shown by its email.
        assert "audited@example.org" in rows.first.inner_text()
        assert user["id"] not in rows.first.inner_text()
        page_a.click('a:has-text("Older entries")')
        page_a.wait_for_url("**before_id=*")
        assert page_a.locator("table.audit tbody tr").count() == 5
        assert page_a.input_value('input[name="target"]') == "audited@example.org"
        # A filter error keeps every filter, the date range included.
        page_a.goto("/ui/admin/audit?from=2026-12-05&to=2026-12-01&action=user.")
        assert page_a.locator(".field.invalid", has_text="From").count() == 1
        assert page_a.input_value('input[name="from"]') == "2026-12-05"
        assert page_a.input_value('input[name="to"]') == "2026-12-01"
        assert page_a.input_value('input[name="action"]') == "user."
    finally:
        admin.close()


def test_favicon_is_served(ui_world: UiWorld) -> None:
    resp = httpx.get(f"{ui_world.url}/favicon.ico", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/x-icon"
    assert resp.content[:4] == b"\x00\x00\x01\x00"
