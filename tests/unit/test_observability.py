"""Metadata splicing, trace context, metrics from usage batches, writer observers."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import CollectorRegistry

from sluice.observability import answer
from sluice.observability.metrics import Metrics, Sources
from sluice.observability.tracing import parse_traceparent, passthrough_traceparent, start_trace
from sluice.usage.event import UsageEvent
from sluice.usage.writer import UsageWriter

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _ev(**kw: object) -> UsageEvent:
    ev = UsageEvent("req_1", 1.0, "chat", "key_a", "m")
    for k, v in kw.items():
        setattr(ev, k, v)
    return ev


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"id":"x"}', {"id": "x", "sluice": {"a": 1}}),
        (b'{"id":"x"}\n  ', {"id": "x", "sluice": {"a": 1}}),
        (b"{}", {"sluice": {"a": 1}}),
        (b"{ }", {"sluice": {"a": 1}}),
    ],
)
def test_metadata_is_spliced_into_json_objects(body: bytes, expected: object) -> None:
    assert orjson.loads(answer.with_metadata(body, {"a": 1})) == expected


def test_metadata_leaves_non_objects_alone() -> None:
    assert answer.with_metadata(b"[1]", {"a": 1}) == b"[1]"


def test_metadata_chunk_goes_right_before_done() -> None:
    chunk = answer.metadata_chunk({"a": 1}, request_id="req_1", created_at=1.0, model="m")
    tail = b'data: {"usage":1}\n\n' + answer.DONE_EVENT
    out = answer.with_metadata_chunk(tail, chunk)
    assert out == b'data: {"usage":1}\n\n' + chunk + answer.DONE_EVENT
    parsed = orjson.loads(chunk[len(b"data: ") :])
    assert parsed["object"] == "chat.completion.chunk" and parsed["choices"] == []


def test_wants_metadata_header_values() -> None:
    assert answer.wants_metadata(None, default=True) is True
    assert answer.wants_metadata(b"TRUE", default=False) is True
    assert answer.wants_metadata(b"0", default=True) is False
    assert answer.wants_metadata(b"maybe", default=False) is None


def test_traceparent_parsing() -> None:
    good = f"00-{TRACE}-00f067aa0ba902b7-01".encode()
    assert parse_traceparent(good) == (TRACE, "00f067aa0ba902b7", "01")
    for bad in (
        b"garbage",
        f"ff-{TRACE}-00f067aa0ba902b7-01".encode(),
        b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01",
    ):
        assert parse_traceparent(bad) is None


def test_passthrough_keeps_the_callers_parent_or_starts_a_trace() -> None:
    trace = start_trace(f"00-{TRACE}-00f067aa0ba902b7-01".encode())
    assert passthrough_traceparent(trace) == f"00-{TRACE}-00f067aa0ba902b7-01"
    fresh = start_trace(None)
    header = passthrough_traceparent(fresh)
    assert parse_traceparent(header.encode()) is not None
    assert header.split("-")[1] == fresh.trace_id


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_metrics_from_a_batch_of_events() -> None:
    metrics = Metrics(model_label={"m": "m", "alias": "m"}.get, provider_of={"up/x": "up"})
    ok = _ev(
        provider="up",
        deployment="up/x",
        attempts=1,
        prompt_tokens=10,
        completion_tokens=5,
        cached_tokens=2,
        cost_micros=1500,
        team_id="t1",
        latency_ms=120,
    )
    retried = _ev(
        model="alias",
        provider="up",
        deployment="up/x",
        attempts=2,
        attempt_errors=["up/x: provider_error"],
        streamed=True,
        ttft_ms=30.0,
    )
    limited = _ev(model="nope", status=429, error_kind="policy_rate_limited")
    budget = _ev(status=429, error_kind="policy_budget_exceeded")
    metrics.observe([ok, retried, limited, budget])
    reg = metrics.registry
    assert (
        _value(
            reg,
            "sluice_requests_total",
            model="m",
            provider="up",
            status="200",
            error_kind="",
            team="t1",
        )
        == 1
    )
    assert (
        _value(
            reg,
            "sluice_requests_total",
            model="m",
            provider="up",
            status="200",
            error_kind="",
            team="",
        )
        == 1
    )
    assert (
        _value(
            reg,
            "sluice_requests_total",
            model="other",
            provider="",
            status="429",
            error_kind="policy_rate_limited",
            team="",
        )
        == 1
    )
    assert _value(reg, "sluice_rate_limited_total", model="other") == 1
    assert _value(reg, "sluice_budget_rejected_total", model="m") == 1
    assert _value(reg, "sluice_tokens_total", model="m", provider="up", direction="cached") == 2
    assert _value(reg, "sluice_cost_usd_total", model="m", provider="up", team="t1") == 0.0015
    assert (
        _value(
            reg, "sluice_upstream_attempts_total", provider="up", deployment="up/x", outcome="ok"
        )
        == 2
    )
    assert (
        _value(
            reg,
            "sluice_upstream_attempts_total",
            provider="up",
            deployment="up/x",
            outcome="provider_error",
        )
        == 1
    )
    assert _value(reg, "sluice_request_duration_seconds_count", model="m", provider="up") == 2
    assert _value(reg, "sluice_time_to_first_token_seconds_count", model="m", provider="up") == 1
    text = metrics.render().decode()
    assert "key_a" not in text  # no key ids by default


def test_team_label_off_and_key_label_on() -> None:
    metrics = Metrics(model_label=lambda n: n, provider_of={}, team_label=False, key_label=True)
    metrics.observe([_ev(team_id="t1", cost_micros=10)])
    reg = metrics.registry
    assert (
        _value(
            reg,
            "sluice_requests_total",
            model="m",
            provider="",
            status="200",
            error_kind="",
            team="",
        )
        == 1
    )
    assert _value(reg, "sluice_key_requests_total", key="key_a") == 1


def test_sampled_gauges_and_writer_counters() -> None:
    metrics = Metrics(model_label=lambda n: n, provider_of={})
    totals = [(3, 1, 0, 0)]
    metrics.attach(
        Sources(
            active_streams=lambda: 4,
            queue_depth=lambda: 7,
            writer_totals=lambda: totals[-1],
            breakers=lambda: [("a", "open"), ("b", "half_open"), ("c", "closed")],
        )
    )
    metrics.sample()
    totals.append((5, 1, 2, 3))
    metrics.sample()
    reg = metrics.registry
    assert _value(reg, "sluice_active_streams") == 4
    assert _value(reg, "sluice_usage_queue_depth") == 7
    assert _value(reg, "sluice_breaker_state", deployment="a") == 2
    assert _value(reg, "sluice_breaker_state", deployment="b") == 1
    assert _value(reg, "sluice_usage_rows_written_total") == 5
    assert _value(reg, "sluice_usage_flush_errors_total") == 1
    assert _value(reg, "sluice_usage_rows_dropped_total") == 2
    assert _value(reg, "sluice_usage_dead_letters_total") == 3


class _Repo:
    def __init__(self, *, fail: bool) -> None:
        self.fail = fail
        self.rows: list[UsageEvent] = []

    async def insert_many(self, events: list[UsageEvent]) -> None:
        if self.fail:
            raise OSError("database down")
        self.rows.extend(events)

    async def touch(self, last_used: dict[str, float]) -> None:
        return None


async def test_writer_observers_see_each_event_once_even_when_flushes_fail() -> None:
    repo = _Repo(fail=True)
    writer = UsageWriter(repo, repo, interval_s=1, batch_size=10)  # type: ignore[arg-type]
    seen: list[str] = []
    writer.observe(lambda batch: seen.extend(e.request_id for e in batch))
    writer.observe(lambda batch: 1 / 0)  # a broken observer does not stop the others
    for i in range(3):
        writer.record(UsageEvent(f"r{i}", 0.0, "chat", None, "m"))
    import logging

    logging.getLogger("sluice.usage").disabled = True
    try:
        await writer.flush()
        await writer.flush()
        repo.fail = False
        await writer.flush()
    finally:
        logging.getLogger("sluice.usage").disabled = False
    assert seen == ["r0", "r1", "r2"]
    assert [e.request_id for e in repo.rows] == ["r0", "r1", "r2"]


def test_access_lines_carry_each_request_arrival_time_to_the_millisecond() -> None:
    import datetime as dt
    import logging

    from sluice.observability.logging import JsonFormatter, TextFormatter, access_fields

    times = [1_800_000_000.0, 1_800_000_000.0004, 1_800_000_000.9999996, 1_800_000_061.25]
    events = [UsageEvent(f"r{i}", ts, "chat", "key_a", "m") for i, ts in enumerate(times)]
    want = [
        dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds") for ts in times
    ]
    assert want[2] == "2027-01-15T08:00:01.000+00:00"  # rounds into the next second
    for formatter in (JsonFormatter(), TextFormatter()):
        record = logging.makeLogRecord({"name": "sluice.access", "levelname": "INFO"})
        record.access_batch = [access_fields(e) for e in events]
        lines = formatter.format(record).split("\n")
        got = [
            orjson.loads(line)["ts"] if isinstance(formatter, JsonFormatter) else line.split()[0]
            for line in lines
        ]
        assert got == want
