"""The core API from Python: semantics under an injected clock, errors, headers, config, threads."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest

import ratewall
from ratewall import Config, ConfigError, InsufficientCapacityError, Limiter

from .conftest import FakeClock


def test_token_bucket_classic_demo_capacity_5_refill_1_per_second(clock: FakeClock) -> None:
    lim = Limiter("1/second", burst=5, clock=clock)
    results = [lim.check("client").allowed for _ in range(7)]
    assert results == [True] * 5 + [False] * 2
    d = lim.check("client")
    assert (d.allowed, d.limit, d.remaining) == (False, 5, 0)
    assert d.retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    assert lim.check("client").allowed
    assert not lim.check("client").allowed


def test_decision_shape_and_seconds(clock: FakeClock) -> None:
    lim = Limiter("10/minute", algorithm="fixed-window", clock=clock)
    d = lim.check("k")
    assert d.allowed is True and bool(d) is True
    assert (d.limit, d.remaining) == (10, 9)
    assert d.retry_after == 0.0
    assert isinstance(d.reset_after, float) and d.reset_after == pytest.approx(60.0)
    assert d.reset_after_ns == 60_000_000_000
    assert d.policy == "default"
    assert "Decision(allowed=True, limit=10, remaining=9" in repr(d)
    clock.advance(15)
    assert lim.check("k").reset_after == pytest.approx(45.0)


@pytest.mark.parametrize(
    "algorithm", ["token-bucket", "fixed-window", "fixed-window-aligned", "sliding-window-counter", "sliding-log", "moving-window", "gcra"]
)
def test_every_algorithm_admits_exactly_the_limit_then_recovers(algorithm: str, clock: FakeClock) -> None:
    lim = Limiter("3/minute", algorithm=algorithm, clock=clock)
    assert [lim.check("a").allowed for _ in range(5)] == [True, True, True, False, False]
    assert lim.check("b").allowed, "keys are independent"
    denied = lim.check("a")
    assert not denied.allowed and denied.retry_after > 0
    clock.advance(denied.retry_after)
    assert lim.check("a").allowed
    clock.advance(120)
    assert lim.check("a").allowed


def test_sliding_log_is_exact(clock: FakeClock) -> None:
    lim = Limiter("2/10s", algorithm="sliding-log", clock=clock)
    assert lim.check("u").allowed  # t=0
    clock.advance(6)
    assert lim.check("u").allowed  # t=6
    clock.advance(3.9)
    d = lim.check("u")  # t=9.9: both still inside (now-10, now]
    assert not d.allowed
    assert d.retry_after == pytest.approx(0.1, abs=1e-6)
    clock.advance(0.1)
    assert lim.check("u").allowed  # t=10: the first one left the log


def test_now_argument_overrides_the_clock() -> None:
    lim = Limiter("2/second", algorithm="sliding-log")
    assert lim.check("x", now=100.0).allowed
    assert lim.check("x", now=100.0).allowed
    assert not lim.check("x", now=100.5).allowed
    assert lim.check("x", now=101.0).allowed
    assert lim.check("x", now=101).allowed  # ints are seconds too


def test_default_clock_is_time_monotonic_scale() -> None:
    assert abs(ratewall.monotonic() - time.monotonic()) < 0.05
    lim = Limiter("1/hour")
    assert abs(lim.now() - time.monotonic()) < 0.05
    assert lim.check("k", now=time.monotonic()).allowed
    assert not lim.check("k").allowed, "now= and the default clock share one scale"
    assert lim.clock is None


def test_coarse_clock_stamps_decisions_with_the_kernel_tick_clock() -> None:
    tick = ratewall.coarse_clock_resolution()
    assert 0 < tick <= 0.1, f"one tick: {tick} s"
    hour = 3600.0
    lim = Limiter("1/hour", algorithm="token-bucket", clock="coarse")
    assert lim.clock == "coarse"
    for key in ("a", "b", "c"):
        before = lim.now()
        precise = ratewall.monotonic()
        assert before <= precise < before + tick + 1.0, "the same scale, a tick behind at most"
        assert ratewall.coarse_monotonic() >= before, "the limiter reads ratewall.coarse_monotonic"
        assert lim.check(key).allowed
        after = lim.now()
        assert after >= before, "never steps back"
        # The admission was stamped with a coarse reading in [before, after]: seen from `after`,
        # the bucket is full again in at most an hour. (A precise stamp, later than `after` unless
        # a tick fell between the check and the read, would leave more than an hour.)
        d = lim.peek(key, now=after)
        assert not d.allowed
        assert hour - (after - before) - 1e-6 <= d.retry_after <= hour, f"retry_after {d.retry_after!r}"
    explicit = Limiter("1/hour", clock="precise")
    assert explicit.clock is None, "'precise' is the default clock"
    assert abs(explicit.now() - time.monotonic()) < 0.05


def test_clock_option_reaches_config_limiters_and_is_validated() -> None:
    cfg = Config.from_toml('[policies.api]\nlimits = "10/second"\n[policies.login]\nlimits = "5/15min"')
    assert cfg.limiter("api", clock="coarse").clock == "coarse"
    assert cfg.limiter("api", clock="precise").clock is None
    assert {n: lim.clock for n, lim in cfg.limiters(clock="coarse").items()} == {"api": "coarse", "login": "coarse"}
    with pytest.raises(ValueError, match="clock must be 'precise' .* got 'tick'"):
        cfg.limiter("api", clock="tick")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock must be 'precise', 'coarse' or a callable"):
        cfg.limiters(clock=1.5)  # type: ignore[arg-type]


def test_clock_step_back_never_admits_more(clock: FakeClock) -> None:
    lim = Limiter("2/minute", algorithm="fixed-window", clock=clock)
    assert lim.check("k").allowed and lim.check("k").allowed
    clock.advance(-30)
    assert not lim.check("k").allowed


def test_multi_limit_policy_is_all_or_nothing(clock: FakeClock) -> None:
    lim = Limiter("2/second; 3/minute", name="api", clock=clock)
    assert lim.check("alice").allowed and lim.check("alice").allowed
    third = lim.check("alice")
    assert not third.allowed and third.most_restrictive == 0
    clock.advance(1)
    ok = lim.check("alice")
    assert ok.allowed and ok.remaining == 0
    limits = ok.limits
    assert [s.rate for s in limits] == ["2/second", "3/minute"]
    assert [s.name for s in limits] == ["api:2/second", "api:3/minute"]
    assert limits[1].remaining == 0 and limits[1].window == 60.0
    clock.advance(1)
    denied = lim.check("alice")
    assert not denied.allowed and denied.most_restrictive == 1
    # The per-second limit was not charged by the denied request:
    assert denied.limits[0].remaining == 1


def test_peek_refund_reset(clock: FakeClock) -> None:
    lim = Limiter("3/minute", algorithm="fixed-window", clock=clock)
    assert lim.peek("k").remaining == 2
    assert lim.peek("k").remaining == 2, "peek takes nothing"
    lim.check("k", 3)
    assert not lim.peek("k").allowed
    refunded = lim.refund("k", 2)
    assert refunded.remaining == 2
    assert lim.check("k", 2).allowed
    lim.reset("k")
    assert lim.check("k", 3).allowed
    assert lim.refund("never-seen").remaining == 3


def test_weighted_cost_and_insufficient_capacity(clock: FakeClock) -> None:
    lim = Limiter("10/minute", clock=clock)
    assert lim.check("k", cost=7).remaining == 3
    assert not lim.check("k", cost=4).allowed
    assert lim.check("k", cost=3).remaining == 0
    with pytest.raises(InsufficientCapacityError, match="exceeds the limiter's capacity of 10"):
        lim.check("k", cost=11)
    assert issubclass(InsufficientCapacityError, ValueError)


def test_bytes_keys_and_str_keys_are_the_same_key(clock: FakeClock) -> None:
    lim = Limiter("1/minute", clock=clock)
    assert lim.check("é").allowed
    assert not lim.check("é".encode()).allowed
    assert lim.check(b"\x00\xff").allowed


def test_headers_and_body_match_the_http_contract(clock: FakeClock) -> None:
    lim = Limiter("100/minute", algorithm="fixed-window", name="api", headers="legacy, ietf", clock=clock)
    d = lim.check("203.0.113.7")
    assert d.headers(now_unix=1_700_000_000) == [
        ("X-RateLimit-Limit", "100"),
        ("X-RateLimit-Remaining", "99"),
        ("Date", "Tue, 14 Nov 2023 22:13:20 GMT"),
        ("X-RateLimit-Reset", "1700000060"),
        ("RateLimit-Policy", '"api";q=100;w=60'),
        ("RateLimit", '"api";r=99;t=60'),
    ]
    tight = Limiter("1/minute", algorithm="fixed-window", clock=clock, send_date=False)
    tight.check("k")
    clock.advance(29.5)
    denied = tight.check("k")
    assert denied.retry_after == pytest.approx(30.5)
    assert denied.retry_after_header == 31
    assert json.loads(denied.body) == {"error": "rate_limited", "retryAfter": 31}
    assert denied.body == '{"error":"rate_limited","retryAfter":31}'
    hdrs = dict(denied.headers(now_unix=1_700_000_000))
    assert hdrs["Retry-After"] == "31" and "Date" not in hdrs


def test_draft8_partition_key_and_none_sets(clock: FakeClock) -> None:
    lim = Limiter("5/minute", algorithm="fixed-window", headers="draft-8", clock=clock)
    hdrs = dict(lim.check("foo").headers(key="foo"))
    assert hdrs["RateLimit-Policy"] == '"5-in-1min"; q=5; w=60; pk=:MmMyNmI0NmI2OGZm:'
    none = Limiter("1/minute", headers="none", clock=clock)
    assert none.check("k").headers() == []
    assert [n for n, _ in none.check("k").headers()] == ["Retry-After"]
    assert Limiter("1/minute", headers="none", retry_after=False).check("k").headers() == []


def test_module_level_http_helpers() -> None:
    assert ratewall.DENIED_STATUS == 429
    assert ratewall.DENIED_CONTENT_TYPE == "application/json"
    assert ratewall.denied_body(1.5) == '{"error":"rate_limited","retryAfter":2}'
    assert ratewall.retry_after_header(0.0) == 1
    assert ratewall.parse_rates("5 per 10 minutes; 100/day") == [(5, 600.0), (100, 86400.0)]
    assert ratewall.canonical_rates("60/min") == "60/minute"


def test_limiter_properties() -> None:
    lim = Limiter(["10/second", "1000/day"], algorithm="moving-window", name="api", headers="draft-7")
    assert lim.limits == "10/second; 1000/day"
    assert lim.algorithm == "sliding-log"
    assert lim.name == "api"
    assert lim.header_sets == "draft-7"
    assert lim.rates == [(10, 1.0), (1000, 86400.0)]
    assert len(lim) == 0
    lim.check("k")
    assert len(lim) == 2
    assert "Limiter(\"10/second; 1000/day\"" in repr(lim)


def test_reclaim_drops_only_idle_keys(clock: FakeClock) -> None:
    lim = Limiter("10/second", clock=clock)
    for i in range(100):
        lim.check(f"k{i}")
    assert len(lim) == 100
    assert lim.reclaim() == 0
    clock.advance(2)
    assert lim.reclaim() == 100
    assert len(lim) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"limits": "5/fortnight"}, ValueError, 'unknown unit "fortnight" at column 3'),
        ({"limits": ""}, ValueError, "rate string"),
        ({"limits": 5}, TypeError, "limits must be a rate string"),
        ({"limits": ["5/second", 7]}, TypeError, "every item of limits"),
        ({"limits": "5/s", "algorithm": "leaky"}, ValueError, "unknown algorithm"),
        ({"limits": "5/s", "burst": 0}, ValueError, "burst must be a whole number"),
        ({"limits": "5/s", "burst": -1}, ValueError, "burst must be a whole number"),
        ({"limits": "5/s", "burst": "3"}, TypeError, "burst must be an int"),
        ({"limits": "5/s; 6/min", "burst": 3}, ValueError, "burst applies only"),
        ({"limits": "5/s", "max_keys": 0}, ValueError, "max_keys must be"),
        ({"limits": "5/s", "overflow": "panic"}, ValueError, "unknown overflow"),
        ({"limits": "5/s", "headers": "draft-7, draft-8"}, ValueError, "header sets"),
        ({"limits": "5/s", "headers": "fancy"}, ValueError, "unknown header set"),
        ({"limits": "5/s", "clock": 3}, TypeError, "clock must be 'precise', 'coarse' or a callable returning seconds"),
        ({"limits": "5/s", "clock": b"coarse"}, TypeError, "clock must be 'precise', 'coarse' or a callable"),
        (
            {"limits": "5/s", "clock": "fast"},
            ValueError,
            r"clock must be 'precise' \(the default\), 'coarse' or a callable returning seconds, got 'fast'",
        ),
        ({"limits": "5/s", "clock": "Coarse"}, ValueError, "got 'Coarse'"),
        ({"limits": "5/s", "name": ""}, ValueError, "non-empty name"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Limiter(**kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((5,), {}, TypeError, "key must be str or bytes, not int"),
        ((None,), {}, TypeError, "key must be str or bytes, not NoneType"),
        (("k",), {"cost": 0}, ValueError, "cost must be a whole number"),
        (("k",), {"cost": -2}, ValueError, "cost must be a whole number"),
        (("k",), {"cost": 2**70}, ValueError, "cost must be a whole number"),
        (("k",), {"cost": 1.5}, TypeError, "cost must be an int"),
        (("k",), {"cost": True}, TypeError, "cost must be an int"),
        (("k",), {"now": -1.0}, ValueError, "now must be a finite number of seconds"),
        (("k",), {"now": math.nan}, ValueError, "now must be a finite number"),
        (("k",), {"now": math.inf}, ValueError, "now must be a finite number"),
        (("k",), {"now": 1e30}, ValueError, "now must be a finite number"),
        (("k",), {"now": "soon"}, TypeError, "now must be a number of seconds"),
    ],
)
def test_bad_call_arguments_raise_and_change_nothing(args: tuple, kwargs: dict, error: type, message: str) -> None:
    lim = Limiter("2/minute")
    with pytest.raises(error, match=message):
        lim.check(*args, **kwargs)
    with pytest.raises(error):
        lim.peek(*args, **kwargs)
    assert len(lim) == 0
    assert lim.check("k", now=0).remaining == 1


def test_a_failing_or_lying_clock_raises_cleanly() -> None:
    def broken() -> float:
        raise RuntimeError("clock exploded")

    lim = Limiter("1/s", clock=broken)
    with pytest.raises(RuntimeError, match="clock exploded"):
        lim.check("k")
    with pytest.raises(TypeError, match="the clock's return value must be a number"):
        Limiter("1/s", clock=lambda: "noon").check("k")
    with pytest.raises(ValueError, match="the clock's return value must be a finite"):
        Limiter("1/s", clock=lambda: -5.0).check("k")
    assert Limiter("1/s", clock=lambda: 7).check("k").allowed


def test_config_file_env_and_limiters(tmp_path, clock: FakeClock) -> None:
    text = """
