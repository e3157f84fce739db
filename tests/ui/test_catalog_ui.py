"""The console's model catalogue in Chromium: an admin adds a provider and a model (written
as in the config file), sees a refused entry's error naming the field, tests a deployment
(answer, latency, cost), edits the weights, overrides a price and removes the model; a
member's catalogue lists the models they may use with capabilities, prices and status."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import UiWorld, sign_in

pytestmark = pytest.mark.ui

BAD_MODEL = """name: ui-made
deployments:
  - {provider: nowhere, model: chat}
"""
MODEL = """name: ui-made
aliases: [ui-alias]
capabilities: [chat, vision]
deployments:
  - {provider: ui-mock, model: "chat?completion_tokens=5", id: ui-dep}
"""


def test_an_admin_edits_the_catalogue_and_tests_a_deployment(
    context: Any, ui_world: UiWorld
) -> None:
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in_admin(page)
    page.goto("/ui/admin")
    page.click('nav.subnav a:has-text("Models")')
    page.wait_for_url("**/ui/admin/catalog")
    expect(page.locator('#models tr[data-model="m-chat"] [data-field="source"]')).to_have_text(
        "config file"
    )
    expect(page.locator('#models tr[data-model="m-chat"] a:has-text("Edit")')).to_have_count(0)

    page.fill("#provider-name", "ui-mock")
    page.fill("#provider-yaml", "type: mock")
    page.click('#provider-form button[type="submit"]')
    expect(page.locator(".flash")).to_contain_text("provider was saved")
    expect(page.locator('#providers tr[data-provider="ui-mock"]')).to_contain_text("database")

    page.fill("#model-yaml", BAD_MODEL)
    page.click('#model-form button[type="submit"]')
    expect(page.locator("#model-error")).to_contain_text("deployments[0].provider")
    expect(page.locator("#model-yaml")).to_have_value(BAD_MODEL)  # what was sent stays

    page.fill("#model-yaml", MODEL)
    page.click('#model-form button[type="submit"]')
    expect(page.locator(".flash")).to_contain_text("model was saved")
    row = page.locator('#models tr[data-model="ui-made"]')
    expect(row.locator('[data-field="source"]')).to_have_text("database")

    row.locator('button:has-text("Test")').click()
    result = page.locator("#test-result")
    expect(result).to_contain_text("ui-dep")
    expect(result.locator('[data-field="answer"]')).not_to_be_empty()
    expect(result.locator('[data-field="latency"]')).to_contain_text("ms")
    expect(result.locator('[data-field="cost"]')).to_contain_text("$")

    row = page.locator('#models tr[data-model="ui-made"]')
    row.locator('a:has-text("Edit")').click()
    expect(page.locator("#model-form h2")).to_contain_text("ui-made")
    page.fill("#model-yaml", MODEL.replace("id: ui-dep}", "id: ui-dep, weight: 3}"))
    page.click('#model-form button[type="submit"]')
    expect(page.locator('#models tr[data-model="ui-made"]')).to_contain_text("w 3.0")

    row = page.locator('#models tr[data-model="ui-made"]')
    row.locator('input[name="input_usd_per_mtok"]').fill("2.5")
    row.locator('input[name="output_usd_per_mtok"]').fill("10")
    row.locator('button:has-text("Set price")').click()
    expect(page.locator('#models tr[data-model="ui-made"]')).to_contain_text("override")
    listed = ui_world.api("GET", "/models/ui-made")
    assert listed["catalogue"]["pricing"]["input_usd_per_mtok"] == 2.5

    page.locator('#models tr[data-model="ui-made"] button:has-text("Remove")').click()
    expect(page.locator(".flash")).to_contain_text("model was removed")
    expect(page.locator('#models tr[data-model="ui-made"]')).to_have_count(0)
    page.locator('#providers tr[data-provider="ui-mock"] button:has-text("Remove")').click()
    expect(page.locator('#providers tr[data-provider="ui-mock"]')).to_have_count(0)
    audit = ui_world.api("GET", "/audit")["data"]
    assert {"model.create", "model.update", "model.price", "model.delete"} <= {
        e["action"] for e in audit
    }


def sign_in_admin(page: Any) -> None:
    sign_in(page, "root@example.org")


def test_a_member_sees_the_models_they_may_use(context: Any, ui_world: UiWorld) -> None:
    page = context.new_page()
    sign_in(page, "ua@example.org")
    page.click('nav a:has-text("Models")')
    page.wait_for_url("**/ui/models")
    row = page.locator('#catalogue tr[data-model="m-chat"]')
    expect(row).to_contain_text("chat")
    expect(row.locator('[data-field="status"]')).to_have_text("up")
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1
