"""``/api/docs`` renders in a browser with no internet: Swagger UI's assets come from the
gateway itself (issue #21, point 2)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import UiWorld

pytestmark = pytest.mark.ui


def test_api_docs_render_from_packaged_assets(context: Any, ui_world: UiWorld) -> None:
    page = context.new_page()
    requested: list[str] = []
    failed: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto("/api/docs")
    # Swagger UI drew the operations it read from /api/openapi.json.
    page.wait_for_selector('.opblock-summary-path[data-path="/api/v1/orgs"]')
    assert page.locator(".opblock").count() > 20
    outside = [u for u in requested if not u.startswith(ui_world.url) and not u.startswith("data:")]
    assert outside == []
    assert failed == []
    assert f"{ui_world.url}/api/openapi.json" in requested
