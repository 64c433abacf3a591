# ratewall: one entry point per job. `make demo` runs the demo, `make test` runs every test in
# every language (Rust, C, Python, Node, and the Redis backend against a real redis-server).
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo test test-nostd test-rust test-release test-loom test-redis test-c test-py test-node test-cross lint bench install

demo:
	$(CARGO) run --quiet -p ratewall --example demo

# Every test in every language.
test: test-nostd test-rust test-release test-loom test-redis test-c test-py test-node test-cross

# The core must build with neither std nor alloc.
test-nostd:
	$(CARGO) build -p ratewall --no-default-features
	$(CARGO) build -p ratewall --no-default-features --features alloc

# Every Rust test but the Redis backend's, which needs the server test-redis starts.
test-rust:
	$(CARGO) test --workspace --exclude ratewall-redis

# Tests that need optimised code to run at full size (the 10-million-key flood).
test-release:
	$(CARGO) test -p ratewall --release --test flood

# Model-check every atomic state machine under loom (release: loom explores many interleavings).
test-loom:
	RUSTFLAGS="--cfg loom" $(CARGO) test -p ratewall --release --test loom --target-dir target/loom

# The Redis backend against a redis-server started (and stopped) on a free loopback port.
test-redis:
	bash redis/ci.sh

# The C binding: header freshness, C tests (plain, ASan+UBSan, valgrind), pkg-config build,
# the demo server end to end.
test-c:
	bash ffi-c/ci.sh

# The Python binding: pip install ./py into a virtualenv, then pytest.
test-py:
	bash py/ci.sh

# The Node binding: npm ci (builds the addon), node --test, npm install from an app folder.
test-node:
	bash node/ci.sh

# C, Python and Node processes hammer one key through one Redis: together exactly the quota.
# Uses what test-c, test-py and test-node built.
test-cross:
	bash redis/cross/run.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Criterion benches against governor and the bare CAS floor; prints the ratios.
bench:
	bash benches/run.sh

# Installs the C header, libraries and ratewall.pc under PREFIX.
PREFIX ?= /usr/local
install:
	$(MAKE) -C ffi-c install PREFIX=$(PREFIX)
