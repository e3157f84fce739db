"""The usage row is built once, from the request's arrival and its outcome; the pipeline's
modules import one another in one direction only."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from sluice.auth.principal import Principal
from sluice.errors import BadRequest
from sluice.observability.tracing import Trace
from sluice.pipeline.context import Arrival
from sluice.pipeline.outcome import Outcome, disconnected, usage_row
from sluice.types import Endpoint, ProviderRequest, Usage
from sluice.usage.bodies import BodyCapture
from sluice.usage.event import UsageEvent

PIPELINE = Path(__file__).resolve().parents[2] / "src" / "sluice" / "pipeline"


def _arrival() -> Arrival:
    principal = Principal("key_a", "k", user_id="u", team_id="t", org_id="o")
    trace = Trace("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01")
    return Arrival("req_1", 1700000000.0, 0.0, "chat", principal, trace)


def test_every_row_field_comes_from_the_arrival_or_the_outcome() -> None:
    req = ProviderRequest(Endpoint.CHAT, {"model": "m", "user": "end"}, b"", "m")
    outcome = Outcome(
        BadRequest("nope", param="max_tokens"),
        True,
        Usage(7, 3, 2, 1, estimated=True, units=2.5, unit_kind="audio_seconds"),
        42,
        2,
        ("p/a: provider_error",),
        "p",
        "p/b",
        "up-b",
        True,
        12.5,
        30.0,
        "hit",
        99,
    )
    capture = BodyCapture(10)
    row = usage_row(_arrival(), outcome, request=req, want_metadata=True, bodies=capture)
    expected = {
        "request_id": "req_1",
        "created_at": 1700000000.0,
        "endpoint": "chat",
        "key_id": "key_a",
        "model": "m",
        "provider": "p",
        "deployment": "p/b",
        "upstream_model": "up-b",
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "cached_tokens": 2,
        "cache_write_tokens": 1,
        "tokens_estimated": True,
        "ttft_ms": 12.5,
        "status": 400,
        "error_kind": "caller_bad_request",
        "error_message": "nope",
        "error_param": "max_tokens",
        "streamed": True,
        "partial": True,
        "end_user": "end",
        "attempts": 2,
        "attempt_errors": ["p/a: provider_error"],
        "cost_micros": 42,
        "user_id": "u",
        "team_id": "t",
        "org_id": "o",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "parent_span": "00f067aa0ba902b7",
        "trace_flags": "01",
        "upstream_ms": 30.0,
        "want_metadata": True,
        "bodies": capture,
        "cache": "hit",
        "cost_saved_micros": 99,
        "units": 2.5,
        "unit_kind": "audio_seconds",
    }
    names = {f.name for f in fields(UsageEvent)}
    assert names == {*expected, "latency_ms", *MCP_ONLY, *BATCH_ONLY}
    assert all(getattr(row, name) == fields_default(name) for name in MCP_ONLY + BATCH_ONLY)
    assert {name: getattr(row, name) for name in expected} == expected
    assert row.latency_ms > 0


MCP_ONLY = ("mcp_server", "mcp_tool", "bytes_in", "bytes_out", "rpc_error")
"""Fields only MCP rows fill (``sluice.mcp``); a model request leaves their defaults."""
BATCH_ONLY = ("batch_id",)
"""Set by the batch worker on its lines' rows (``sluice.batches.lines``), after the row is
built."""


def fields_default(name: str) -> object:
    return next(f.default for f in fields(UsageEvent) if f.name == name)


def test_a_request_refused_before_parsing_has_an_empty_row() -> None:
    row = usage_row(_arrival(), Outcome(disconnected()), request=None, want_metadata=False)
    assert (row.status, row.error_kind, row.model, row.end_user) == (
        499,
        "client_disconnected",
        None,
        None,
    )
    assert (row.attempts, row.attempt_errors, row.cost_micros, row.prompt_tokens) == (
        0,
        None,
        None,
        0,
    )
    assert (row.provider, row.tokens_estimated, row.partial) == (None, False, False)


def test_each_pipeline_module_imports_alone() -> None:
    """No import cycle, hidden behind ``TYPE_CHECKING`` or not: every module imports first
    in a fresh interpreter, and none imports the edge or the composition root."""
    modules = sorted(
        "sluice.pipeline." + p.stem for p in PIPELINE.glob("*.py") if p.stem != "__init__"
    )
    for module in modules:
        source = (PIPELINE / (module.rsplit(".", 1)[1] + ".py")).read_text()
        assert "TYPE_CHECKING" not in source, module
        for banned in ("sluice.api", "sluice.console", "sluice.lifespan", "sluice.app"):
            assert f"from {banned}" not in source and f"import {banned}" not in source, module
    # One fresh interpreter tries every order: before each first import it forgets every
    # ``sluice`` module, so the package imports from scratch as in a new process (third-party
    # modules stay loaded: they cannot take part in a cycle of ours).
    script = "\n".join(
        [
            "import importlib, sys",
            f"modules = {modules!r}",
            "for first in modules:",
            "    for name in [n for n in sys.modules if n == 'sluice' or n.startswith('sluice.')]:",
            "        del sys.modules[name]",
            "    try:",
            "        importlib.import_module(first)",
            "        for m in modules:",
            "            importlib.import_module(m)",
            "    except Exception as exc:",
            "        sys.exit(f'importing {first} first: {exc!r}')",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
