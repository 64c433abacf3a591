"""Limiter.check() vs the `limits` package's MemoryStorage hit, in the same run.

Scenarios (each: ratewall and `limits` doing the same work, every call admitted):

- fixed window, one key:     "1000000000/hour", the same key every call
- fixed window, 10,000 keys: "1000000000/hour", cycling through 10,000 keys
- moving window, one key:    "100/minute" (ratewall: sliding-log = limits' moving-window),
                             fresh state every 100 calls so that every call is admitted
- moving window, 10,000 keys: "100/minute", 5 calls per key

Both sides use their default clocks and run in the same Python loop; the best of several
repetitions is reported (ns per call, loop included), then the ratio limits / ratewall.

    python py/bench/bench_core.py [--quick]
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable

import limits
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

import ratewall

QUICK = "--quick" in sys.argv
REPEATS = 3 if QUICK else 7
KEYS = [f"client-{i}" for i in range(10_000)]


def timed(setup: Callable[[], Callable[[], int]]) -> float:
    """Best ns per call over REPEATS: ``setup()`` (untimed) returns a runner that makes the
    calls and returns how many it made."""
    best = float("inf")
    for _ in range(REPEATS):
        runner = setup()
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter_ns()
            calls = runner()
            elapsed = time.perf_counter_ns() - t0
        finally:
            gc.enable()
        best = min(best, elapsed / calls)
    return best


def one_key(check: Callable[[str], object], n: int) -> Callable[[], int]:
    def run() -> int:
        for _ in range(n):
            check("client")
        return n

    return run


def many_keys(check: Callable[[str], object], rounds: int) -> Callable[[], int]:
    keys = KEYS

    def run() -> int:
        for _ in range(rounds):
            for k in keys:
                check(k)
        return rounds * len(keys)

    return run


def fresh_rounds(make: Callable[[], Callable[[str], object]], rounds: int, per_round: int) -> Callable[[], int]:
    """``rounds`` fresh limiters, ``per_round`` calls on one key each; creation is untimed."""
    checks = [make() for _ in range(rounds)]

    def run() -> int:
        for check in checks:
            for _ in range(per_round):
                check("client")
        return rounds * per_round

    return run


def rw_check(rate: str, algorithm: str) -> Callable[[str], object]:
    check: Callable[[str], object] = ratewall.Limiter(rate, algorithm=algorithm).check
    return check


def limits_check(rate: str, strategy: type) -> Callable[[str], object]:
    item = limits.parse(rate)
    hit = strategy(MemoryStorage()).hit
    return lambda key: hit(item, key)


def main() -> None:
    n = 50_000 if QUICK else 200_000
    rounds_keys = 2 if QUICK else 5
    fw = "1000000000/hour"
    mw = "100/minute"
    scenarios = [
        (
            "fixed window, one key",
            lambda: one_key(rw_check(fw, "fixed-window"), n),
            lambda: one_key(limits_check(fw, FixedWindowRateLimiter), n // 4),
        ),
        (
            "fixed window, 10,000 keys",
            lambda: many_keys(rw_check(fw, "fixed-window"), rounds_keys),
            lambda: many_keys(limits_check(fw, FixedWindowRateLimiter), 1),
        ),
        (
            "moving window, one key",
            lambda: fresh_rounds(lambda: rw_check(mw, "sliding-log"), n // 100, 100),
            lambda: fresh_rounds(lambda: limits_check(mw, MovingWindowRateLimiter), n // 400, 100),
        ),
        (
            "moving window, 10,000 keys",
            lambda: many_keys(rw_check(mw, "sliding-log"), rounds_keys),
            lambda: many_keys(limits_check(mw, MovingWindowRateLimiter), 1),
        ),
    ]
    print(f"ratewall {ratewall.__version__} vs limits {limits.__version__} (MemoryStorage), Python {sys.version.split()[0]}")
    print(f"{'scenario':<28} {'ratewall ns':>12} {'limits ns':>12} {'ratio':>8}")
    ratios = []
    for name, ours, theirs in scenarios:
        a = timed(ours)
        b = timed(theirs)
        ratios.append(b / a)
        print(f"{name:<28} {a:>12.0f} {b:>12.0f} {b / a:>7.1f}x")
    print(f"minimum ratio (limits / ratewall): {min(ratios):.1f}x  (goal: >= 15x)")


if __name__ == "__main__":
    main()
