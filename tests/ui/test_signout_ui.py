"""Secrets the console keeps in the browser go with the session (issue #12, point 8): after
sign-out or session expiry the next person on the tab finds nothing of the first.

Each mechanism is also tested alone: Clear-Site-Data without the page scripts, the page
scripts without Clear-Site-Data, the other-tab nudge, the playground's check before it
spends a key."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.support import db
from tests.ui.conftest import PASSWORD, UiWorld, sign_in

pytestmark = pytest.mark.ui

SIGN_IN = re.compile(r".*/ui/login(\?.*)?$")
# Function form: the console's CSP refuses string eval inside the page.
STORAGE = "() => JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage)])"


def storage_of(page: Any) -> str:
    dumped: str = page.evaluate(STORAGE)
    return dumped


def secrets_in(page: Any) -> list[list[str]]:
    """Every storage entry the console's secret code owns (or owned, before scoping)."""
    session, local = json.loads(storage_of(page))
    return [e for e in session + local if e[0].startswith(("sluice-secret:", "sluice-playground"))]


def create_key_and_use_it(page: Any, name: str) -> str:
    page.goto("/ui/keys")
    page.fill('input[name="name"]', name)
    page.click('button:has-text("Create key")')
    secret: str = page.input_value("#new-secret")
    assert secret.startswith("sk-slc-")
    page.click('button:has-text("Use in playground")')
    page.wait_for_url("**/ui/playground")
    assert page.input_value("#pg-key") == secret
    assert secret in storage_of(page)
    return secret


def end_sessions_on_the_server(ui_world: UiWorld, user: str) -> None:
    with db(ui_world.gateway.db_path) as conn:
        conn.execute("DELETE FROM console_sessions WHERE user_id = ?", (ui_world.ids[user],))
        conn.commit()


def api_switch_user(page: Any, email: str) -> None:
    """Sign out and in again through the context's request client (it shares the tab's
    cookies but not its storage): the cookie changes, no page loads, no Clear-Site-Data."""
    csrf = page.get_attribute('meta[name="csrf-token"]', "content")
    out = page.request.post("/ui/logout", form={"csrf_token": csrf}, max_redirects=0)
    assert out.status == 303
    form = page.request.get("/ui/login").text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    done = page.request.post(
        "/ui/login",
        form={"csrf_token": token.group(1), "email": email, "password": PASSWORD},
        max_redirects=0,
    )
    assert done.status == 303


def test_sign_out_then_someone_else_signs_in_and_finds_nothing(
    context: Any, ui_world: UiWorld
) -> None:
    page = context.new_page()
    sign_in(page, "ua@example.org")
    secret = create_key_and_use_it(page, "shared-tab")
    page.click('button:has-text("Sign out")')
    page.wait_for_url(SIGN_IN)
    assert secrets_in(page) == [] and secret not in storage_of(page)
    page.go_back()  # the playground of A does not come back
    expect(page).to_have_url(SIGN_IN)
    assert secret not in page.content() and secrets_in(page) == []

    sign_in(page, "ub@example.org")
    assert secret not in page.content()
    page.click('nav a:has-text("Playground")')
    page.wait_for_url("**/ui/playground")
    assert page.input_value("#pg-key") == ""
    assert secrets_in(page) == [] and secret not in storage_of(page)


def test_an_expired_session_sends_to_sign_in_and_clears_the_key(
    context: Any, ui_world: UiWorld
) -> None:
    page = context.new_page()
    sign_in(page, "ua@example.org")
    secret = create_key_and_use_it(page, "expiring")
    end_sessions_on_the_server(ui_world, "ua")
    page.goto("/ui/keys")
    expect(page).to_have_url(SIGN_IN)
    assert secrets_in(page) == [] and secret not in storage_of(page)
    sign_in(page, "ub@example.org")
    page.goto("/ui/playground")
    assert page.input_value("#pg-key") == ""


def test_clear_site_data_alone_empties_storage_at_sign_out_and_expiry(
    context: Any, ui_world: UiWorld
) -> None:
    page = context.new_page()
    page.route("**/ui/static/secrets.js", lambda route: route.abort())
    plant = "() => { sessionStorage.setItem('sluice-secret:x:k', 'sk-planted');"
    plant += " localStorage.setItem('sluice-secret:x:k', 'sk-planted'); }"

    sign_in(page, "ua@example.org")
    page.evaluate(plant)
    assert len(secrets_in(page)) == 2
    page.click('button:has-text("Sign out")')
    page.wait_for_url(SIGN_IN)
    assert "sk-planted" not in storage_of(page)

    sign_in(page, "ua@example.org")
    page.evaluate(plant)
    end_sessions_on_the_server(ui_world, "ua")
    page.goto("/ui/keys")
    expect(page).to_have_url(SIGN_IN)
    assert "sk-planted" not in storage_of(page)


