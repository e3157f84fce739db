"""The console in a real browser: sign in, keys end to end with the OpenAI SDK, a team
limit that turns into a 429, role visibility, CSRF rejection, the playground."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from playwright.sync_api import expect

from tests.ui.conftest import UiWorld, sign_in

pytestmark = pytest.mark.ui

CHAT = [{"role": "user", "content": "hello"}]


def test_sign_in_create_copy_use_and_revoke_a_key(context: Any, ui_world: UiWorld) -> None:
    page = context.new_page()
    sign_in(page, "ua@example.org")
    page.fill('input[name="name"]', "laptop")
    page.click('button:has-text("Create key")')
    secret = page.input_value("#new-secret")
    assert secret.startswith("sk-slc-")
    page.click('button[data-copy="#new-secret"]')
    page.wait_for_selector('button[data-copy="#new-secret"]:has-text("Copied")')
    assert page.evaluate("navigator.clipboard.readText()") == secret

    client = openai.OpenAI(base_url=f"{ui_world.url}/v1", api_key=secret, max_retries=0, timeout=20)
    answer = client.chat.completions.create(model="m-chat", messages=CHAT)  # type: ignore[arg-type]
    assert answer.choices[0].message.content

    page.goto("/ui/keys")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("tr", has_text="laptop").locator('button:has-text("Revoke")').click()
    page.wait_for_selector("text=The key was revoked.")
    assert page.locator("tr", has_text="laptop").locator(".badge").inner_text() == "revoked"
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="m-chat", messages=CHAT)  # type: ignore[arg-type]


def test_team_admin_sets_an_rpm_limit_and_the_second_request_gets_429(
    context: Any, ui_world: UiWorld
) -> None:
    key = ui_world.api("POST", "/keys", {"name": "ops-key", "user_id": ui_world.ids["ta"]})
    page = context.new_page()
    sign_in(page, "ta@example.org")
    page.click('nav a:has-text("Team")')
    page.wait_for_url(f"**/ui/team/{ui_world.ids['ops']}")
    page.fill('input[name="limits.rpm"]', "1")
    page.click('button:has-text("Save limits")')
    page.wait_for_selector("text=Limits and model access were saved.")
    assert page.input_value('input[name="limits.rpm"]') == "1"

    client = openai.OpenAI(
        base_url=f"{ui_world.url}/v1", api_key=key["key"], max_retries=0, timeout=20
    )
    client.chat.completions.create(model="m-chat", messages=CHAT)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="m-chat", messages=CHAT)  # type: ignore[arg-type]

    page.fill('input[name="limits.rpm"]', "")
    page.click('button:has-text("Save limits")')
    page.wait_for_selector("text=Limits and model access were saved.")


def test_a_member_never_sees_admin_links_or_other_teams(context: Any, ui_world: UiWorld) -> None:
    page = context.new_page()
    sign_in(page, "ua@example.org")
    nav = page.locator("nav.nav").inner_text()
    assert "Keys" in nav and "Playground" in nav
    for hidden in ("Admin", "Team", "Organisation"):
        assert hidden not in nav
    assert page.goto("/ui/admin").status == 403
    assert "only admins" in page.inner_text("main")
    assert page.goto(f"/ui/team/{ui_world.ids['ops']}").status == 404
    assert page.goto(f"/ui/team/{ui_world.ids['globex_team']}").status == 404
    assert page.goto(f"/ui/org/{ui_world.ids['acme']}").status == 403
    assert page.goto("/ui/admin/models.json").status == 403


def test_admin_sees_live_health_and_masked_settings(context: Any, ui_world: UiWorld) -> None:
    page = context.new_page()
    sign_in(page, "root@example.org")
    page.click('nav a:has-text("Admin")')
    page.click('.subnav a:has-text("Health")')
    assert page.locator("tr[data-deployment]").count() > 0
    page.click('.subnav a:has-text("Settings")')
    assert ui_world.gateway.master_key not in page.content()


def test_posts_without_or_with_a_wrong_csrf_token_are_refused(
    context: Any, ui_world: UiWorld
) -> None:
    page = context.new_page()
    sign_in(page, "ua@example.org")
    missing = page.request.post("/ui/keys", form={"name": "forged"})
    wrong = page.request.post("/ui/keys", form={"name": "forged", "csrf_token": "nope"})
    for resp in (missing, wrong):
        assert resp.status == 403 and "CSRF" in resp.text()
    page.goto("/ui/keys")
    assert "forged" not in page.inner_text("main")
    page.evaluate(
        "document.querySelector('form[action=\"/ui/keys\"] [name=csrf_token]').value = 'x'"
    )
    page.fill('input[name="name"]', "tampered")
    page.click('button:has-text("Create key")')
    assert "Form rejected" in page.inner_text("main")


def test_playground_streams_with_latency_and_request_id(context: Any, ui_world: UiWorld) -> None:
    key = ui_world.api("POST", "/keys", {"name": "play", "user_id": ui_world.ids["ua"]})
    page = context.new_page()
    sign_in(page, "ua@example.org")
    page.click('nav a:has-text("Playground")')
    page.select_option("#pg-model", "m-chat")
    page.fill("#pg-key", key["key"])
    page.fill("#pg-message", "Say hello")
    page.click("#pg-send")
    expect(page.locator('[data-stat="latency"]')).not_to_have_text("—", timeout=15_000)
    assert page.inner_text("#pg-output").strip()
    assert page.inner_text('[data-stat="ttft"]').endswith("ms")
    assert page.inner_text('[data-stat="request_id"]') != "—"
    stored = page.evaluate("() => JSON.stringify(Object.entries(sessionStorage))")
    assert key["key"] in stored and "sluice-secret:" in stored