[defaults]
headers = "ietf"

[policies.login]
limits = "5/15min"
algorithm = "sliding-log"
overflow = "deny-new-keys"
fail_mode = "fail-closed"

[policies.api]
limits = "10/second; 1000/day"
"""
    cfg = Config.from_toml(text)
    assert cfg.policy_names == ["api", "login"]
    assert cfg.limits("login") == "5/15minutes"
    assert cfg.fail_mode("login") == "fail-closed" and cfg.fail_mode("api") == "fail-open"
    assert cfg.headers == "ietf" and cfg.storage == "memory://" and cfg.key_prefix == "ratewall"
    login = cfg.limiter("login", clock=clock)
    assert login.algorithm == "sliding-log" and login.name == "login"
    assert [login.check("a@example.com").allowed for _ in range(6)] == [True] * 5 + [False]
    hdrs = dict(login.check("b").headers())
    assert hdrs["RateLimit-Policy"] == '"login";q=5;w=900'
    all_limiters = cfg.limiters()
    assert set(all_limiters) == {"api", "login"} and all_limiters["api"].limits == "10/second; 1000/day"
    with pytest.raises(KeyError, match='no policy named "nope"'):
        cfg.limiter("nope")

    path = tmp_path / "ratewall.toml"
    path.write_text(text)
    from_file = Config.from_file(path)
    assert from_file.policy_names == ["api", "login"]

    env = {"RATEWALL_CONFIG": str(path), "RATEWALL_POLICY_LOGIN_LIMITS": "3/minute", "PATH": "/bin"}
    from_env = Config.from_env(env)
    assert from_env.limits("login") == "3/minute"
    assert Config().with_env({"RATEWALL_POLICY_SMS_LIMITS": "1/minute"}).policy_names == ["sms"]
    assert "[policies.\"login\"]" in from_env.to_toml()


def test_config_errors_say_where() -> None:
    with pytest.raises(ConfigError, match="line 2"):
        Config.from_toml('[policies.login]\nlimits = "5/fortnight"')
    with pytest.raises(ConfigError, match="RATEWALL_POLICY_X_COLOUR"):
        Config.from_env({"RATEWALL_POLICY_X_COLOUR": "red"})
    with pytest.raises(ConfigError, match="cannot read config file"):
        Config.from_file("/nonexistent/ratewall.toml")
    with pytest.raises(TypeError, match="environ must be a mapping"):
        Config.from_env(["RATEWALL_X"])
    assert issubclass(ConfigError, ValueError)


def test_thread_stress_admits_exactly_the_quota() -> None:
    """8 threads race on one key (and on their own keys): exactly the quota is admitted."""
    limit = 5_000
    lim = Limiter(f"{limit}/hour", algorithm="fixed-window")
    shared_admitted = [0] * 8
    own_admitted = [0] * 8
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        shared = own = 0
        for _ in range(2_000):
            if lim.check("shared", now=10.0).allowed:
                shared += 1
            if lim.check(f"own-{i}", now=10.0).allowed:
                own += 1
        shared_admitted[i] = shared
        own_admitted[i] = own

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(shared_admitted) == limit
    assert own_admitted == [2_000] * 8


@pytest.mark.parametrize("algorithm", ["token-bucket", "sliding-log", "sliding-window-counter"])
def test_thread_stress_weighted_costs_never_exceed(algorithm: str) -> None:
    lim = Limiter("1000/hour", algorithm=algorithm)
    taken = [0] * 4

    def worker(i: int) -> None:
        for n in range(600):
            cost = 1 + (n + i) % 3
            if lim.check("k", cost, now=5.0).allowed:
                taken[i] += cost

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 998 <= sum(taken) <= 1000
    assert not lim.check("k", 3, now=5.0).allowed


def test_reclaim_releases_the_gil_while_others_check() -> None:
    lim = Limiter("10/second")
    for i in range(50_000):
        lim.check(f"k{i}", now=1.0)
    counts = []
    stop = threading.Event()

    def checker() -> None:
        n = 0
        while not stop.is_set():
            lim.check("busy", now=1.0)
            n += 1
        counts.append(n)

    t = threading.Thread(target=checker)
    t.start()
    dropped = lim.reclaim(now=100.0)
    stop.set()
    t.join()
    assert dropped >= 50_000
    assert counts[0] > 0


def test_time_machine_drives_a_wall_clock_limiter() -> None:
    """Tools that patch the time module work through ``clock=`` (looked up at call time)."""
    time_machine = pytest.importorskip("time_machine")
    with time_machine.travel(1_700_000_000, tick=False) as traveller:
        lim = Limiter("2/minute", algorithm="sliding-log", clock=lambda: time.time())
        assert lim.check("k").allowed and lim.check("k").allowed
        assert not lim.check("k").allowed
        traveller.shift(60)
        assert lim.check("k").allowed


def test_junk_inputs_raise_python_errors_never_crash() -> None:
    """Random junk through every native entry point: only TypeError/ValueError/KeyError."""
    import random

    from ratewall import keys

    rng = random.Random(1234)
    alphabet = "0123456789/ per;,|smhdayrecondutkwlgi-_:.[]%é\x00\n\"\\ \t🙂ABCDEF"
    junk: list[object] = [None, 0, -1, 2**64, 2**200, 1.5, math.nan, math.inf, b"\xff", [], {}, object()]
    for _ in range(2000):
        junk.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))))
    allowed = (TypeError, ValueError, KeyError)
    lim = Limiter("5/second")
    for item in junk:
        for call in (
            lambda: Limiter(item),
            lambda: Limiter("5/s", algorithm=item),
            lambda: Limiter("5/s", headers=item),
            lambda: Limiter("5/s", overflow=item),
            lambda: Limiter("5/s", burst=item),
            lambda: lim.check(item),
            lambda: lim.check("k", item),
            lambda: lim.check("k", 1, item),
            lambda: lim.refund("k", item),
            lambda: ratewall.canonical_rates(item),
            lambda: ratewall.denied_body(item),
            lambda: Config.from_toml(item),
            lambda: Config.from_env({"RATEWALL_POLICY_X_LIMITS": item}),
            lambda: keys.ip_key(item),
            lambda: keys.client_ip("10.0.0.1", item, trust_proxy=item),
            lambda: keys.TrustProxy(item),
            lambda: keys.composite_key([("k", item)]),
            lambda: keys.hash_key(item, b"k"),
            lambda: lim.check("k", now=5.0).headers(key=item),
        ):
            try:
                call()
            except allowed:
                pass
    assert lim.check("fresh", now=0).remaining == 4
