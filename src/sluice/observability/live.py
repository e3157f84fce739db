"""Counters the request path keeps for the metrics sampler: plain integers, no locks
(one event loop per process)."""

from __future__ import annotations


class Live:
    """What is in flight in this process now."""

    __slots__ = ("streams",)

    def __init__(self) -> None:
        self.streams = 0
        """Streams whose headers went out and that have not ended yet."""
