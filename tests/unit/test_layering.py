"""The import direction of DESIGN.md §4, over every module under ``src/sluice``.

Read statically (``ast``): every ``import`` counts, also those inside functions and under
``if TYPE_CHECKING:``, since a type-only edge is still a dependency a reader must follow.

``api``, ``console``, ``cli`` → ``pipeline`` → (``routing``, ``providers.base``, ``limits``,
``budgets``, ``cache``, ``usage``, ``storage.base``) → ``errors``, ``types``. Adapters import
only their protocol, ``errors`` and ``types``. Only the composition roots import concrete
backends. No import cycle between modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sluice.providers.registry import PROVIDER_TYPES

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "sluice"

# Known violations, (importing module, imported module) without the ``sluice.`` prefix, and
# known cycles: none today. The test fails on any violation or cycle not listed AND on any
# listed one that no longer occurs, so these lists can only shrink.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()

_FOUNDATION = {"errors", "types", "ids", "clock", "tokens", "tasks", "lifecycle", "settings", "sse"}
_DOMAIN = {
    "auth",
    "tenancy",
    "limits",
    "budgets",
    "usage",
    "storage.base",
    "storage.availability",
    "outage",
}

# Unit → the units it may import. A module's unit is the longest key that prefixes its
# dotted name (``storage.sql.tables`` → ``storage.sql``); imports inside one unit are free.
ALLOWED: dict[str, set[str]] = {
    # foundation: imports nothing of the gateway
    "errors": set(),
    "types": set(),
    "ids": set(),
    "clock": set(),
    "tokens": set(),
    "tasks": set(),
    "lifecycle": set(),
    "settings": set(),
    "sse": set(),
    "media_bytes": set(),  # what an uploaded audio or image file is, from its signature
    "": set(),  # sluice/__init__.py
    # the YAML model (reads secret refs through settings' one door to the environment)
    # the YAML model; it reads the provider type names from the registry table (data only)
    "config": {"settings", "providers.registry"},
    "credentials": {"errors", "config"},
    "storage.availability": {"errors"},
    "outage": {"clock", "storage.availability"},
    "bringup": {"clock", "lifecycle", "storage.availability"},
    # the provider seam and its table; adapters see their protocol, their config row, the
    # foundation (tokens: the mock's estimates; tasks: the mock upstream server's tasks)
    "providers.registry": set(),  # the table: data only
    "providers.build": {"config", "providers.base", "providers.batch_api", "providers.registry"},
    "providers.base": {"config", "settings", "types"},
    "providers.batch_api": {"providers.base", "types"},  # the provider batch API seam
    "providers": {"providers.base", "providers.registry", "config", "errors", "types"}
    | {"settings", "tokens", "tasks", "sse", "providers.batch_api"},
    # governance state
    "limits": {"clock", "errors", "ids", "types"},
    "budgets": {"clock", "errors", "ids", "types", "limits"},  # shares limits' Lua helpers
    "routing": {"clock", "config", "errors", "tasks", "limits", "providers.base"}
    | {"providers.registry", "providers.batch_api"},
    # identity and tenancy: one domain in two packages (tenancy uses key hashing and the
    # Principal; the key cache resolves principals through tenancy.resolve). The module
    # graph between them has no cycle (checked below).
    "auth": {"clock", "errors", "types", "settings", "storage.base", "tenancy", "limits"}
    | {"budgets"}
    | {"config"},  # auth.oidc: the identity providers of ``auth.oidc`` in the config file
    "tenancy": {"clock", "errors", "types", "storage.base", "auth", "limits", "budgets"},
    # usage rows and the repositories protocol: storage.base names the domain's records
    "usage": {"clock", "config", "outage", "storage.base", "storage.availability"},
    "storage.base": {"errors", "types", "storage", "auth", "tenancy", "usage", "scim"} | {"files"},
    "storage": {"errors", "types", "storage.base", "storage.availability", "files"},
    # the SQL backend implements the repositories of every aggregate
    "storage.sql": {"errors", "types", "clock", "ids", "storage", "storage.base"}
    | {"storage.availability", "auth", "tenancy", "usage", "alerts", "analytics"}
    | {"limits", "budgets"}  # rows → typed limit and budget settings
    | {"scim", "files"},
    "analytics": {"clock", "errors", "auth", "tenancy", "usage"},
    # SCIM provisioning: writes through the tenancy service (its link records: scim.store)
    "scim": _FOUNDATION | {"auth", "tenancy", "storage.base"},
    "alerts": {"clock", "config", "outage", "tasks", "auth", "budgets", "routing"},
    # the MCP gateway: upstream registry, transports, supervision; access and quotas (the
    # domain: auth's principal, the limiter)
    "mcp": _FOUNDATION | _DOMAIN | {"config"},
    # the response cache: answer stores and the semantic index (its entries are in the
    # database: storage.base); it embeds through a function the pipeline hands it
    # (pipeline.cache_embed), never importing the pipeline
    "cache": _FOUNDATION | {"config", "storage.base", "usage"},
    # files: the blob stores and the files service's seams
    "files": _FOUNDATION | _DOMAIN | {"config"},
    # documents in chat: extractors (their libraries imported on first use), the bounded
    # reader, one request's documents (file ids read through the files service's seam)
    "documents": {"errors", "types", "config", "auth"},
    "observability": {"config", "ids", "types", "settings", "routing", "usage"},
    # batches: validation, the service, the worker that runs lines through the pipeline
    "batches": _FOUNDATION
    | _DOMAIN
    | {"config", "observability", "routing", "pipeline", "files", "storage"}
    | {"providers.base", "providers.batch_api"},  # delegation to a provider's batch API
    # the data plane's use cases
    # (``mcp``: the Responses tool loop checks and opens external MCP servers, mcp.external)
    "pipeline": _FOUNDATION
    | {"config", "observability", "routing", "providers.base"}
    | {"auth", "limits", "budgets", "usage", "storage.base", "storage.availability", "mcp"}
    | {"cache", "files", "documents", "media_bytes"},
    # the HTTP edge: data plane and admin API; ``api.protocol`` (HTTP/1.1 parsing bounds) is
    # what ``sluice serve`` hands the server
    "api.protocol": set(),
    "api": _FOUNDATION
    | _DOMAIN
    | {"", "config", "credentials", "observability", "routing", "pipeline"}
    | {"analytics", "alerts", "control", "scim", "mcp", "cache", "files", "batches"},
    "console": _FOUNDATION
    | _DOMAIN
    | {"storage", "config", "credentials", "observability", "routing", "analytics", "alerts"}
    | {"control", "batches", "files"},
    # composition roots: the lifespan opens every resource, the app wires the edges to it,
    # the CLI runs commands over the lifespan's runtime
    "lifespan": _FOUNDATION
    | _DOMAIN
    | {"config", "credentials", "observability", "routing", "pipeline", "bringup"}
    | {"providers.base", "providers.build", "providers.registry", "storage.sql", "alerts"}
    | {
        "analytics",
        "runtime",
        "wiring",
        "background",
        "control",
        "mcp",
        "cache",
        "files",
        "batches",
        "documents",  # opens and closes the document reader (its thread pool)
    },
    "runtime": _FOUNDATION
    | _DOMAIN
    | {"config", "credentials", "observability", "routing", "pipeline", "providers.base"}
    | {"storage.sql", "mcp", "cache", "files", "documents"},
    "wiring": _FOUNDATION
    | _DOMAIN
    | {"config", "credentials", "observability", "routing", "pipeline", "runtime", "control"}
    | {"providers.base", "providers.build", "storage.sql", "alerts", "analytics", "scim"}
    | {"providers.batch_api"}
    | {"mcp", "cache", "files", "batches"},
    "background": _FOUNDATION | _DOMAIN | {"runtime", "control", "routing"},
    # control-plane services the admin API, the console and the CLI share
    "control": _FOUNDATION
    | _DOMAIN
    | {"storage", "config", "credentials", "observability", "routing", "analytics", "alerts"}
    | {"scim", "mcp", "cache", "files", "batches"},
    "app": _FOUNDATION
    | {"config", "lifespan", "runtime", "control", "pipeline", "api", "console", "observability"}
    | {"mcp", "cache", "files", "batches"},
    "cli_tenancy": _FOUNDATION | _DOMAIN | {"lifespan", "storage.sql", "control"},
    "cli_console": _FOUNDATION | _DOMAIN | {"cli_tenancy"},
    "cli_routing": _FOUNDATION | _DOMAIN | {"cli_tenancy", "lifespan", "routing", "control"},
    "cli_cache": _FOUNDATION,
    # checks ``sluice serve`` makes before it touches the database: the files the config
    # names (routing policies), the port
    "preflight": {"config", "routing"},
    "cli_catalog": _FOUNDATION | _DOMAIN | {"cli_tenancy", "config", "control"},
    "cli_sso": _FOUNDATION | _DOMAIN | {"config", "runtime", "storage.sql"},
    "cli_batches": _FOUNDATION | _DOMAIN | {"cli_tenancy", "batches", "config", "storage"},
    "cli": _FOUNDATION
    | _DOMAIN
    | {"", "config", "observability", "lifespan", "runtime", "bringup", "storage.sql"}
    | {"api.protocol"}
    | {
        "cli_console",
        "cli_routing",
        "cli_sso",
        "cli_tenancy",
        "cli_batches",
        "providers",
        "cli_cache",
        "preflight",
        "cli_catalog",
    },  # ``mock-upstream``
    "__main__": {"cli"},
}

# Concrete backends: only the composition roots (and their own package) import them. The
# provider adapters are the packages the registry's factories live in.
CONCRETE = {
    "storage.sql",
    "limits.memory",
    "limits.redis",
    "budgets.memory",
    "budgets.redis",
    "routing.breaker_redis",
    "cache.memory",
    "cache.redis",
    "files.local",
    "files.s3",
} | {".".join(spec.factory.partition(":")[0].split(".")[1:3]) for spec in PROVIDER_TYPES.values()}
ROOTS = {"app", "lifespan", "runtime", "wiring", "background", "cli", "cli_tenancy", "cli_routing"}
ROOTS |= {"cli_sso"}


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    line: int


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[Edge]:
    """Every ``sluice`` module ``name`` imports, as names without the ``sluice.`` prefix."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    if name == "":
        package = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sluice" or alias.name.startswith("sluice."):
                    yield Edge(name, _strip(alias.name), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(["sluice", *base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module != "sluice" and not module.startswith("sluice."):
                continue
            for alias in node.names:
                sub = _strip(f"{module}.{alias.name}")
                yield Edge(name, sub if sub in MODULES else _strip(module), node.lineno)


def _strip(module: str) -> str:
    return module.removeprefix("sluice").removeprefix(".")


def _graph() -> list[Edge]:
    return [edge for name, path in MODULES.items() for edge in _imports(name, path)]


def _unit(module: str) -> str:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in ALLOWED:
            return candidate
    if module == "":
        return ""
    raise AssertionError(f"sluice.{module} belongs to no unit of the layer table: add it")


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _violations(edges: list[Edge]) -> dict[tuple[str, str], Edge]:
    found: dict[tuple[str, str], Edge] = {}
    for edge in edges:
        source, target = _unit(edge.source), _unit(edge.target)
        direction = source != target and target not in ALLOWED[source]
        concrete = any(
            _within(edge.target, c) and not _within(edge.source, c.split(".")[0]) for c in CONCRETE
        ) and (edge.source.split(".")[0] not in ROOTS)
        if direction or concrete:
            found.setdefault((edge.source, edge.target), edge)
    return found


def _cycles(edges: list[Edge]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (or a module importing itself)."""
    succ: dict[str, set[str]] = {}
    for edge in edges:
        succ.setdefault(edge.source, set()).add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graph is a few hundred modules deep at most
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(succ.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in succ.get(node, ()):
                found.append(frozenset(component))

    for node in sorted(succ):
        if node not in index:
            visit(node)
    return found


def test_every_module_belongs_to_a_unit_of_the_table() -> None:
    assert len(MODULES) > 200  # the walk found the package
    for module in MODULES:
        _unit(module)
    for targets in ALLOWED.values():
        assert targets <= ALLOWED.keys(), targets - ALLOWED.keys()
    missing = {c for c in CONCRETE if not any(_within(m, c) for m in MODULES)}
    assert missing == set(), "a concrete backend moved: update CONCRETE"


def test_imports_follow_the_layer_table() -> None:
    found = _violations(_graph())
    new = [
        f"{MODULES[key[0]].relative_to(SRC)}:{found[key].line}: "
        f"{key[0]} → {key[1]} ({_unit(key[0])} may import {sorted(ALLOWED[_unit(key[0])])})"
        for key in sorted(found.keys() - KNOWN_VIOLATIONS)
    ]
    gone = sorted(KNOWN_VIOLATIONS - found.keys())
    assert new == [], "imports against DESIGN.md §4:\n" + "\n".join(new)
    assert gone == [], f"fixed, delete from KNOWN_VIOLATIONS: {gone}"


def test_no_import_cycle_between_modules() -> None:
    """Cycles over every edge but the known violations (a known violation's cycle is listed
    with it), including imports under ``TYPE_CHECKING``."""
    edges = [e for e in _graph() if (e.source, e.target) not in KNOWN_VIOLATIONS]
    found = set(_cycles(edges))
    new = sorted(sorted(c) for c in found - KNOWN_CYCLES)
    assert new == [], f"import cycles: {new}"
    assert found >= KNOWN_CYCLES, f"fixed, delete from KNOWN_CYCLES: {KNOWN_CYCLES - found}"


def test_the_checks_see_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    """The reader misses no kind of import the rules depend on."""
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from sluice.api import dataplane\n"
        "def f():\n"
        "    import sluice.lifespan\n"
        "    from . import router\n"
        "    from ..storage.sql import tables\n"
    )
    targets = {e.target for e in _imports("routing.probe", source)}
    assert targets == {"api.dataplane", "lifespan", "routing.router", "storage.sql.tables"}
    violations = _violations(
        [
            Edge("routing.router", "api.dataplane", 1),
            Edge("pipeline.relay", "limits.memory", 1),
            Edge("lifespan", "limits.memory", 1),
        ]
    )
    assert set(violations) == {
        ("routing.router", "api.dataplane"),
        ("pipeline.relay", "limits.memory"),
    }
    cycle = [Edge("a", "b", 1), Edge("b", "c", 1), Edge("c", "a", 1), Edge("c", "d", 1)]
    assert _cycles(cycle) == [frozenset({"a", "b", "c"})]
