#!/usr/bin/env bash
# Runs the C ABI overhead bench (criterion). Besides criterion's per-bench times it prints the
# overhead measured on paired, interleaved samples:
#   "C ABI overhead, paired samples: median +x.xx ns per check (...)"
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="${ROOT:-$(cd "$here/.." && pwd)}"
cargo bench --manifest-path "$root/ffi-c/Cargo.toml" -p ratewall-ffi --bench abi "$@"
echo "(target: the C ABI adds at most 5 ns per check)"
