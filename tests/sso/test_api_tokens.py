"""IdP access tokens on the data plane: a client-credentials JWT from the real IdP calls
``/v1/chat/completions`` as the gateway key it maps to (same usage rows); forged, expired,
misdirected or unmapped tokens get 401, and static keys work as before."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.idp import Idp
from tests.integration.conftest import CONFIG, make_settings, running
from tests.sso.conftest import sso_config
from tests.sso.test_tokens import claims, unsigned

pytestmark = pytest.mark.e2e

CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}


async def service_key(tmp_path: Path) -> tuple[str, str]:
    """A team's service account key, made before the gateway starts with the SSO config
    (the config maps the IdP's workload to its id)."""
    async with running(make_settings(tmp_path), CONFIG) as (_, admin):
        org = (await admin.post("/api/v1/orgs", json={"name": "org-A"})).json()
        team = (await admin.post(f"/api/v1/orgs/{org['id']}/teams", json={"name": "ml"})).json()
        sa = (
            await admin.post(f"/api/v1/teams/{team['id']}/service-accounts", json={"name": "ci"})
        ).json()
        made = await admin.post("/api/v1/keys", json={"name": "ci", "service_account_id": sa["id"]})
        assert made.status_code == 201, made.text
        return str(made.json()["id"]), str(made.json()["key"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_client_credentials_token_runs_as_the_mapped_key(tmp_path: Path, idp: Idp) -> None:
    key_id, static = await service_key(tmp_path)
    async with running(make_settings(tmp_path), sso_config(idp, api_key_id=key_id)) as (
        app,
        admin,
    ):
        rt = app.runtime
        assert rt is not None
        token = idp.client_credentials_token()
        for _ in range(2):  # the second time from the verified-token cache
            resp = await admin.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
            assert resp.status_code == 200, resp.text
        assert (
            await admin.post("/v1/chat/completions", json=CHAT, headers=bearer(static))
        ).status_code == 200
        listed = await admin.get("/v1/models", headers=bearer(token))
        assert listed.status_code == 200
        assert "mock-gpt" in {m["id"] for m in listed.json()["data"]}
        # the routes that answer without an upstream call take the token too (no usage row)
        counted = await admin.post(
            "/v1/messages/count_tokens",
            json={"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]},
            headers=bearer(token),
        )
        assert counted.status_code == 200, counted.text
        estimated = await admin.post(
            "/v1/responses/input_tokens",
            json={"model": "mock-gpt", "input": "hi"},
            headers=bearer(token),
        )
        assert estimated.status_code == 200, estimated.text
        missing = await admin.get("/v1/responses/resp_none", headers=bearer(token))
        assert missing.status_code == 404, missing.text  # authenticated, then not found
        await rt.usage.flush()
        rows = await rt.storage.usage.recent()
        assert len(rows) == 3
        assert {r.key_id for r in rows} == {key_id}
        assert {r.status for r in rows} == {200}

        now = int(time.time())
        forged = {
            "wrong audience": idp.sign(
                claims(idp, aud="https://other/api", client_id="sluice-workload")
            ),
            "expired": idp.sign(
                claims(idp, iat=now - 900, exp=now - 600, client_id="sluice-workload")
            ),
            "unmapped workload": idp.sign(claims(idp, client_id="somebody-else")),
            "alg none": unsigned({"alg": "none"}, claims(idp, client_id="sluice-workload")) + ".",
            "unknown issuer": unsigned(
                {"alg": "RS256"}, claims(idp, iss="https://evil", client_id="sluice-workload")
            )
            + ".c2ln",
        }
        for what, bad in forged.items():
            resp = await admin.post("/v1/chat/completions", json=CHAT, headers=bearer(bad))
            assert resp.status_code == 401, (what, resp.text)
            error = resp.json()["error"]
            assert error["code"] == "invalid_token", what
            assert error["type"]

        # Revoking the mapped key stops its tokens at once, cached or not.
        assert (await admin.delete(f"/api/v1/keys/{key_id}")).status_code == 200
        resp = await admin.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
        assert resp.status_code == 401
        assert "revoked or expired" in resp.json()["error"]["message"]


async def test_without_api_tokens_a_jwt_is_just_an_invalid_key(tmp_path: Path, idp: Idp) -> None:
    async with running(make_settings(tmp_path), sso_config(idp)) as (app, admin):
        assert app.runtime is not None and app.runtime.keys.bearer is None
        token = idp.client_credentials_token()
        resp = await admin.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "invalid_api_key"


async def test_bad_tokens_count_as_bad_keys_and_a_down_idp_spares_static_keys(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.idp import running_idp

    key_id, static = await service_key(tmp_path)
    with running_idp(tmp_path_factory.mktemp("idp-api-down"), redirect_uris=[]) as idp:
        token = idp.client_credentials_token()
        forged = idp.sign(claims(idp, aud="https://other/api", client_id="sluice-workload"))
        settings = make_settings(tmp_path, bad_key_max_failures=2)
        async with running(settings, sso_config(idp, api_key_id=key_id)) as (_, client):
            for _ in range(2):
                resp = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(forged))
                assert resp.status_code == 401
            resp = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
            assert resp.status_code == 429  # this address is refused for a while
            assert "retry-after" in resp.headers

    # The IdP is gone: its tokens cannot be verified (503), static keys are unaffected.
    async with running(make_settings(tmp_path), sso_config(idp, api_key_id=key_id)) as (
        _,
        client,
    ):
        resp = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(token))
        assert resp.status_code == 503
        assert "cannot be used right now" in resp.json()["error"]["message"]
        resp = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(static))
        assert resp.status_code == 200
