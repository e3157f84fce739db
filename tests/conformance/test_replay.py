"""Replay every recorded client request (``captures/*.json``) against every provider family.

Each request goes to the path it was recorded on, with its recorded headers and body, its
``model`` replaced by one conformance model per provider family (see ``conftest.TARGETS``):
the native path where the family speaks that dialect, a translated one elsewhere. A request
passes when the gateway answers 200 with a whole answer in the request's dialect that names
the public model asked for, JSON text when the request asked for structured output, and
exactly one usage row (the key, the public model, status 200).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.answers import read, wants_json
from tests.conformance.conftest import TARGETS
from tests.e2e.support import Gateway, query, wait_row

pytestmark = pytest.mark.e2e

CAPTURES = sorted((Path(__file__).parent / "captures").glob("*.json"))


def _cases() -> list[Any]:
    cases = []
    for path in CAPTURES:
        capture = json.loads(path.read_text())
        for index, request in enumerate(capture["requests"]):
            for target in TARGETS:
                case_id = f"{path.stem}-{index}-{target}"
                cases.append(pytest.param(request, target, id=case_id))
    return cases


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def test_captures_are_recorded() -> None:
    """Every capture file holds requests, with no credential among the kept headers."""
    assert CAPTURES
    for path in CAPTURES:
        capture = json.loads(path.read_text())
        assert capture["requests"], path.name
        for request in capture["requests"]:
            assert not {"authorization", "x-api-key"} & set(request["headers"]), path.name
            assert isinstance(request["body"], dict), path.name


@pytest.mark.parametrize(("request_", "target"), _cases())
async def test_replay(conformance_gateway: Gateway, request_: dict[str, Any], target: str) -> None:
    gw = conformance_gateway
    body = {**request_["body"], "model": target}
    headers = {**request_["headers"], "authorization": f"Bearer {gw.key}"}
    path = request_["path"]
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=60.0) as client:
        resp = await client.request(request_["method"], path, json=body, headers=headers)
    assert resp.status_code == 200, f"{resp.status_code}: {resp.text[:1000]}"
    streamed = bool(body.get("stream"))
    answer = read(path, resp.text, streamed=streamed)
    assert answer.complete, resp.text[-2000:]
    assert answer.models == {target}, f"the answer names {answer.models}, not {target}"
    if wants_json(path, body):
        assert _json_object(answer.text), f"structured output lost, the answer: {answer.text[:300]}"
    request_id = resp.headers["x-request-id"]
    row = await wait_row(gw.db_path, request_id=request_id)
    assert (row["key_id"], row["model"], row["status"]) == (gw.key_id, target, 200)
    assert row["streamed"] == int(streamed)
    assert (
        len(query(gw.db_path, "SELECT 1 FROM usage_events WHERE request_id = ?", request_id)) == 1
    )
