"""Gateway keys, the principal a request runs as, and the in-process key cache."""
