# opsgate: `make run` serves on an embedded SQLite database with ./workflows loaded; `make test` runs every test.
CARGO ?= cargo
LISTEN ?= 127.0.0.1:50051
HTTP ?= 127.0.0.1:8080
DATABASE_URL ?= sqlite://data/opsgate.db

.PHONY: run test lint fmt build release bench soak

## run: start a development server (--insecure-dev: x-opsgate-actor says who acts) on $(LISTEN),
## the web pages on http://$(HTTP)/ and metrics on http://$(HTTP)/metrics,
## with $(DATABASE_URL) and the shipped workflows. Built with
## the workspace's feature set, so right after `make test` it starts without compiling again.
run:
	$(CARGO) build --workspace --bins
	$${CARGO_TARGET_DIR:-target}/debug/opsgate serve --insecure-dev --listen $(LISTEN) --http $(HTTP) --database-url $(DATABASE_URL) --workflows workflows

## test: the whole suite; PostgreSQL tests also run when OPSGATE_TEST_POSTGRES_URL is set
test:
	$(CARGO) test --workspace --all-targets
	@# The binaries as `make run` builds them (same features), so that it starts at once afterwards.
	$(CARGO) build --workspace --bins

## lint: formatting and clippy with warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## bench: measurements for docs/benchmarks.md (release build; PostgreSQL too when OPSGATE_TEST_POSTGRES_URL is set)
bench:
	$(CARGO) build --release -p opsgate-cli -p opsgate-bench
	./target/release/opsgate-bench workflow
	./target/release/opsgate-bench handover
	./target/release/opsgate-bench gates
	./target/release/opsgate-bench pages
	./target/release/opsgate-bench kpis
	./target/release/opsgate-bench notify
	./target/release/opsgate-bench heavy

## soak: the long fault tests: 25 SIGKILLs of a loaded server on SQLite and on PostgreSQL
## (OPSGATE_TEST_POSTGRES_URL, default the local server), every acknowledged batch checked for an
## fsync of the WAL under strace, then the hostile-input properties at 2,000+ cases
SOAK_POSTGRES_URL ?= $(or $(OPSGATE_TEST_POSTGRES_URL),postgres://postgres@127.0.0.1:5432/test)
soak:
	OPSGATE_TEST_POSTGRES_URL=$(SOAK_POSTGRES_URL) OPSGATE_CRASH_KILLS=25 \
		$(CARGO) test --release -p opsgate-cli --test crash -- --nocapture
	@command -v strace >/dev/null || { echo "make soak needs strace (apt-get install strace)"; exit 2; }
	OPSGATE_FSYNC_CHECK=1 $(CARGO) test --release -p opsgate-cli --test fsync -- --nocapture
	OPSGATE_HOSTILE_CASES=2000 $(CARGO) test --release -p opsgate-tests --test hostile
	OPSGATE_HOSTILE_CASES=20000 $(CARGO) test --release -p opsgate-domain properties

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p opsgate-cli
