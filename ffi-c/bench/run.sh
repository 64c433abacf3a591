#!/usr/bin/env bash
# Runs the C ABI overhead bench and prints the overhead per check (median of c_abi minus median
# of rust_direct, from criterion's estimates).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="${ROOT:-$(cd "$here/.." && pwd)}"
cargo bench --manifest-path "$root/ffi-c/Cargo.toml" -p ratewall-ffi --bench abi "$@"
target="${CARGO_TARGET_DIR:-$root/target}"
python3 - "$target/criterion/check_allow" <<'PY'
import json, pathlib, statistics, sys
base = pathlib.Path(sys.argv[1])

def per_call(name):
    """Per-call times of every sample (criterion's raw data), sorted."""
    sample = json.loads((base / name / "new" / "sample.json").read_text())
    return sorted(t / n for t, n in zip(sample["times"], sample["iters"]))

def quantile(xs, q):
    return xs[min(len(xs) - 1, int(q * len(xs)))]

direct, abi = per_call("rust_direct"), per_call("c_abi")
for label, q in (("p10", 0.10), ("median", 0.50)):
    d, a = quantile(direct, q), quantile(abi, q)
    print(f"{label:>6}: rust_direct {d:7.2f} ns, c_abi {a:7.2f} ns, C ABI overhead {a - d:+6.2f} ns per check")
print("(target: at most 5 ns added per check; on a busy machine the p10 line, the least disturbed "
      "samples, is the better estimate)")
PY
