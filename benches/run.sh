#!/usr/bin/env bash
# The `bench` entry point (`make bench` calls this): ratewall and its peers (governor's direct
# limiter, a bare CAS loop) measured in one criterion run, then the ratio report against the
# project's targets, then the same ratios from interleaved rounds. Short warm-up and measurement times keep the whole run under ~3 minutes on a
# 2-core machine once built. Extra arguments go to criterion (e.g. a filter: `run.sh allow/`);
# the report then mixes in earlier results for the benchmarks not re-run.
# The report prints PASS/MISS per target but exits 0: benchmarks are reports, not tests.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo bench -p ratewall-benches --bench core -- \
    --warm-up-time 1 --measurement-time 3 --noplot "$@"

# The bench profile reuses the artifacts just built.
cargo run -q --profile bench -p ratewall-benches --bin ratios

# The same ratios from interleaved rounds (every subject once per round, back to back): robust to
# the machine's speed drifting between criterion's benchmarks. The targets are read on this one.
echo
cargo run -q --profile bench -p ratewall-benches --bin rounds 51
