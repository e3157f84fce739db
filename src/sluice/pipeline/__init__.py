"""Use cases of the data plane: validate, route, call, relay, account. Orchestration only."""
