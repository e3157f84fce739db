"""Persistence behind small repository protocols; one SQL implementation for SQLite and
PostgreSQL."""
