# sandgraph: the README's two commands are `make run` and `make test`.
# Everything they need (guest runtimes, test tools) is installed through the ordinary
# package clients (pip, cargo) into build/ and target/.

PYTHON      ?= python3
GUEST_DIR   := build/guest
TEST_VENV   := build/test-venv
TEST_PY     := $(TEST_VENV)/bin/python
CARGO       ?= cargo
# The test Neo4j listens here (127.0.0.1 only), away from any Neo4j of the user's own.
NEO4J_TEST_PORT ?= 17687

.PHONY: all guest build release run mcp test test-rust test-python test-guest test-soak soak lint fmt bench clean

all: build

## guest: build the Python component and fetch the QuickJS module and JSHint (idempotent;
## SANDGRAPH_GUEST_REQUIREMENTS=FILE adds an operator's pure-Python packages, docs/packages.md)
guest:
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends npm; }
	sandbox/build.sh $(GUEST_DIR)

## build: guest + debug binary
build: guest
	$(CARGO) build --locked

release: guest
	$(CARGO) build --locked --release

## run: serve REST + MCP on 127.0.0.1:8000 with the embedded store
run: release
	./target/release/sandgraph serve

## mcp: speak MCP on stdio (for desktop clients)
mcp: release
	./target/release/sandgraph mcp

$(TEST_VENV)/.installed: tests/python/requirements.txt
	$(PYTHON) -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r tests/python/requirements.txt
	touch $@

TS_CLIENT_STAMP := tests/typescript/node_modules/.installed
$(TS_CLIENT_STAMP): tests/typescript/package.json tests/typescript/package-lock.json
	cd tests/typescript && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian packages the tests use, installed with apt-get when missing: promtool checks
# deploy/alerts.yml; the console's browser test drives Debian's chromium through Debian's
# chromedriver (a driver that downloads its own browser does not work offline).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
.PHONY: test-tools
test-tools:
	@command -v promtool >/dev/null && command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			prometheus chromium chromium-driver; }

## test: every test (Rust unit + integration, guest logic, MCP clients, the console in a
## browser) and the lint, with a real Neo4j fetched from Maven Central and started for the
## run (stopped even on failure). One compile, in the release profile `make run` built:
## the server the tests spawn is the one `make run` serves, no dependency is compiled
## twice, and clippy lints our own crates inside that compile (scripts/clippy-wrapper).
test: guest $(TEST_VENV)/.installed $(TS_CLIENT_STAMP) test-tools clippy-driver
	$(CARGO) fmt --check
	$(TEST_CARGO) build --locked --release --all-targets
	scripts/neo4j/neo4j.sh fetch
	NEO4J_TX_TIMEOUT=5s scripts/neo4j/neo4j.sh run --port $(NEO4J_TEST_PORT) --http-port 0 -- $(MAKE) test-all

# The cargo that `make test` uses: clippy-driver (with -D warnings) stands in for rustc on
# our crates only. A plain `cargo build --release` afterwards recompiles just our crates.
TEST_CARGO = RUSTC_WORKSPACE_WRAPPER=$(CURDIR)/scripts/clippy-wrapper $(CARGO)
TEST_BIN := target/release/sandgraph

.PHONY: clippy-driver
clippy-driver:
	@command -v clippy-driver >/dev/null || rustup component add clippy

test-all: test-rust test-neo4j-outage test-guest test-python test-load test-soak

## ~20 s of the Locust load test against the release server; fails on any error.
test-load:
	SANDGRAPH_BIN=$(TEST_BIN) locust-compatible/run_headless.sh local 20 8 4

test-rust:
	$(TEST_CARGO) test --locked --release

## Stops and restarts the shared Neo4j, so it runs alone, after everything else using it.
test-neo4j-outage:
	$(TEST_CARGO) test --locked --release --test neo4j_outage -- --ignored --test-threads=1

## The 2-minute soak (tests/soak.rs): Locust with faults (Neo4j stopped twice, the server
## SIGKILLed once, a spinner flood); every acknowledged call must be in Neo4j. It stops
## the shared Neo4j too, so it runs alone.
SOAK_SECONDS ?= 120
test-soak:
	SOAK_SECONDS=$(SOAK_SECONDS) $(TEST_CARGO) test --locked --release --test soak -- --ignored --nocapture

## soak: the 10-minute soak on a release build, with a Neo4j of its own; the per-phase
## table is written to target/bench-results/soak.md.
soak: guest
	$(TEST_CARGO) test --locked --release --test soak --no-run
	scripts/neo4j/neo4j.sh fetch
	NEO4J_TX_TIMEOUT=5s scripts/neo4j/neo4j.sh run --port 17689 --http-port 0 --data build/neo4j-soak -- \
		env SOAK_SECONDS=600 SOAK_USERS=16 $(TEST_CARGO) test --locked --release --test soak -- --ignored --nocapture

test-guest: $(TEST_VENV)/.installed
	PYTHONPATH=$(GUEST_DIR)/python-site $(TEST_PY) -m pytest -q -p no:cacheprovider sandbox/guest/test_guest_logic.py

## Screenshots of the console (desktop and phone width) land in target/console-screenshots.
test-python: $(TEST_VENV)/.installed $(TS_CLIENT_STAMP) test-tools
	SANDGRAPH_BIN=$(TEST_BIN) $(TEST_PY) -m pytest -q -p no:cacheprovider tests/python

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

## bench: every benchmark in one run, baselines included (see docs/benchmarks.md):
## criterion (sandbox + naive CPython-WASI baseline), the fresh run's phases (profile),
## HTTP load (+ subprocess and ruff-subprocess baselines),
## toolbox (lint/tests/generate, cache hits), storage (with a real Neo4j), then the plot.
bench: guest
	mkdir -p target/bench-results
	$(CARGO) bench --locked --bench sandbox
	$(CARGO) bench --locked --bench profile
	$(CARGO) bench --locked --bench http_load
	$(CARGO) bench --locked --bench http_load -- --server-env SANDGRAPH_POOLING=false \
		--out http_load_unpooled.md py_c1 py_c8 sleep64
	$(CARGO) bench --locked --bench toolbox | tee target/bench-results/toolbox.md
	scripts/neo4j/neo4j.sh run --port 17688 --http-port 0 --data build/neo4j-bench -- \
		sh -c '$(CARGO) bench --locked --bench store | tee target/bench-results/store.md && \
		$(CARGO) bench --locked --bench console | tee target/bench-results/console.md'
	$(PYTHON) scripts/plot_benchmarks.py target/bench-results docs/benchmarks-latency.svg

clean:
	rm -rf build target/test-compiled-guests
