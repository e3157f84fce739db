"""Observability: response metadata, Prometheus metrics, OpenTelemetry traces, JSON logs
with redaction. Nothing here runs at import; the lifespan wires it (``wiring.py``)."""
