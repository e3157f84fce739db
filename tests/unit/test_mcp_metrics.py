"""MCP usage rows feed the ``sluice_mcp_*`` series per server and tool, and never the model
series; tool labels are bounded per server."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from sluice.observability import mcp_metrics
from sluice.observability.metrics import Metrics
from sluice.usage.event import MCP_SESSION, MCP_TOOL, UsageEvent


def _call(tool: str, *, latency_ms: float = 100.0, **fields: object) -> UsageEvent:
    e = UsageEvent(
        "r",
        0.0,
        MCP_TOOL,
        "k1",
        None,
        latency_ms=latency_ms,
        mcp_server="everything",
        mcp_tool=tool,
        bytes_in=10,
        bytes_out=300,
    )
    for name, value in fields.items():
        setattr(e, name, value)
    return e


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_tool_calls_errors_latency_and_bytes_per_server_and_tool() -> None:
    metrics = Metrics(model_label=lambda n: n, provider_of={})
    chat = UsageEvent("c", 0.0, "chat", "k1", "m", provider="p", latency_ms=50)
    metrics.observe(
        [
            _call("echo", latency_ms=20),
            _call("echo", latency_ms=3000, rpc_error=-32603),
            _call("add", status=502, error_kind="provider_5xx"),
            UsageEvent("s", 0.0, MCP_SESSION, "k1", None, mcp_server="everything"),
            chat,
        ]
    )
    reg = metrics.registry
    calls = "sluice_mcp_tool_calls_total"
    assert _value(reg, calls, server="everything", tool="echo") == 2
    assert _value(reg, calls, server="everything", tool="add") == 1
    errors = "sluice_mcp_tool_errors_total"
    assert _value(reg, errors, server="everything", tool="echo") == 1
    assert _value(reg, errors, server="everything", tool="add") == 1
    hist = "sluice_mcp_tool_duration_seconds"
    assert _value(reg, f"{hist}_count", server="everything", tool="echo") == 2
    assert _value(reg, f"{hist}_sum", server="everything", tool="echo") == 3.02
    assert _value(reg, f"{hist}_bucket", server="everything", tool="echo", le="0.025") == 1
    assert _value(reg, "sluice_mcp_bytes_total", server="everything", direction="out") == 900
    assert _value(reg, "sluice_mcp_sessions_total", server="everything") == 1
    # The model series saw the chat request only.
    requests = [s for m in reg.collect() if m.name == "sluice_requests" for s in m.samples]
    assert [(s.labels["model"], s.value) for s in requests if s.name.endswith("_total")] == [
        ("m", 1.0)
    ]
    assert _value(reg, "sluice_request_duration_seconds_count", model="m", provider="p") == 1
    assert _value(reg, "sluice_request_duration_seconds_count", model="other", provider="") == 0
    text = metrics.render().decode()
    assert 'sluice_mcp_tool_calls_total{server="everything",tool="echo"} 2.0' in text


def test_tool_labels_are_bounded_per_server() -> None:
    registry = CollectorRegistry()
    m = mcp_metrics.McpMetrics(registry)
    names = [f"t{i}" for i in range(mcp_metrics.TOOLS_PER_SERVER + 5)]
    m.observe([_call(n) for n in names])
    seen = {
        s.labels["tool"]
        for metric in registry.collect()
        if metric.name == "sluice_mcp_tool_calls"
        for s in metric.samples
        if s.name.endswith("_total")
    }
    assert len(seen) == mcp_metrics.TOOLS_PER_SERVER + 1
    assert _value(registry, "sluice_mcp_tool_calls_total", server="everything", tool="other") == 5
