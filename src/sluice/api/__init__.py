"""The HTTP edge: data-plane handlers (raw ASGI), health, and the admin API."""
