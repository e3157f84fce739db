"""Server-drawn charts and the Usage pages' date ranges: pure functions, no server."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from starlette.datastructures import QueryParams

from sluice.console.charts import BarChart, Series, TimeChart, bucket_labels, fmt, nice_ticks, short
from sluice.console.usage_scope import kept_range, parse_range
from sluice.errors import BadRequest

NOW = datetime(2026, 3, 15, 10, 30, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        (0, [0.0, 1.0]),
        (7, [0.0, 2.0, 4.0, 6.0, 8.0]),
        (100, [0.0, 25.0, 50.0, 75.0, 100.0]),
        (0.003, [0.0, 0.001, 0.002, 0.003]),
        (1234, [0.0, 500.0, 1000.0, 1500.0]),
    ],
)
def test_ticks_start_at_zero_and_reach_the_top(top: float, ticks: list[float]) -> None:
    assert nice_ticks(top) == ticks


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        (1, [0.0, 1.0]),
        (2, [0.0, 1.0, 2.0]),
        (9, [0.0, 5.0, 10.0]),
        (0.5, [0.0, 1.0]),
    ],
)
def test_count_ticks_are_whole_numbers(top: float, ticks: list[float]) -> None:
    assert nice_ticks(top, whole=True) == ticks


def test_a_count_chart_has_no_fractional_axis_labels() -> None:
    labels, ticks = bucket_labels([0, 86_400], "day")
    requests = TimeChart(
        "r", "Requests", labels, ticks, (Series("Requests", (1.0, 0.0), "bar"),), "count"
    )
    axis = re.findall(
        r'<text class="axis" x="\d+" y="[\d.]+" text-anchor="end">([^<]+)<', str(requests.svg())
    )
    assert axis == ["0", "1"]


def test_values_are_formatted_for_people() -> None:
    assert fmt(1234.0, "count") == "1,234"
    assert fmt(125.0, "micros") == "$0.000125"
    assert fmt(2_500_000.0, "micros") == "$2.50"
    assert fmt(None, "count") == "—"
    assert short(1500.0, "tokens") == "1.5k"
    assert short(2_000_000.0, "micros") == "$2"
    assert short(0.0, "micros") == "$0"


def chart() -> TimeChart:
    labels, ticks = bucket_labels([0, 86_400, 172_800], "day")
    return TimeChart(
        "t",
        "Tokens per day",
        labels,
        ticks,
        (Series("Input", (10.0, 0.0, 30.0), "area"), Series("Output", (5.0, None, 1.0), "line")),
        "tokens",
    )


def test_a_time_chart_has_a_focusable_point_with_a_tip_per_label() -> None:
    svg = str(chart().svg())
    assert 'viewBox="0 0 640 220"' in svg and "style=" not in svg  # CSP: no inline style
    tips = re.findall(r'<g class="point" tabindex="0" data-tip="([^"]+)"', svg)
    assert tips == [
        "1970-01-01 · Input 10 · Output 5",
        "1970-01-02 · Input 0 · Output —",
        "1970-01-03 · Input 30 · Output 1",
    ]
    assert svg.count("<title>") == 3 and '<title id="t-title">Tokens per day' in svg
    # the gap in Output splits its line in two runs, each its own path
    assert len(re.findall(r'class="s1 line stroke" d="M[^"]*"', svg)) == 2
    assert chart().rows()[2] == ("1970-01-03", ["30", "1"])


def test_labels_are_escaped_and_bars_scale_to_the_largest() -> None:
    bars = BarChart("m", "Cost per model", ("<b>x</b>", "y"), (200.0, 100.0), "micros")
    svg = str(bars.svg())
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    widths = [
        float(w) for w in re.findall(r'class="s\d bar" x="170" y="[^"]+" width="([^"]+)"', svg)
    ]
    assert widths[0] == pytest.approx(2 * widths[1])


def test_hour_labels() -> None:
    labels, ticks = bucket_labels([0, 3600], "hour")
    assert labels == ("1970-01-01 00:00 UTC", "1970-01-01 01:00 UTC")
    assert ticks == ("01-01", "01:00")


def test_presets_and_intervals() -> None:
    day = parse_range(QueryParams("range=24h"), NOW)
    assert (day.end - day.start, day.interval, day.preset) == (86_400, "hour", "24h")
    month = parse_range(QueryParams(""), NOW)
    assert (month.preset, month.interval) == ("30d", "day")
    # Whole UTC days ending with today, so the daily rollups answer the range alone.
    assert month.start == datetime(2026, 2, 14, tzinfo=UTC).timestamp()
    assert month.end == datetime(2026, 3, 16, tzinfo=UTC).timestamp()
    assert (month.from_value, month.to_value) == ("2026-02-14", "2026-03-15")


def test_dates_are_utc_days_with_to_inclusive() -> None:
    r = parse_range(QueryParams("from=2026-03-01&to=2026-03-02"), NOW)
    assert r.start == datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    assert r.end == datetime(2026, 3, 3, tzinfo=UTC).timestamp()
    assert r.interval == "hour"  # two days
    today = parse_range(QueryParams("from=2026-03-10"), NOW)
    assert today.end == datetime(2026, 3, 16, tzinfo=UTC).timestamp()
    assert today.interval == "day" and today.to_value == "2026-03-15"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("range=1y", "range"),
        ("from=March", "from"),
        ("to=2026-02-30", "to"),
        ("from=2026-03-05&to=2026-03-01", "from"),
        ("from=2026-04-01", "from"),
        ("from=2020-01-01&to=2026-03-01", "from"),
    ],
)
def test_bad_ranges_name_their_field(query: str, param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_range(QueryParams(query), NOW)
    assert caught.value.param == param


def test_a_filter_error_keeps_the_date_range() -> None:
    # A preset stands for its dates; typed dates stay as typed, even the wrong ones.
    assert kept_range(QueryParams("range=7d&status=nope"), NOW) == {
        "from": "2026-03-09",
        "to": "2026-03-15",
    }
    assert kept_range(QueryParams("from=2026-03-10&to=2026-03-01"), NOW) == {
        "from": "2026-03-10",
        "to": "2026-03-01",
    }
