"""Usage accounting: one event per client request, written in batches off the request path."""
