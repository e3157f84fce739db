"""Usage analytics: summaries, breakdowns and series from the rollups, the request log from
the raw rows, each scoped to what the caller may see."""
