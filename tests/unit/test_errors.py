from __future__ import annotations

import pytest

from sluice.errors import ErrorKind, GatewayError, kind_for_upstream_status, upstream_http_error


@pytest.mark.parametrize(
    ("status", "kind", "client_status"),
    [
        (400, ErrorKind.PROVIDER_BAD_REQUEST, 400),
        (401, ErrorKind.PROVIDER_AUTH, 401),
        (404, ErrorKind.PROVIDER_NOT_FOUND, 404),
        (422, ErrorKind.PROVIDER_BAD_REQUEST, 422),
        (429, ErrorKind.PROVIDER_RATE_LIMITED, 429),
        (500, ErrorKind.PROVIDER_ERROR, 500),
        (502, ErrorKind.PROVIDER_UNAVAILABLE, 503),
        (503, ErrorKind.PROVIDER_UNAVAILABLE, 503),
        (504, ErrorKind.PROVIDER_TIMEOUT, 504),
        (529, ErrorKind.PROVIDER_UNAVAILABLE, 503),
        (418, ErrorKind.PROVIDER_BAD_REQUEST, 418),
        (599, ErrorKind.PROVIDER_ERROR, 500),
    ],
)
def test_upstream_status_table(status: int, kind: ErrorKind, client_status: int) -> None:
    assert kind_for_upstream_status(status) is kind
    assert upstream_http_error(status, "m").status == client_status


def test_every_kind_has_a_status_and_the_envelope_is_openai_shaped() -> None:
    for kind in ErrorKind:
        assert 399 < kind.info.status < 600
        body = GatewayError(kind, "msg", param="p").to_openai()
        assert body == {
            "error": {
                "message": "msg",
                "type": kind.info.openai_type,
                "param": "p",
                "code": kind.value,
            }
        }


def test_kinds_are_grouped_by_fault() -> None:
    prefixes = {k.value.split("_", 1)[0] for k in ErrorKind}
    assert prefixes == {"caller", "policy", "provider", "gateway", "client"}
