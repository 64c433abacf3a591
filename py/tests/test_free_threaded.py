"""Free-threaded CPython (3.14t): ratewall keeps the GIL off and stays exact with threads
really running in parallel.

On a free-threaded build, importing an extension that does not declare ``gil_used = false``
turns the GIL back on for the whole process (unless ``PYTHON_GIL=0`` forces it off), so
``sys._is_gil_enabled()`` after ``import ratewall`` in a fresh interpreter without
``PYTHON_GIL`` is the proof that the module runs without a global lock. The hammer tests then
race 8 threads, in parallel, on one shared limiter per algorithm at injected instants (``now=``)
and check the exact admission count and that no two admitted requests saw the same count (a
lost update would repeat one). ``py/ci-freethreaded.sh`` builds the interpreter and runs these.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from ratewall import Limiter

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))

pytestmark = pytest.mark.skipif(
    not FREE_THREADED,
    reason="needs a free-threaded CPython (built with --disable-gil, e.g. python3.14t); "
    "this interpreter has a GIL. bash py/ci-freethreaded.sh builds one and runs these tests",
)

ALGORITHMS = ["token-bucket", "fixed-window", "sliding-log", "sliding-window-counter"]
THREADS = 8
LIMIT = 20_000
ATTEMPTS = 4_000  # per thread and phase: 32,000 attempts race for 20,000 permits
OWN_KEYS = 50  # per thread: new keys inserted into the shared table concurrently
PERIOD = 3600.0
T0 = 1000.0

R = TypeVar("R")


def gil_enabled() -> bool:
    return bool(sys._is_gil_enabled())  # type: ignore[attr-defined]


def test_importing_ratewall_leaves_the_gil_disabled() -> None:
    """A fresh interpreter without PYTHON_GIL: the GIL stays off after importing ratewall."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    code = (
        "import sys\n"
        "before = sys._is_gil_enabled()\n"
        "import ratewall, ratewall._native, ratewall.keys, ratewall.storage, ratewall.wsgi, ratewall.retry\n"
        "ratewall.Limiter('5/second').check('k')\n"
        "print(before, sys._is_gil_enabled())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr
    assert "GIL" not in out.stderr, out.stderr


def test_this_process_runs_without_the_gil() -> None:
    assert not gil_enabled()


def hammer(worker: Callable[[int], R]) -> list[R]:
    """Runs ``worker(i)`` in THREADS threads started together; returns their results in order."""
    results: dict[int, R] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = worker(i)
        except BaseException as e:  # re-raised in the calling thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [results[i] for i in range(THREADS)]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_threads_sharing_one_limiter_admit_exactly_the_limit(algorithm: str) -> None:
    lim = Limiter(f"{LIMIT}/hour", algorithm=algorithm)
    # Two phases: the first window, then two periods later (every algorithm full again).
    for now in (T0, T0 + 2 * PERIOD):

        def worker(i: int, now: float = now) -> tuple[list[int], int, bool]:
            seen = []  # `remaining` after each admitted request on the shared key
            own = 0
            for n in range(ATTEMPTS):
                d = lim.check("shared", now=now)
                if d.allowed:
                    seen.append(d.remaining)
                if lim.check(f"own-{i}-{n % OWN_KEYS}", now=now).allowed:
                    own += 1
            return seen, own, gil_enabled()

        results = hammer(worker)
        remaining = sorted(r for seen, _, _ in results for r in seen)
        # Exactly the limit, each count observed once: no over-admission, no lost update.
        assert len(remaining) == LIMIT
        assert remaining == list(range(LIMIT))
        assert [own for _, own, _ in results] == [ATTEMPTS] * THREADS
        assert not any(gil for _, _, gil in results)
        left = lim.peek("shared", now=now)
        assert (left.allowed, left.remaining) == (False, 0)
    assert len(lim) == THREADS * OWN_KEYS + 1  # no key lost or duplicated by racing inserts
    assert not gil_enabled()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("rates", ["{n}/minute; {m}/hour", "{m}/minute; {n}/hour"])
def test_threads_sharing_a_two_limit_policy_admit_exactly_the_tighter_limit(algorithm: str, rates: str) -> None:
    """A denied request gives back what it took from the other limit, even under contention."""
    lim = Limiter(rates.format(n=LIMIT, m=2 * LIMIT), algorithm=algorithm)

    def worker(i: int) -> tuple[int, bool]:
        admitted = 0
        for _ in range(ATTEMPTS):
            if lim.check("shared", now=T0).allowed:
                admitted += 1
        return admitted, gil_enabled()

    results = hammer(worker)
    assert sum(n for n, _ in results) == LIMIT
    assert not any(gil for _, gil in results)
    # The tighter limit is spent; the looser one lost nothing to the denied requests' rollbacks
    # (a peek reports what would be left after taking one more).
    left = {s.limit: (s.allowed, s.remaining) for s in lim.peek("shared", now=T0).limits}
    assert left == {LIMIT: (False, 0), 2 * LIMIT: (True, LIMIT - 1)}


# Not the sliding log: a refund racing a check whose older slot is not yet published gives back
# less than asked (never more), by design (core/src/sliding_log.rs, "Lock-free state").
@pytest.mark.parametrize("algorithm", ["token-bucket", "fixed-window", "sliding-window-counter"])
def test_threads_taking_and_refunding_leave_the_key_full(algorithm: str) -> None:
    """Checks and refunds racing on one key: every permit taken comes back, none is lost."""
    lim = Limiter(f"{LIMIT}/hour", algorithm=algorithm)

    def worker(i: int) -> tuple[int, bool]:
        admitted = 0
        for _ in range(ATTEMPTS):
            if lim.check("shared", now=T0).allowed:
                admitted += 1
                lim.refund("shared", now=T0)
        return admitted, gil_enabled()

    results = hammer(worker)
    assert sum(n for n, _ in results) == THREADS * ATTEMPTS
    assert not any(gil for _, gil in results)
    full = lim.peek("shared", now=T0)  # what would be left after one more
    assert (full.allowed, full.remaining) == (True, LIMIT - 1)