def test_pages_alone_drop_another_sessions_key(context: Any, ui_world: UiWorld) -> None:
    page = context.new_page()
    sign_in(page, "ua@example.org")
    secret = create_key_and_use_it(page, "swapped")
    # Someone else signs in without this tab seeing a sign-in page or a Clear-Site-Data.
    api_switch_user(page, "ub@example.org")
    page.goto("/ui/playground")
    assert "ub@example.org" in page.inner_text("nav")
    assert page.input_value("#pg-key") == ""
    assert secrets_in(page) == [] and secret not in storage_of(page)


def test_the_sign_in_page_alone_forgets_every_key(context: Any, ui_world: UiWorld) -> None:
    page = context.new_page()
    sign_in(page, "ua@example.org")
    secret = create_key_and_use_it(page, "cookie-lost")
    context.clear_cookies()  # no session cookie: the sign-in page gets no Clear-Site-Data
    page.goto("/ui/login")
    assert secrets_in(page) == [] and secret not in storage_of(page)


def test_an_open_playground_tab_leaves_when_another_tab_signs_out(
    context: Any, ui_world: UiWorld
) -> None:
    first = context.new_page()
    sign_in(first, "ua@example.org")
    second = context.new_page()
    secret = create_key_and_use_it(second, "two-tabs")
    first.click('button:has-text("Sign out")')
    first.wait_for_url(SIGN_IN)
    expect(second).to_have_url(SIGN_IN)
    assert secret not in second.content()
    assert secrets_in(second) == []


def test_a_stale_playground_does_not_spend_the_key(context: Any, ui_world: UiWorld) -> None:
    page = context.new_page()
    sign_in(page, "ua@example.org")
    secret = create_key_and_use_it(page, "stale")
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))
    end_sessions_on_the_server(ui_world, "ua")
    page.fill("#pg-message", "Say hello")
    page.click("#pg-send")
    expect(page).to_have_url(SIGN_IN)
    assert not [url for url in sent if "/v1/" in url]
    assert secrets_in(page) == [] and secret not in storage_of(page)


def test_an_idle_tab_leaves_when_its_session_is_due_to_end(context: Any, ui_world: UiWorld) -> None:
    page = context.new_page()
    page.clock.install()
    sign_in(page, "ua@example.org")
    secret = create_key_and_use_it(page, "idle-tab")
    left_s = int(page.get_attribute('meta[name="sluice-session"]', "data-left-s"))
    assert 0 < left_s <= 8 * 3600  # SLUICE_CONSOLE_SESSION_IDLE_S's default
    end_sessions_on_the_server(ui_world, "ua")  # as the server's idle expiry would
    page.clock.fast_forward((left_s - 60) * 1000)
    assert page.url.endswith("/ui/playground")  # not due yet: nothing asked, nothing lost
    assert page.input_value("#pg-key") == secret
    page.clock.fast_forward(120 * 1000)
    expect(page).to_have_url(SIGN_IN)
    assert secrets_in(page) == [] and secret not in storage_of(page)


def test_a_tab_shown_again_checks_its_session(context: Any, ui_world: UiWorld) -> None:
    page = context.new_page()
    sign_in(page, "ua@example.org")
    secret = create_key_and_use_it(page, "shown-again")
    end_sessions_on_the_server(ui_world, "ua")
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    expect(page).to_have_url(SIGN_IN)
    assert secrets_in(page) == [] and secret not in storage_of(page)


def test_the_theme_choice_outlives_sign_out(context: Any, ui_world: UiWorld) -> None:
    page = context.new_page()
    sign_in(page, "ua@example.org")
    start = page.evaluate("() => document.documentElement.getAttribute('data-theme')")
    page.click("#theme-toggle")
    chosen = page.evaluate("() => document.documentElement.getAttribute('data-theme')")
    assert chosen in ("light", "dark") and chosen != start
    page.click('button:has-text("Sign out")')
    page.wait_for_url(SIGN_IN)
    assert page.evaluate("() => document.documentElement.getAttribute('data-theme')") == chosen
