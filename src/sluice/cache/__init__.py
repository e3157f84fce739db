"""The response cache: exact and semantic (docs/caching.md)."""
