"""What a routing policy sees: plain facts about the request and each candidate deployment.

The pipeline fills these from what it already knows (the principal, the budget store, the
health tracker, the config); nothing here is a Cedar type. Integers only: Cedar has no
floats, so rates are basis points, money is micro-dollars and ``-1`` means "not known".
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from sluice.config.providers import ProviderConfig
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.registry import PROVIDER_TYPES

SLA_HEADER = "x-sluice-latency-sla-ms"
"""Request header carrying the caller's latency SLA in whole milliseconds."""

MAX_SLA_MS = 86_400_000
"""Largest SLA accepted in the header (one day)."""

UNKNOWN = -1
"""The value of a figure that is not known (no samples yet, no budget, no header)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentFacts:
    """One candidate deployment as a policy sees it (``resource`` in Cedar).

    Static facts come from the config; health figures from the live health tracker.
    """

    key: str
    """Deployment key (``Deployment.key``); the Cedar entity id."""
    provider: str
    """Provider name from the config."""
    provider_type: str
    """Provider registry type (``ProviderConfig.type``)."""
    model: str
    """Upstream model name."""
    public_model: str
    """The canonical public model this deployment serves."""
    self_hosted: bool = False
    """Runs on infrastructure the operator owns; see :func:`is_self_hosted`."""
    priority: int = 0
    samples: int = 0
    """Requests behind the health figures (the tracker's window); ``0``: no data yet."""
    error_rate_bp: int = UNKNOWN
    """Failure share in basis points (``500`` = 5 %); ``-1`` without samples."""
    latency_ms: int = UNKNOWN
    """Average (EWMA) total latency in milliseconds; ``-1`` without samples."""
    ttft_ms: int = UNKNOWN
    """Average (EWMA) time to first token in milliseconds; ``-1`` without samples."""
    in_flight: int = 0
    """Requests running on this deployment now (this replica)."""
    input_micros_per_mtok: int = UNKNOWN
    """Input price in micro-dollars per million tokens; ``-1`` when unknown."""
    output_micros_per_mtok: int = UNKNOWN
    """Output price in micro-dollars per million tokens; ``-1`` when unknown."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestFacts:
    """The request as a policy sees it: ``principal`` and ``context`` in Cedar."""

    key_id: str
    model: str
    """The canonical public model requested (aliases resolved)."""
    user_id: str | None = None
    team_id: str | None = None
    org_id: str | None = None
    teams: frozenset[str] = frozenset()
    """Every team the key's owner belongs to (``Principal.teams``)."""
    budget_remaining_micros: int | None = None
    """Money left in the tightest budget of the principal; ``None``: no budget applies."""
    budget_limit_micros: int | None = None
    """That budget's limit; with the remainder it gives ``budget_remaining_pct``."""
    sla_ms: int | None = None
    """Latency SLA from :data:`SLA_HEADER` (see :func:`parse_sla_header`); ``None``: none."""

    @property
    def budget_remaining_pct(self) -> int:
        """Remaining budget in whole percent (0-100, rounded down); ``-1``: no budget."""
        remaining, limit = self.budget_remaining_micros, self.budget_limit_micros
        if remaining is None or limit is None or limit <= 0:
            return UNKNOWN
        return max(0, min(100, remaining * 100 // limit))


def parse_sla_header(value: str | bytes | None) -> int | None:
    """The SLA in milliseconds from the header value; ``None`` when absent.

    A value that is not a whole number between 1 and :data:`MAX_SLA_MS` is the caller's
    mistake: a 400 naming the header, never a silently ignored SLA.
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_SLA_MS:
        raise GatewayError(
            ErrorKind.CALLER_BAD_REQUEST,
            f"header {SLA_HEADER} must be a whole number of milliseconds "
            f"between 1 and {MAX_SLA_MS}",
            param=SLA_HEADER,
            code="invalid_latency_sla",
        )
    return int(text)


def basis_points(rate: float) -> int:
    """A share (0.0-1.0) as integer basis points (0-10000)."""
    return max(0, min(10_000, round(rate * 10_000)))


def micros_per_mtok(usd_per_mtok: float | None) -> int:
    """A price in USD per million tokens as integer micro-dollars; ``-1`` when unknown."""
    return UNKNOWN if usd_per_mtok is None else round(usd_per_mtok * 1_000_000)


_PRIVATE_SUFFIXES = (
    ".localhost",
    ".local",
    ".internal",
    ".lan",
    ".home.arpa",
    ".svc",
)


def is_self_hosted(config: ProviderConfig, *, override: bool | None = None) -> bool:
    """Whether a provider runs on the operator's own machines (``resource.self_hosted``).

    ``override`` (an explicit config setting) wins. Otherwise: a type the registry serves
    in process (``ProviderSpec.in_process``), or an API root (the configured ``base_url``,
    else the type's default) on a loopback, private or link-local address, ``localhost``, a
    single-label host name (a compose or cluster service such as ``http://inference:8000``)
    or a private DNS suffix (``.local``, ``.internal``, ``.svc``, ...). Decided from the
    config alone: no DNS lookup.
    """
    if override is not None:
        return override
    spec = PROVIDER_TYPES.get(config.type)
    if spec is not None and spec.in_process:
        return True
    url = config.base_url
    if url is None:
        url = spec.options.default_base_url if spec and spec.options else None
    host = urlsplit(url).hostname if url else None
    return host is not None and _private_host(host)


def _private_host(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = host.lower().rstrip(".")
        return name == "localhost" or "." not in name or name.endswith(_PRIVATE_SUFFIXES)
    return address.is_loopback or address.is_private or address.is_link_local
