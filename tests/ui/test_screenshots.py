"""Screenshots of the main pages, light and dark and at phone width. They are written to
docs/screenshots when ``SLUICE_SCREENSHOTS=1`` (committed, linked from the README), else to
a temporary folder; either way every page must render without a horizontal scrollbar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

from tests.ui.conftest import UiWorld, screenshot_dir, sign_in

pytestmark = pytest.mark.ui

VIEWS = {
    "desktop-light": ({"width": 1280, "height": 800}, "light"),
    "desktop-dark": ({"width": 1280, "height": 800}, "dark"),
    "laptop-light": ({"width": 1366, "height": 768}, "light"),
    "laptop-dark": ({"width": 1366, "height": 768}, "dark"),
    "phone": ({"width": 390, "height": 844}, "light"),
    "phone-dark": ({"width": 390, "height": 844}, "dark"),
}
EVERYDAY = (
    "keys",
    "key-edit",
    "organisation",
    "usage",
    "admin-orgs",
    "admin-users",
    "user-limits",
    "audit",
    "alerts",
)
"""The everyday-admin pages: drawn in every view; the others at desktop (light, dark) and,
when in ``PHONE``, at phone width in light."""


def _pages(ui_world: UiWorld) -> dict[str, str]:
    return {
        "keys": "/ui/keys",
        "team": f"/ui/team/{ui_world.ids['ops']}",
        "organisation": f"/ui/org/{ui_world.ids['acme']}",
        "admin-models": "/ui/admin/models",
        "playground": "/ui/playground",
        "usage": "/ui/usage",
        "requests": "/ui/requests",
        "mcp": "/ui/mcp",
        "files": "/ui/files",
        "admin-orgs": "/ui/admin",
        "admin-users": "/ui/admin/users",
        "user-limits": f"/ui/users/{ui_world.ids['ua']}",
        "audit": "/ui/admin/audit",
        "alerts": "/ui/alerts",
        "key-edit": f"/ui/keys/{ui_world.ids['demo_key']}/edit",
    }


PHONE = ("keys", "playground", "usage", "requests", "mcp", "files", *EVERYDAY)
ORIGINAL_VIEWS = ("desktop-light", "desktop-dark", "phone")


def _drawn(name: str, view: str) -> bool:
    if view.startswith("phone") and name not in PHONE:
        return False
    return name in EVERYDAY or view in ORIGINAL_VIEWS


@pytest.fixture(scope="module")
def traffic(ui_world: UiWorld) -> None:
    """Some requests (a few models, a few errors) and a budget, for the Usage pages."""
    ui_world.api(
        "PATCH", f"/orgs/{ui_world.ids['acme']}", {"budget": {"usd": 5, "period": "month"}}
    )
    key = ui_world.api("POST", "/keys", {"name": "demo", "user_id": ui_world.ids["ua"]})
    ui_world.ids["demo_key"] = key["id"]
    client = openai.OpenAI(
        base_url=f"{ui_world.url}/v1", api_key=key["key"], max_retries=0, timeout=20
    )
    for model in ("m-chat", "m-chat", "m-local", "m-chat", "m-local", "m-400", "m-chat"):
        try:
            client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )
        except openai.BadRequestError:
            pass


@pytest.mark.parametrize("view", list(VIEWS))
def test_main_pages(
    chromium: Any, ui_world: UiWorld, tmp_path: Path, view: str, traffic: None
) -> None:
    size, scheme = VIEWS[view]
    out = screenshot_dir(tmp_path)
    ctx = chromium.new_context(base_url=ui_world.url, viewport=size, color_scheme=scheme)
    try:
        page = ctx.new_page()
        page.goto("/ui/login")
        page.screenshot(path=str(out / f"login-{view}.png"))

        sign_in(page, "root@example.org")
        for name, path in _pages(ui_world).items():
            if not _drawn(name, view):
                continue
            page.goto(path)
            if name == "mcp" and page.locator("#server-everything").count():
                page.click("#server-everything details.tools > summary")
                page.wait_for_selector("#server-everything .tools-body table", timeout=30_000)
            if name == "files" and not page.locator("td code").count():
                page.set_input_files(
                    'input[name="file"]',
                    {"name": "eval-prompts.jsonl", "mimeType": "text/plain", "buffer": b"{}\n"},
                )
                page.click('button:has-text("Upload")')
                page.wait_for_selector("text=The file was uploaded.")
            if name == "keys":
                page.fill('input[name="name"]', f"demo-{view}")
                page.click('button:has-text("Create key")')
                page.wait_for_selector("#new-secret")  # the form's answer has loaded
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            wide = page.evaluate(
                "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect()"
                ".right > document.documentElement.clientWidth + 1).slice(0, 5).map(e => "
                "e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
            )
            assert overflow <= 1, f"{path} scrolls sideways at {size['width']} px: {wide}"
            page.screenshot(
                path=str(out / f"{name}-{view}.png"),
                full_page=name != "admin-models",
            )
    finally:
        ctx.close()
