"""Table definitions. Migrations (``migrations/versions``) create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

meta = Table(
    "sluice_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("preview", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    Column("models", JSON),
    Column("metadata", JSON, nullable=False),
)

usage = Table(
    "usage_events",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("endpoint", String(32), nullable=False),
    Column("key_id", String(32)),
    Column("model", String(200)),
    Column("provider", String(100)),
    Column("deployment", String(300)),
    Column("upstream_model", String(300)),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cached_tokens", Integer, nullable=False),
    Column("cache_write_tokens", Integer, nullable=False, server_default="0"),
    Column("tokens_estimated", Boolean, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float),
    Column("status", Integer, nullable=False),
    Column("error_kind", String(64)),
    Column("error_message", Text),
    Column("streamed", Boolean, nullable=False),
    Column("end_user", String(200)),
    Column("attempts", Integer, nullable=False),
    Column("cost_micros", BigInteger),
    Index("ix_usage_events_created_at", "created_at"),
    Index("ix_usage_events_key_id_created_at", "key_id", "created_at"),
)

responses = Table(
    "stored_responses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("model", String(200), nullable=False),
    Column("conversation", JSON, nullable=False),
    Column("body", JSON, nullable=False),
)

KEYS_VERSION = "keys_version"

HEAD_REVISION = "0002"
"""The newest migration; a test checks it against the migration scripts."""
