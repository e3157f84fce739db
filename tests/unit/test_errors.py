from __future__ import annotations

import pytest

from sluice.errors import (
    PROVIDER_AUTH_MESSAGE,
    UNAVAILABLE_RETRY_AFTER_S,
    ErrorKind,
    GatewayError,
    kind_for_upstream_status,
    retry_after_value,
    upstream_http_error,
)


@pytest.mark.parametrize(
    ("status", "kind", "client_status"),
    [
        (400, ErrorKind.PROVIDER_BAD_REQUEST, 400),
        (401, ErrorKind.PROVIDER_AUTH, 502),
        (403, ErrorKind.PROVIDER_AUTH, 502),
        (404, ErrorKind.PROVIDER_NOT_FOUND, 404),
        (422, ErrorKind.PROVIDER_BAD_REQUEST, 422),
        (429, ErrorKind.PROVIDER_RATE_LIMITED, 429),
        (500, ErrorKind.PROVIDER_ERROR, 502),
        (502, ErrorKind.PROVIDER_UNAVAILABLE, 502),
        (503, ErrorKind.PROVIDER_UNAVAILABLE, 502),
        (504, ErrorKind.PROVIDER_TIMEOUT, 504),
        (529, ErrorKind.PROVIDER_UNAVAILABLE, 502),
        (418, ErrorKind.PROVIDER_BAD_REQUEST, 418),
        (599, ErrorKind.PROVIDER_ERROR, 502),
    ],
)
def test_upstream_status_table(status: int, kind: ErrorKind, client_status: int) -> None:
    assert kind_for_upstream_status(status) is kind
    err = upstream_http_error(status, "m")
    assert err.status == client_status
    assert err.upstream_status == status


def test_no_upstream_failure_is_a_500() -> None:
    """500 means a bug in Sluice; whatever the provider answers, the client never sees it."""
    for status in range(400, 600):
        assert upstream_http_error(status, "m").status != 500
    for kind in ErrorKind:
        if kind.value.startswith("provider_"):
            assert kind.info.status != 500, kind


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_credential_is_502_and_never_echoes_the_provider(status: int) -> None:
    provider_text = "Incorrect API key provided: sk-proj-abcdef123456. Find your key at ..."
    err = upstream_http_error(status, provider_text, code="invalid_api_key")
    assert err.kind is ErrorKind.PROVIDER_AUTH
    assert err.status == 502
    body = err.to_openai()["error"]
    assert isinstance(body, dict)
    assert body["code"] == "provider_auth_error"
    assert body["type"] == "api_error"
    assert body["message"] == PROVIDER_AUTH_MESSAGE
    assert "sk-proj" not in str(body)
    assert err.detail == provider_text  # kept for the operator's log only
    assert not err.retriable


def test_a_provider_map_override_goes_through_the_same_rules() -> None:
    err = upstream_http_error(424, "model failed", kind=ErrorKind.PROVIDER_ERROR)
    assert (err.kind, err.status) == (ErrorKind.PROVIDER_ERROR, 502)
    err = upstream_http_error(403, "denied: key sk-abcdefgh", kind=ErrorKind.PROVIDER_AUTH)
    assert err.message == PROVIDER_AUTH_MESSAGE


def test_every_503_carries_retry_after() -> None:
    for kind in ErrorKind:
        err = GatewayError(kind, "m")
        value = retry_after_value(err)
        if err.status == 503:
            assert value == str(UNAVAILABLE_RETRY_AFTER_S), kind
        else:
            assert value is None, kind
    # The error's own hint wins, rounded up to whole seconds (never "0" for 0.4 s).
    assert (
        retry_after_value(GatewayError(ErrorKind.GATEWAY_UNAVAILABLE, "m", retry_after_s=0.4))
        == "1"
    )
    assert (
        retry_after_value(GatewayError(ErrorKind.PROVIDER_RATE_LIMITED, "m", retry_after_s=2))
        == "2"
    )


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
