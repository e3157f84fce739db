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
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from sluice.usage import bounds as b
from sluice.usage import histogram

metadata = MetaData()

meta = Table(
    "sluice_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


def mcp_access_columns() -> tuple[Column[object], ...]:
    """MCP access lists, on every level (keys, users, teams, orgs); named as in
    :class:`~sluice.tenancy.model.Governance`."""
    return (
        Column("mcp_servers", JSON),
        Column("mcp_servers_exclude", JSON),
        Column("mcp_tools", JSON),
        Column("mcp_tools_exclude", JSON),
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
    Column("user_id", String(32)),
    Column("service_account_id", String(32)),
    Column("team_id", String(32)),
    Column("models_exclude", JSON),
    Column("limits", JSON),
    Column("budget", JSON),
    Column("previous_hash", String(64)),
    Column("previous_valid_until", DateTime(timezone=True)),
    *mcp_access_columns(),
    Index("ix_api_keys_user_id", "user_id"),
    Index("ix_api_keys_team_id", "team_id"),
)


def _governed(name: str, *columns: Column[object], indexes: tuple[Index, ...] = ()) -> Table:
    """A tenancy table: id, name, the governance columns every level carries, timestamps."""
    return Table(
        name,
        metadata,
        Column("id", String(32), primary_key=True),
        *columns,
        Column("models", JSON),
        Column("models_exclude", JSON),
        Column("limits", JSON),
        Column("budget", JSON),
        *mcp_access_columns(),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("archived_at", DateTime(timezone=True)),
        *indexes,
    )


orgs = _governed(
    "orgs",
    Column("name", String(200), nullable=False, unique=True),
    Column("default_team_id", String(32)),
)

teams = _governed(
    "teams",
    Column("org_id", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("managed_by", String(64)),
    indexes=(Index("ux_teams_org_name", "org_id", "name", unique=True),),
)

users = _governed(
    "users",
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("is_admin", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("max_keys", Integer),
    Column("password_hash", String(200)),
)

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("team_id", String(32), primary_key=True),
    Column("role", String(32), nullable=False),
    Index("ix_memberships_team_id", "team_id"),
)

org_roles = Table(
    "org_roles",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("org_id", String(32), primary_key=True),
    Column("role", String(32), nullable=False),
)

service_accounts = Table(
    "service_accounts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("team_id", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ux_service_accounts_team_name", "team_id", "name", unique=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target_type", String(50), nullable=False),
    Column("target_id", String(100), nullable=False),
    Column("org_id", String(32)),
    Column("before", JSON),
    Column("after", JSON),
    Index("ix_audit_log_org_id_at", "org_id", "at"),
)

usage = Table(
    "usage_events",
    metadata,
    Column("request_id", String(b.REQUEST_ID_CHARS), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("endpoint", String(b.ENDPOINT_CHARS), nullable=False),
    Column("key_id", String(b.ID_CHARS)),
    Column("model", String(b.MODEL_CHARS)),
    Column("provider", String(b.PROVIDER_CHARS)),
    Column("deployment", String(b.DEPLOYMENT_CHARS)),
    Column("upstream_model", String(b.DEPLOYMENT_CHARS)),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cached_tokens", Integer, nullable=False),
    Column("cache_write_tokens", Integer, nullable=False, server_default="0"),
    Column("tokens_estimated", Boolean, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float),
    Column("status", Integer, nullable=False),
    Column("error_kind", String(b.ERROR_KIND_CHARS)),
    Column("error_message", Text),
    Column("streamed", Boolean, nullable=False),
    Column("partial", Boolean, nullable=False, server_default=false()),
    Column("end_user", String(b.END_USER_CHARS)),
    Column("attempts", Integer, nullable=False),
    Column("attempt_errors", JSON),
    Column("cost_micros", BigInteger),
    Column("user_id", String(b.ID_CHARS)),
    Column("team_id", String(b.ID_CHARS)),
    Column("org_id", String(b.ID_CHARS)),
    Column("upstream_ms", Float),
    Column("trace_id", String(b.ID_CHARS)),
    Column("mcp_server", String(b.MCP_SERVER_CHARS)),
    Column("mcp_tool", String(b.MCP_TOOL_CHARS)),
    Column("bytes_in", BigInteger, nullable=False, server_default="0"),
    Column("bytes_out", BigInteger, nullable=False, server_default="0"),
    Column("rpc_error", Integer),
    Column("batch_id", String(b.BATCH_ID_CHARS)),
    Column("cache", String(b.CACHE_CHARS)),
    Column("cost_saved_micros", BigInteger),
    Column("units", Float),
    Column("unit_kind", String(b.UNIT_KIND_CHARS)),
    Index("ix_usage_events_created_at", "created_at"),
    Index(
        "ix_usage_events_mcp_server_created_at",
        "mcp_server",
        "created_at",
        sqlite_where=text("mcp_server IS NOT NULL"),
        postgresql_where=text("mcp_server IS NOT NULL"),
    ),
    Index(
        "ix_usage_events_batch_id",
        "batch_id",
        sqlite_where=text("batch_id IS NOT NULL"),
        postgresql_where=text("batch_id IS NOT NULL"),
    ),
    Index("ix_usage_events_key_id_created_at", "key_id", "created_at"),
    Index("ix_usage_events_user_id_created_at", "user_id", "created_at"),
    Index("ix_usage_events_team_id_created_at", "team_id", "created_at"),
    Index("ix_usage_events_org_id_created_at", "org_id", "created_at"),
)

dead_letters = Table(
    "usage_dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(b.REQUEST_ID_CHARS), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
    Column("event", Text, nullable=False),
    Column("error", Text, nullable=False),
)
"""Usage rows the database refused (see ``sluice.usage.dead_letters``): the event as JSON
(ASCII), the database's error, when the request was made and when the row was refused."""

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

provider_credentials = Table(
    "provider_credentials",
    metadata,
    Column("provider", String(100), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),
    Column("preview", String(16), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(400), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("message", Text, nullable=False),
    Column("scope", String(200)),
    Column("org_id", String(32)),
    Column("team_id", String(32)),
    Column("user_id", String(32)),
    Column("deployment", String(300)),
    Column("period", String(16)),
    Column("period_start", BigInteger),
    Column("threshold_pct", Integer),
    Column("limit_micros", BigInteger),
    Column("spent_micros", BigInteger),
    Column("details", JSON, nullable=False),
    Column("delivery", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("delivered_at", DateTime(timezone=True)),
    Index("ux_alerts_dedupe_key", "dedupe_key", unique=True),
    Index("ix_alerts_created_at", "created_at"),
    Index("ix_alerts_scope_created_at", "scope", "created_at"),
    Index("ix_alerts_deployment_id", "deployment", "id"),
)


def _rollup(name: str, *indexes: Index, dims: tuple[str, ...] | None = None) -> Table:
    """Usage summed per bucket (hour or day, epoch seconds) and ``dims`` (default: owner,
    model, provider); a missing dimension is ``""``. Kept forever (raw rows are purged)."""
    return Table(
        name,
        metadata,
        Column("bucket", BigInteger, primary_key=True),
        *(Column(d, String(200), primary_key=True) for d in dims or ROLLUP_DIMENSIONS),
        Column("requests", BigInteger, nullable=False),
        Column("errors", BigInteger, nullable=False),
        Column("prompt_tokens", BigInteger, nullable=False),
        Column("completion_tokens", BigInteger, nullable=False),
        Column("cached_tokens", BigInteger, nullable=False),
        Column("cache_write_tokens", BigInteger, nullable=False),
        Column("cost_micros", BigInteger, nullable=False),
        Column("latency_ms_sum", Float, nullable=False),
        Column("ttft_ms_sum", Float, nullable=False),
        Column("ttft_count", BigInteger, nullable=False),
        *(Column(c, BigInteger, nullable=False) for c in LATENCY_COLUMNS),
        *indexes,
    )


ROLLUP_DIMENSIONS = ("org_id", "team_id", "user_id", "key_id", "model", "provider")
LATENCY_COLUMNS = histogram.COLUMNS
"""One column per latency bucket (``sluice.usage.histogram``)."""

OWNER_DIMENSIONS = ("org_id", "team_id", "user_id", "key_id")
MODEL_DIMENSIONS = ("org_id", "model", "provider")


def _by_owner(name: str) -> tuple[Index, ...]:
    """The indexes that serve a query scoped to one org, team, user or key."""
    return tuple(Index(f"ix_{name}_{d}_bucket", d, "bucket") for d in OWNER_DIMENSIONS)


rollup_hourly = _rollup("usage_rollup_hourly", *_by_owner("usage_rollup_hourly"))
rollup_daily = _rollup("usage_rollup_daily", *_by_owner("usage_rollup_daily"))

# Coarser copies of the same sums, so a dashboard reads few rows: per org and model (no
# owner below the org; unscoped and org-scoped totals, series and model breakdowns), per org
# and team (team breakdowns, team-scoped series) and per owner without model (owner
# breakdowns, owner-scoped totals by day).
rollup_hourly_models = _rollup("usage_rollup_hourly_models", dims=MODEL_DIMENSIONS)
rollup_daily_models = _rollup("usage_rollup_daily_models", dims=MODEL_DIMENSIONS)
TEAM_DIMENSIONS = ("org_id", "team_id")
rollup_hourly_teams = _rollup("usage_rollup_hourly_teams", dims=TEAM_DIMENSIONS)
rollup_daily_teams = _rollup("usage_rollup_daily_teams", dims=TEAM_DIMENSIONS)
rollup_daily_owners = _rollup(
    "usage_rollup_daily_owners",
    *_by_owner("usage_rollup_daily_owners"),
    dims=OWNER_DIMENSIONS,
)
COARSE_ROLLUPS: tuple[tuple[Table, int], ...] = (
    (rollup_hourly_models, 3600),
    (rollup_daily_models, 86_400),
    (rollup_hourly_teams, 3600),
    (rollup_daily_teams, 86_400),
    (rollup_daily_owners, 86_400),
)
"""Coarse rollups and their bucket width; the full ones are ``rollup_hourly``/``_daily``."""

bodies = Table(
    "usage_bodies",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("org_id", String(32)),
    Column("team_id", String(32)),
    Column("request", Text, nullable=False),
    Column("response", Text, nullable=False),
    Column("truncated", Boolean, nullable=False),
    Index("ix_usage_bodies_created_at", "created_at"),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("method", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_console_sessions_user_id", "user_id"),
)

identities = Table(
    "identities",
    metadata,
    Column("issuer", String(512), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("user_id", String(32), nullable=False),
    Column("email", String(320)),
    Column("groups", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_sign_in_at", DateTime(timezone=True), nullable=False),
    Column("grants", JSON),
    Index("ix_identities_user_id", "user_id"),
)

# SCIM 2.0: the users and teams (SCIM groups) an identity provider manages in one org.
scim_users = Table(
    "scim_users",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("org_id", String(32), nullable=False),
    Column("external_id", String(200)),
    Column("name", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_scim_users_org_id", "org_id"),
)

scim_groups = Table(
    "scim_groups",
    metadata,
    Column("team_id", String(32), primary_key=True),
    Column("org_id", String(32), nullable=False),
    Column("external_id", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_scim_groups_org_id", "org_id"),
)

terms_acceptances = Table(
    "terms_acceptances",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    Index("ix_terms_acceptances_version", "version"),
)

# MCP servers admins manage through the admin API (the config's are not stored).
mcp_servers = Table(
    "mcp_servers",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Batches (``/v1/batches``) and their lines; times are epoch seconds (leases are compared
# in SQL, the same way on both dialects).
batches = Table(
    "batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("endpoint", String(32), nullable=False),
    Column("input_file_id", String(64), nullable=False),
    Column("completion_window", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("ending", String(16)),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("user_id", String(32)),
    Column("team_id", String(32)),
    Column("org_id", String(32)),
    Column("service_account_id", String(32)),
    Column("total", Integer, nullable=False),
    Column("completed", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("metadata", JSON),
    Column("times", JSON, nullable=False),
    Column("output_file_id", String(64)),
    Column("error_file_id", String(64)),
    Column("paused", String(16)),
    Column("resume_at", Float),
    Column("lease_owner", String(64)),
    Column("lease_until", Float),
    Column("delegate", String(200)),
    Column("upstream_id", String(200)),
    Column("upstream_status", String(32)),
    Column("reservation", JSON),
    Index("ix_batches_status", "status"),
    Index("ix_batches_user_id_created_at", "user_id", "created_at"),
    Index("ix_batches_team_id_created_at", "team_id", "created_at"),
)

batch_lines = Table(
    "batch_lines",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("custom_id", String(512), nullable=False),
    Column("body", Text, nullable=False),
    Column("done", Boolean, nullable=False),
    Column("owner", String(64)),
    Column("lease_until", Float),
    Column("claims", Integer, nullable=False),
    Column("failed", Boolean),
    Column("output", Text),
    UniqueConstraint("batch_id", "custom_id", name="uq_batch_lines_custom_id"),
    Index("ix_batch_lines_batch_id_done", "batch_id", "done"),
)

# Files uploaded through /v1/files (and written by batches); the bytes live in a blob store
# under the file's id. The owner is a user, or a team (service-account keys), else the key.
files = Table(
    "files",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("purpose", String(32), nullable=False),
    Column("filename", String(512), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("user_id", String(32)),
    Column("team_id", String(32)),
    Column("key_id", String(32), nullable=False),
    Index("ix_files_user_id_created_at", "user_id", "created_at"),
    Index("ix_files_team_id_created_at", "team_id", "created_at"),
    Index("ix_files_key_id_created_at", "key_id", "created_at"),
    Index("ix_files_expires_at", "expires_at"),
)


# The semantic response cache: prompts, their embeddings and answers (``sluice.cache.semantic``).
semantic_cache = Table(
    "semantic_cache",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("partition", String(64), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("endpoint", String(32), nullable=False),
    Column("params", String(128), nullable=False),
    Column("embedder", String(200), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_semantic_cache_partition_created", "partition", "created_at"),
    Index("ix_semantic_cache_expires", "expires_at"),
    Index("ix_semantic_cache_model_scope", "model", "scope"),
)

# Providers, models and price overrides admins manage through the admin API (the config
# file's entries are never stored). ``kind``: ``provider``, ``model`` or ``price``.
catalog_entries = Table(
    "catalog_entries",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

KEYS_VERSION = "keys_version"
CATALOG_VERSION = "catalog_version"
"""Bumped by every write to ``catalog_entries`` (each process rebuilds its model table)."""

HEAD_REVISION = "0025"
"""The newest migration; a test checks it against the migration scripts."""
