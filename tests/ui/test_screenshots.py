"""Screenshots of the main pages, light and dark and at phone width. They are written to
docs/screenshots when ``SLUICE_SCREENSHOTS=1`` (committed, linked from the README), else to
a temporary folder; either way every page must render without a horizontal scrollbar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import UiWorld, screenshot_dir, sign_in

pytestmark = pytest.mark.ui

VIEWS = {
    "desktop-light": ({"width": 1280, "height": 800}, "light"),
    "desktop-dark": ({"width": 1280, "height": 800}, "dark"),
    "phone": ({"width": 390, "height": 844}, "light"),
}


def _pages(ui_world: UiWorld) -> dict[str, str]:
    return {
        "keys": "/ui/keys",
        "team": f"/ui/team/{ui_world.ids['ops']}",
        "organisation": f"/ui/org/{ui_world.ids['acme']}",
        "admin-models": "/ui/admin/models",
        "playground": "/ui/playground",
    }


@pytest.mark.parametrize("view", list(VIEWS))
def test_main_pages(chromium: Any, ui_world: UiWorld, tmp_path: Path, view: str) -> None:
    size, scheme = VIEWS[view]
    out = screenshot_dir(tmp_path)
    ctx = chromium.new_context(base_url=ui_world.url, viewport=size, color_scheme=scheme)
    try:
        page = ctx.new_page()
        page.goto("/ui/login")
        page.screenshot(path=str(out / f"login-{view}.png"))
        sign_in(page, "root@example.org")
        for name, path in _pages(ui_world).items():
            if view == "phone" and name not in ("keys", "playground"):
                continue
            page.goto(path)
            if name == "keys":
                page.fill('input[name="name"]', f"demo-{view}")
                page.click('button:has-text("Create key")')
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"{path} scrolls sideways at {size['width']} px"
            page.screenshot(path=str(out / f"{name}-{view}.png"), full_page=name != "admin-models")
    finally:
        ctx.close()
