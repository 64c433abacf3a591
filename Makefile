# ratewall: one entry point per job. `make demo` runs the demo, `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo test test-rust test-nostd test-release test-loom lint bench

demo:
	$(CARGO) run --quiet -p ratewall --example demo

# Every test in every language.
test: test-nostd test-rust test-release test-loom

# The core must build with neither std nor alloc.
test-nostd:
	$(CARGO) build -p ratewall --no-default-features
	$(CARGO) build -p ratewall --no-default-features --features alloc

test-rust:
	$(CARGO) test --workspace

# Tests that need optimised code to run at full size (the 10-million-key flood).
test-release:
	$(CARGO) test -p ratewall --release --test flood

# Model-check every atomic state machine under loom (release: loom explores many interleavings).
test-loom:
	RUSTFLAGS="--cfg loom" $(CARGO) test -p ratewall --release --test loom --target-dir target/loom

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Criterion benches against governor and the bare CAS floor; prints the ratios.
bench:
	bash benches/run.sh
