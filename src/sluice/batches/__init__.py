"""Batches (``/v1/batches``): validation at create, the service the API, console and CLI
share, and the worker that runs lines through the pipeline (docs/batches.md)."""
