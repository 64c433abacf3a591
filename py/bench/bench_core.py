"""Limiter.check() vs the `limits` package's MemoryStorage hit, in the same run.

Scenarios (each: ratewall and `limits` doing the same work; every call is admitted):

- fixed window, one key:      "1000000000/hour", the same key every call, real clocks
- fixed window, 10,000 keys:  "1000000000/hour", cycling through 10,000 keys (after one untimed
                              warm-up round that creates the keys), real clocks
- moving window, one key:     "100/minute" (ratewall: sliding-log = limits' moving-window) for a
                              client at exactly its rate: the loop moves a fake clock 0.6 s per
                              call (ratewall gets it as `now=`; `limits` reads it through its
                              module's `time.time`), so every call is admitted with 100 entries
                              in the window
- moving window, 10,000 keys: "100/minute", 10,000 keys, one untimed warm-up round, then a few
                              more calls per key, real clocks

Both sides run in the same Python loop, taking turns repetition by repetition (so a burst of
load from another process falls on both); the best of several repetitions is reported (CPU time
of the process per call, loop included: robust on a shared machine, and it charges `limits`
for its expiry timer thread), then the ratio limits / ratewall.

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


def once(setup: Callable[[], Callable[[], int]]) -> float:
    """ns per call of one repetition: ``setup()`` (untimed) returns a runner that makes the
    calls and returns how many it made."""
    runner = setup()
    gc.collect()
    gc.disable()
    try:
        t0 = time.process_time_ns()
        calls = runner()
        elapsed = time.process_time_ns() - t0
    finally:
        gc.enable()
    return elapsed / calls


def timed(*setups: Callable[[], Callable[[], int]]) -> list[float]:
    """Best ns per call of each setup over REPEATS rounds. The setups take turns within every
    round, so a burst of load from another process falls on all of them alike rather than on
    one side's repetitions only."""
    best = [float("inf")] * len(setups)
    for _ in range(REPEATS):
        for i, setup in enumerate(setups):
            best[i] = min(best[i], once(setup))
    return best


def one_key(check: Callable[[str], object], n: int) -> Callable[[], int]:
    def run() -> int:
        for _ in range(n):
            check("client")
        return n

    return run


def many_keys(check: Callable[[str], object], rounds: int) -> Callable[[], int]:
    keys = KEYS
    for k in keys:  # warm-up: create every key's state (untimed)
        check(k)

    def run() -> int:
        for _ in range(rounds):
            for k in keys:
                check(k)
        return rounds * len(keys)

    return run


class FakeTime:  # noqa: B903
    """A clock both sides read in the moving-window one-key scenario; the loop moves it."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def time(self) -> float:
        return self.t


def loop_only(kind: str, n: int) -> Callable[[], int]:
    """The bare Python loop of each scenario shape, to report costs net of the loop."""
    clock = FakeTime()

    def run() -> int:
        if kind == "keys":
            for _ in range(n):
                for _k in KEYS:
                    pass
            return n * len(KEYS)
        if kind == "rate":
            for _ in range(n):
                clock.t += 0.6
            return n
        for _ in range(n):
            pass
        return n

    return run


def at_rate(check: Callable[[str], object], clock: FakeTime, n: int, step: float) -> Callable[[], int]:
    def run() -> int:
        for _ in range(n):
            clock.t += step
            check("client")
        return n

    return run


def rw_at_rate(rate: str, n: int, step: float) -> Callable[[], int]:
    """ratewall takes the fake time per call (``now=``, its API for injected time)."""
    clock = FakeTime()
    check = ratewall.Limiter(rate, algorithm="sliding-log").check
    for _ in range(100):  # fill the window
        clock.t += step
        check("client", None, clock.t)

    def run() -> int:
        for _ in range(n):
            clock.t += step
            check("client", None, clock.t)
        return n

    return run


def limits_at_rate(rate: str, n: int, step: float) -> Callable[[], int]:
    import limits.storage.memory as memory

    clock = FakeTime()
    memory.time = clock  # type: ignore[assignment]  # limits reads time.time() from its module
    item = limits.parse(rate)
    hit = MovingWindowRateLimiter(MemoryStorage()).hit
    check = lambda key: hit(item, key)  # noqa: E731
    for _ in range(100):
        clock.t += step
        check("client")
    memory.time = time  # type: ignore[assignment]
    inner = at_rate(check, clock, n, step)

    def run() -> int:
        memory.time = clock  # type: ignore[assignment]
        try:
            return inner()
        finally:
            memory.time = time  # type: ignore[assignment]

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
            lambda: loop_only("one", n),
        ),
        (
            "fixed window, 10,000 keys",
            lambda: many_keys(rw_check(fw, "fixed-window"), rounds_keys),
            lambda: many_keys(limits_check(fw, FixedWindowRateLimiter), 1),
            lambda: loop_only("keys", rounds_keys),
        ),
        (
            "moving window, one key",
            lambda: rw_at_rate(mw, n, 0.6),
            lambda: limits_at_rate(mw, n // 4, 0.6),
            lambda: loop_only("rate", n),
        ),
        (
            "moving window, 10,000 keys",
            lambda: many_keys(rw_check(mw, "sliding-log"), rounds_keys),
            lambda: many_keys(limits_check(mw, MovingWindowRateLimiter), 1),
            lambda: loop_only("keys", rounds_keys),
        ),
    ]
    print(f"ratewall {ratewall.__version__} vs limits {limits.__version__} (MemoryStorage), Python {sys.version.split()[0]}")
    print(f"{'scenario':<28} {'ratewall ns':>12} {'limits ns':>12} {'ratio':>8}   (net of the bare loop; with the loop)")
    ratios = []
    for name, ours, theirs, loop in scenarios:
        base, a, b = timed(loop, ours, theirs)
        ratios.append((b - base) / (a - base))
        print(
            f"{name:<28} {a - base:>12.0f} {b - base:>12.0f} {(b - base) / (a - base):>7.1f}x"
            f"   ({a:.0f} vs {b:.0f} ns: {b / a:.1f}x; loop {base:.0f} ns)"
        )
    print(f"minimum ratio (limits / ratewall, net of the loop): {min(ratios):.1f}x  (goal: >= 15x)")


if __name__ == "__main__":
    main()
