"""Decisions per second through Redis: ratewall's Redis storage vs the `limits` package's
``limits.storage.RedisStorage`` with ``limits.strategies``, same Redis, same run, same limit.

Scenarios (each side makes the same number of decisions on a fresh key; every call is
admitted, so both do their full write path):

- fixed window:   ratewall ``fixed-window`` vs ``FixedWindowRateLimiter.hit``, "1000000000/hour"
- moving window:  ratewall ``sliding-log`` vs ``MovingWindowRateLimiter.hit``, "100/hour" (the
                  exact sliding log, as limits' moving window), calls spread over 100 clients so
                  that each client's log fills up to its limit and every call is admitted
- token bucket:   ratewall's default algorithm, against limits' fixed window (limits has none)

Each is run sequentially (one thread), with THREADS threads sharing one limiter (ratewall
releases the GIL while it waits; limits uses redis-py's connection pool), and, for ratewall
only, on asyncio (``acheck`` with CONCURRENCY requests in flight: limits' async storage needs
another client library, coredis). Wall-clock decisions per second, best of several repetitions;
the ratio is ratewall / limits (above 1: ratewall decides more per second).

    python py/bench/bench_redis.py [--quick] [--url redis://127.0.0.1:PORT]

Without ``--url``, ``REDIS_TEST_URL`` is used (py/bench/run.sh starts a private redis-server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable

from limits import parse
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter

import ratewall

THREADS = 4
CONCURRENCY = 32


def best_rate(run: Callable[[str], int], repeats: int) -> float:
    """Best decisions per second of ``run(fresh_key) -> decisions`` over ``repeats``."""
    best = 0.0
    for _ in range(repeats):
        key = f"bench-{uuid.uuid4().hex}"
        t0 = time.perf_counter()
        n = run(key)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def sequential(check: Callable[[str], object], n: int, clients: int) -> Callable[[str], int]:
    def run(key: str) -> int:
        keys = [f"{key}-{i}" for i in range(clients)]
        for i in range(n):
            check(keys[i % clients])
        return n

    return run


def threaded(check: Callable[[str], object], n: int, clients: int) -> Callable[[str], int]:
    per = n // THREADS

    def run(key: str) -> int:
        barrier = threading.Barrier(THREADS)
        keys = [f"{key}-{i}" for i in range(clients)]

        def work() -> None:
            barrier.wait()
            for i in range(per):
                check(keys[i % clients])

        pool = [threading.Thread(target=work) for _ in range(THREADS)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return per * THREADS

    return run


def on_asyncio(limiter: ratewall.RedisLimiter, n: int, clients: int) -> Callable[[str], int]:
    per = n // CONCURRENCY

    def run(key: str) -> int:
        keys = [f"{key}-{i}" for i in range(clients)]

        async def worker() -> None:
            acheck = limiter.acheck
            for i in range(per):
                await acheck(keys[i % clients])

        async def main() -> None:
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))

        asyncio.run(main())
        return per * CONCURRENCY

    return run


def limits_hit(strategy: RateLimiter, rate: str) -> Callable[[str], object]:
    item = parse(rate)
    hit = strategy.hit
    return lambda key: hit(item, key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer decisions and repetitions")
    parser.add_argument("--url", default=os.environ.get("REDIS_TEST_URL"), help="Redis URL")
    args = parser.parse_args()
    if not args.url:
        raise SystemExit("bench_redis.py: no Redis: pass --url or set REDIS_TEST_URL (py/bench/run.sh does)")
    n = 2_000 if args.quick else 10_000  # at most 100 per client in the moving window
    repeats = 3 if args.quick else 5

    # A generous timeout: on a loaded machine a 50 ms stall would let the fail mode decide
    # (instantly), which would flatter ratewall; the run then reports it and fails.
    store = ratewall.RedisStorage(args.url, key_prefix="bench", command_timeout=2.0)
    peer = RedisStorage(args.url)
    fixed, moving = FixedWindowRateLimiter(peer), MovingWindowRateLimiter(peer)
    scenarios = [
        ("fixed window", "1000000000/hour", "fixed-window", 1, limits_hit(fixed, "1000000000/hour")),
        ("moving window", "100/hour", "sliding-log", 100, limits_hit(moving, "100/hour")),
        ("token bucket*", "1000000000/hour", "token-bucket", 1, limits_hit(fixed, "1000000000/hour")),
    ]
    print(f"{n} decisions per measurement, best of {repeats}; {THREADS} threads; asyncio: {CONCURRENCY} in flight")
    print("* limits has no token bucket: compared with its fixed window")
    print(f"{'scenario':<16} {'mode':<11} {'ratewall/s':>11} {'limits/s':>10} {'ratio':>7}")
    ratios = []
    for label, rate, algorithm, clients, peer_check in scenarios:
        limiter = store.limiter(rate, algorithm=algorithm, name=algorithm)
        assert limiter.check("warm-up").source == "redis"
        peer_check("warm-up")
        for mode, make in (("sequential", sequential), ("threads", threaded)):
            ours = best_rate(make(limiter.check, n, clients), repeats)
            theirs = best_rate(make(peer_check, n, clients), repeats)
            ratios.append(ours / theirs)
            print(f"{label:<16} {mode:<11} {ours:>11,.0f} {theirs:>10,.0f} {ours / theirs:>6.2f}x")
        ours = best_rate(on_asyncio(limiter, n, clients), repeats)
        print(f"{label:<16} {'asyncio':<11} {ours:>11,.0f} {'-':>10} {'-':>7}")
    health = store.health()
    if health["errors"]:
        raise SystemExit(f"bench_redis.py: {health['errors']} decisions were not made by Redis: {health}")
    print(f"ratio ratewall/limits: min {min(ratios):.2f}x, max {max(ratios):.2f}x (target: at least 1.00x)")


if __name__ == "__main__":
    main()
