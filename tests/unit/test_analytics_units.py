"""Percentiles from the rollup histogram, the cursor codec, body redaction and capture, and
which rollup table a query reads."""

from __future__ import annotations

import random

import pytest

from sluice.analytics.model import Cursor
from sluice.analytics.service import decode_cursor, encode_cursor
from sluice.config.body_logging import BodyLoggingConfig
from sluice.errors import GatewayError
from sluice.usage import histogram
from sluice.usage.bodies import BodyCapture, BodyPolicy


@pytest.mark.parametrize("q", [0.5, 0.95])
def test_percentile_estimate_is_within_a_bucket_of_the_truth(q: float) -> None:
    rng = random.Random(7)
    values = sorted(rng.lognormvariate(6.5, 1.0) for _ in range(20_000))
    counts = [0] * histogram.BUCKETS
    for v in values:
        counts[histogram.bucket(v)] += 1
    true = values[int(q * len(values)) - 1]
    estimate = histogram.percentile(counts, q)
    assert estimate is not None
    assert true / 2**0.5 <= estimate <= true * 2**0.5


def test_percentile_edges() -> None:
    assert histogram.percentile([0] * histogram.BUCKETS, 0.5) is None
    only_first = [4] + [0] * (histogram.BUCKETS - 1)
    assert histogram.percentile(only_first, 0.5) == pytest.approx(10.0)
    slowest = [0] * (histogram.BUCKETS - 1) + [1]
    assert histogram.percentile(slowest, 0.95) > histogram.UPPER_MS[-1]  # type: ignore[operator]
    assert histogram.bucket(0.0) == 0 and histogram.bucket(1e9) == histogram.BUCKETS - 1


def test_cursor_round_trip_and_garbage() -> None:
    c = Cursor(1_700_000_000.123456, "req_abc")
    assert decode_cursor(encode_cursor(c)) == c
    for bad in ("", "!!!", encode_cursor(c)[:-3] + "A", "WzFd"):
        with pytest.raises(GatewayError) as info:
            decode_cursor(bad)
        assert info.value.param == "cursor"


def test_redaction_and_truncation() -> None:
    policy = BodyPolicy(BodyLoggingConfig(teams=("t1",), max_bytes=256, redact=("(x)yz-\\d+",)))
    assert policy.wants(None, "t1") and not policy.wants("o1", "t2")
    text = policy.redact(
        "Authorization: Bearer abc.def-ghi_123 key sk-slc-abcdefghijkl "
        '"https://h/?a=1&api_key=s3cr3t" xyz-99'
    )
    assert "abc.def" not in text and "sk-slc" not in text and "s3cr3t" not in text
    assert "xyz-99" not in text and "&api_key=[REDACTED]" in text
    capture = BodyCapture(cap=256, request=b"q" * 300)
    for _ in range(10):
        capture.add(b"d" * 40)
    stored = policy.render(capture, request_id="r", created_at=1.0, org_id=None, team_id="t1")
    assert stored.truncated and len(stored.request) == 256 and len(stored.response) == 256
    with pytest.raises(ValueError, match="redact"):
        BodyLoggingConfig(redact=("(",))


def test_each_rollup_query_reads_the_smallest_table_that_has_its_columns() -> None:
    from sluice.analytics.model import Narrow, RollupQuery, Visibility
    from sluice.storage.sql import tables as t
    from sluice.storage.sql.analytics import source

    admin = Visibility(everything=True)
    user = Visibility(user_ids=frozenset({"u1"}), key_ids=frozenset({"k1"}))
    org_admin = Visibility(org_ids=frozenset({"o1"}))

    def table(width: int, v: Visibility, *, by: tuple[str, ...] = (), **narrow: str) -> str:
        return source(RollupQuery(width, 0, 1, v, Narrow(**narrow), group_by=by)).name

    assert table(86_400, admin) == t.rollup_daily_models.name
    assert table(86_400, admin, by=("bucket",)) == t.rollup_daily_models.name
    assert table(86_400, org_admin, by=("model",)) == t.rollup_daily_models.name
    assert table(86_400, admin, by=("key_id",)) == t.rollup_daily_owners.name
    assert table(86_400, admin, by=("team_id",)) == t.rollup_daily_teams.name
    assert table(86_400, admin, by=("bucket",), team_id="t1") == t.rollup_daily_teams.name
    team_admin = Visibility(team_ids=frozenset({"t1"}), user_ids=frozenset({"u1"}))
    assert table(3600, team_admin, by=("bucket",), team_id="t1") == t.rollup_hourly_teams.name
    assert table(3600, team_admin, by=("bucket",), team_id="t2") == t.rollup_hourly.name
    assert table(86_400, admin, by=("user_id",), team_id="t1") == t.rollup_daily_owners.name
    assert table(86_400, user) == t.rollup_daily_owners.name
    assert table(86_400, user, by=("model",)) == t.rollup_daily.name
    assert table(86_400, admin, by=("team_id",), model="m") == t.rollup_daily.name
    assert table(3600, admin, by=("bucket",)) == t.rollup_hourly_models.name
    assert table(3600, admin, by=("provider",), org_id="o1") == t.rollup_hourly_models.name
    assert table(3600, admin, by=("user_id",)) == t.rollup_hourly.name
    assert table(3600, user, by=("bucket",)) == t.rollup_hourly.name
