"""Per-deployment stats: in flight, latency averages, error rate over a sliding window."""

from __future__ import annotations

import pytest

from sluice.clock import FakeClock
from sluice.routing.health import DeploymentStats, Stats, WindowCounter

K = "prov/model"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stats(clock: FakeClock) -> DeploymentStats:
    return DeploymentStats(clock, alpha=0.2, window_s=60, stale_s=300)


def test_an_unknown_deployment_is_neutral(stats: DeploymentStats) -> None:
    assert stats.snapshot(K) == Stats()
    assert stats.snapshot(K) == Stats(0, None, None, 0.0, 0, None)
    assert stats.in_flight(K) == 0
    assert stats.ewma(K) == (None, None)


def test_in_flight_counts_begun_and_not_ended(stats: DeploymentStats) -> None:
    stats.begin(K)
    stats.begin(K)
    assert stats.in_flight(K) == 2
    stats.end(K, ok=True, latency_ms=10)
    assert stats.snapshot(K).in_flight == 1
    stats.end(K, ok=False, latency_ms=10)
    stats.end(K, ok=False, latency_ms=10)  # an end without a begin never goes below zero
    assert stats.in_flight(K) == 0


def test_the_latency_average_is_seeded_then_moves_by_alpha(stats: DeploymentStats) -> None:
    stats.end(K, ok=True, latency_ms=100)
    assert stats.snapshot(K).latency_ewma_ms == 100
    stats.end(K, ok=True, latency_ms=200)
    assert stats.snapshot(K).latency_ewma_ms == pytest.approx(120)  # 100 + 0.2 * (200 - 100)
    stats.end(K, ok=True, latency_ms=20)
    assert stats.snapshot(K).latency_ewma_ms == pytest.approx(100)  # 120 + 0.2 * (20 - 120)
    assert stats.ewma(K) == (None, pytest.approx(100))


def test_a_constant_latency_is_its_own_average_and_a_step_converges(
    stats: DeploymentStats,
) -> None:
    for _ in range(5):
        stats.end(K, ok=True, latency_ms=50)
    assert stats.snapshot(K).latency_ewma_ms == pytest.approx(50)
    for _ in range(20):
        stats.end(K, ok=True, latency_ms=150)
    # 150 - 100 * 0.8**20
    assert stats.snapshot(K).latency_ewma_ms == pytest.approx(150 - 100 * 0.8**20)


def test_time_to_first_token_is_averaged_separately(stats: DeploymentStats) -> None:
    stats.end(K, ok=True, latency_ms=1000, ttft_ms=300)
    stats.end(K, ok=True, latency_ms=500)  # not a stream: the TTFT average keeps its value
    stats.end(K, ok=True, latency_ms=1000, ttft_ms=400)
    snap = stats.snapshot(K)
    assert snap.ttft_ewma_ms == pytest.approx(320)
    assert snap.latency_ewma_ms == pytest.approx(900 + 0.2 * (1000 - 900))
    assert stats.ewma(K) == (pytest.approx(320), pytest.approx(920))


def test_failures_count_but_are_not_averaged(stats: DeploymentStats, clock: FakeClock) -> None:
    stats.end(K, ok=True, latency_ms=100, ttft_ms=50)
    clock.advance(5)
    stats.end(K, ok=False, latency_ms=1, ttft_ms=1)
    snap = stats.snapshot(K)
    assert (snap.latency_ewma_ms, snap.ttft_ewma_ms) == (100, 50)
    assert snap.last_error_at == clock.now()
    assert snap.error_rate == 0.5
    assert snap.requests_in_window == 2


def test_the_error_rate_window_slides(stats: DeploymentStats, clock: FakeClock) -> None:
    for _ in range(3):
        stats.end(K, ok=True, latency_ms=1)
    stats.end(K, ok=False, latency_ms=1)
    assert stats.snapshot(K).error_rate == 0.25

    clock.advance(30)
    stats.end(K, ok=False, latency_ms=1)
    snap = stats.snapshot(K)
    assert (snap.requests_in_window, snap.error_rate) == (5, pytest.approx(0.4))

    clock.advance(31)  # t=61: the first four left the window, the one at t=30 stays
    snap = stats.snapshot(K)
    assert (snap.requests_in_window, snap.error_rate) == (1, 1.0)

    clock.advance(60)
    snap = stats.snapshot(K)
    assert (snap.requests_in_window, snap.error_rate) == (0, 0.0)
    assert snap.last_error_at is not None, "the last error is remembered past the window"


def test_stale_averages_are_reported_as_no_data_and_restart(
    stats: DeploymentStats, clock: FakeClock
) -> None:
    stats.end(K, ok=True, latency_ms=900, ttft_ms=800)
    clock.advance(300)
    assert stats.ewma(K) == (800, 900), "300 s is not yet stale"
    clock.advance(1)
    assert stats.ewma(K) == (None, None)
    assert stats.snapshot(K).latency_ewma_ms == 900, "health still shows the last average"

    stats.end(K, ok=True, latency_ms=100)
    assert stats.ewma(K) == (None, 100), "a fresh sample starts the average again"


def test_window_counter_buckets() -> None:
    window = WindowCounter(60)  # 6 s buckets
    window.add(0.0, ok=True)
    window.add(5.9, ok=False)
    window.add(6.0, ok=False)
    assert window.totals(6.0) == (3, 2)
    assert window.totals(59.9) == (3, 2)
    assert window.totals(60.0) == (1, 1), "bucket [0, 6) left the window"
    assert window.totals(66.0) == (0, 0)
    window.add(66.0, ok=True)
    window.clear()
    assert window.totals(66.0) == (0, 0)


@pytest.mark.parametrize("kwargs", [{"alpha": 0}, {"alpha": 1.5}, {"window_s": 0}, {"stale_s": -1}])
def test_bad_settings_are_refused(clock: FakeClock, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        DeploymentStats(clock, **kwargs)
