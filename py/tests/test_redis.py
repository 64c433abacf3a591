"""The Redis storage through the Python binding: core semantics, a quota shared by several
limiter objects and threads, Flask/ASGI/WSGI glue, the config file, outages and bad inputs.

Every test runs against a real redis-server (``REDIS_TEST_URL``, started by py/ci.sh) and uses
names of its own (``unique``), so tests never see each other's state. Redis decides with its
own clock; tests only use limits whose periods are far longer than the test. Tests of semantics
use a 2 s command timeout (SLOW), so that a stall of a loaded machine is not mistaken for an
outage; the outage tests set short ones.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import ratewall
from ratewall.asgi import RateLimitMiddleware as AsgiMiddleware
from ratewall.flask import Limiter as FlaskLimiter
from ratewall.wsgi import RateLimitMiddleware as WsgiMiddleware

from .conftest import RedisServer, free_port

#: Redis options for tests of semantics: generous timeouts (see the module docstring).
SLOW = {"command_timeout": 2.0, "connect_timeout": 2.0}

ALGORITHMS = ["token-bucket", "fixed-window", "fixed-window-aligned", "sliding-window-counter", "sliding-log"]


@pytest.fixture
def storage(redis_url: str, unique: str) -> ratewall.RedisStorage:
    return ratewall.storage_from_uri(redis_url, key_prefix=unique, **SLOW)  # type: ignore[return-value]


# -- core semantics ---------------------------------------------------------------------------


def test_check_peek_refund_reset_through_redis(storage: ratewall.RedisStorage, unique: str) -> None:
    lim = storage.limiter("3/hour", algorithm="fixed-window", name=unique, headers="legacy")
    assert storage.blocking and lim.storage == "redis" and lim.fail_mode == "fail-open"
    decisions = [lim.check("alice") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert {d.source for d in decisions} == {"redis"} and not any(d.fallback for d in decisions)
    denied = lim.check("alice")
    assert not denied.allowed and denied.source == "redis" and denied.policy == unique
    assert 3500 < denied.retry_after <= 3600 and denied.retry_after_header <= 3600
    assert json.loads(denied.body) == {"error": "rate_limited", "retryAfter": denied.retry_after_header}
    headers = dict(denied.headers("alice"))
    assert headers["X-RateLimit-Limit"] == "3" and headers["X-RateLimit-Remaining"] == "0"
    assert headers["Retry-After"] == str(denied.retry_after_header)
    # Another key has its own state; peek takes nothing; refund gives back; reset refills.
    assert lim.check(b"bob").remaining == 2
    # peek answers as check would (remaining after the request) but takes nothing.
    assert lim.peek("bob").remaining == 1 and lim.peek("bob").remaining == 1
    assert lim.refund("alice").remaining == 1
    assert lim.check("alice").allowed and not lim.check("alice").allowed
    lim.reset("alice")
    assert lim.check("alice").remaining == 2
    assert len(lim.redis_keys("alice")) == 1 and unique in lim.redis_keys("alice")[0]
    health = storage.health()
    assert health["state"] == "up" and health["redis_decisions"] >= 10 and health["errors"] == 0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_admits_its_limit_then_denies(storage: ratewall.RedisStorage, unique: str, algorithm: str) -> None:
    lim = storage.limiter("4/hour", algorithm=algorithm, name=unique)
    assert lim.algorithm == ratewall.Limiter("4/hour", algorithm=algorithm).algorithm
    results = [lim.check("k").allowed for _ in range(6)]
    assert results == [True] * 4 + [False] * 2


def test_several_limits_are_one_atomic_policy(storage: ratewall.RedisStorage, unique: str) -> None:
    lim = storage.limiter("2/hour; 5/day", algorithm="fixed-window", name=unique)
    local = ratewall.Limiter("2/hour; 5/day", algorithm="fixed-window", name=unique)
    assert lim.limits == "2/hour; 5/day"
    shared = [lim.check("k") for _ in range(4)]
    mine = [local.check("k") for _ in range(4)]
    assert [d.allowed for d in shared] == [True, True, False, False]
    # The same per-limit answers as the in-process engine: the denials took nothing from the day.
    assert [[s.remaining for s in d.limits] for d in shared] == [[s.remaining for s in d.limits] for d in mine]
    assert lim.peek("k").limits[1].remaining == local.peek("k").limits[1].remaining


def test_costs_and_key_types(storage: ratewall.RedisStorage, unique: str) -> None:
    lim = storage.limiter("10/hour", algorithm="fixed-window", name=unique)
    assert lim.check("k", cost=7).remaining == 3
    assert not lim.check("k", cost=4).allowed
    assert lim.check("k", 3).remaining == 0
    # str and its UTF-8 bytes are the same key (every binding hashes the UTF-8 bytes).
    assert lim.check("ключ", cost=9).remaining == 1
    assert lim.check("ключ".encode(), cost=1).remaining == 0
    with pytest.raises(ratewall.InsufficientCapacityError):
        lim.check("k", cost=11)
    with pytest.raises(ValueError, match="cost"):
        lim.check("k", cost=0)
    with pytest.raises(TypeError, match="key must be str or bytes"):
        lim.check(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="now= cannot be used"):
        lim.check("k", now=1.0)  # type: ignore[arg-type]


def test_two_storages_share_one_quota(redis_url: str, unique: str) -> None:
    """Two connections (two app instances) enforce one quota together."""
    a = ratewall.storage_from_uri(redis_url, key_prefix=unique, **SLOW).limiter("5/hour", name="api")
    b = ratewall.storage_from_uri(redis_url, key_prefix=unique, **SLOW).limiter("5/hour", name="api")
    results = [(a if i % 2 == 0 else b).check("203.0.113.7").allowed for i in range(8)]
    assert results == [True] * 5 + [False] * 3
    # A different key prefix is a different namespace.
    c = ratewall.storage_from_uri(redis_url, key_prefix=unique + "x", **SLOW).limiter("5/hour", name="api")
    assert c.check("203.0.113.7").allowed


def test_threads_admit_exactly_the_quota(storage: ratewall.RedisStorage, unique: str) -> None:
    """8 threads race on one key through Redis: exactly the limit is admitted. Checks release
    the GIL while they wait, so the threads' requests are in flight together."""
    limit, threads, per_thread = 300, 8, 100
    lim = storage.limiter(f"{limit}/hour", algorithm="sliding-log", name=unique)
    allowed = [0] * threads
    sources: set[str] = set()
    barrier = threading.Barrier(threads)

    def work(i: int) -> None:
        barrier.wait()
        for _ in range(per_thread):
            d = lim.check("shared")
            allowed[i] += d.allowed
            sources.add(d.source)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert sum(allowed) == limit
    assert sources == {"redis"}
    assert lim.peek("shared").remaining == 0


def test_config_file_storage_redis(redis_url: str, unique: str, tmp_path: Any) -> None:
    path = tmp_path / "ratewall.toml"
    path.write_text(
        f"""
[defaults]
storage = "{redis_url}"
key_prefix = "{unique}"
fail_mode = "fail-closed"
headers = "draft-7"

[policies.api]
limits = "3/hour"
algorithm = "sliding-window-counter"

[policies.login]
limits = "2/hour"
algorithm = "sliding-log"
fail_mode = "local"
"""
    )
    config = ratewall.Config.from_file(path)
    limiters = config.open(**SLOW)
    assert limiters.names == ["api", "login"] and "api" in limiters and len(limiters) == 2
    api, login = limiters["api"], limiters.get("login")
    assert login is not None and limiters.get("nope") is None
    assert api.fail_mode == "fail-closed" and login.fail_mode == "local"
    assert [api.check("u").allowed for _ in range(4)] == [True, True, True, False]
    assert dict(api.check("u").headers("u"))["RateLimit"].startswith("limit=3, remaining=0")
    # A second process opening the same file shares the quota.
    again = ratewall.Config.from_file(path).open(**SLOW)
    assert not again["api"].check("u").allowed and again["login"].check("u").source == "redis"
    assert limiters.health() is not None and limiters.health()["state"] == "up"  # type: ignore[index]
    with pytest.raises(KeyError, match="no policy named .nope."):
        limiters["nope"]
    # The in-process builders refuse a Redis config rather than silently ignore it.
    with pytest.raises(ratewall.ConfigError, match="Config.open"):
        config.limiter("api")
    # memory:// through the same API.
    mem = ratewall.Config.from_toml('[policies.api]\nlimits = "1/hour"').open()
    assert mem["api"].storage == "memory" and mem.health() is None
    assert mem["api"].check("u").source == "memory" and not mem["api"].check("u").allowed


# -- async ------------------------------------------------------------------------------------


def test_acheck_never_blocks_the_loop_and_counts_exactly(storage: ratewall.RedisStorage, unique: str) -> None:
    lim = storage.limiter("100/hour", algorithm="fixed-window", name=unique)

    async def main() -> tuple[list[ratewall.Decision], int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.ensure_future(ticker())
        decisions = await asyncio.gather(*(lim.acheck("k") for _ in range(250)))
        stop.set()
        await t
        return list(decisions), ticks

    decisions, ticks = asyncio.run(main())
    assert sum(d.allowed for d in decisions) == 100
    assert {d.source for d in decisions} == {"redis"}
    assert ticks > 0  # the loop kept running other tasks while Redis answered


def test_async_peek_refund_cancel_and_errors(storage: ratewall.RedisStorage, unique: str) -> None:
    lim = storage.limiter("3/hour", algorithm="fixed-window", name=unique)

    async def main() -> None:
        cancelled = lim.acheck("k")
        cancelled.cancel()  # its reply still arrives; the bridge must skip it
        assert (await lim.acheck("k")).remaining in (1, 0)
        assert (await lim.apeek("k")).allowed in (True, False)
        before = (await lim.apeek("k")).remaining
        assert (await lim.apeek("k")).remaining == before
        refunded = (await lim.arefund("k")).remaining
        assert refunded >= 1 and (await lim.apeek("k")).remaining == refunded - 1
        with pytest.raises(ratewall.InsufficientCapacityError):
            await lim.acheck("k", cost=4)
        with pytest.raises(ValueError):
            lim.acheck("k", cost=0)

    asyncio.run(main())
    with pytest.raises(RuntimeError, match="no running event loop"):
        lim.acheck("k")
    # A second loop (another asyncio.run) gets its own bridge.
    assert asyncio.run(_one_check(lim)).source == "redis"


async def _one_check(lim: ratewall.RedisLimiter) -> ratewall.Decision:
    return await lim.acheck("other")


# -- framework glue ---------------------------------------------------------------------------


def _flask_app(redis_url: str, unique: str, **kwargs: Any) -> Flask:
    app = Flask(__name__)
    limiter = FlaskLimiter(
        lambda: "198.51.100.9",
        app=app,
        storage_uri=redis_url,
        storage_options=SLOW,
        key_prefix=unique,
        headers_enabled=True,
        **kwargs,
    )

    @app.route("/slow")
    @limiter.limit("2 per hour")
    def slow() -> str:
        return "ok"

    return app


def test_flask_instances_share_a_redis_quota(redis_url: str, unique: str) -> None:
    one = _flask_app(redis_url, unique).test_client()
    two = _flask_app(redis_url, unique).test_client()
    r1 = one.get("/slow")
    assert r1.status_code == 200 and r1.headers["X-RateLimit-Remaining"] == "1"
    r2 = two.get("/slow")
    assert r2.status_code == 200 and r2.headers["X-RateLimit-Remaining"] == "0"
    r3 = one.get("/slow")
    assert r3.status_code == 429 and r3.content_type == "application/json"
    assert r3.get_json()["error"] == "rate_limited"
    assert 3500 < int(r3.headers["Retry-After"]) <= 3600
    assert r3.headers["X-RateLimit-Limit"] == "2" and r3.headers["X-RateLimit-Remaining"] == "0"
    assert two.get("/slow").status_code == 429


def test_flask_fail_mode_mapping(redis_url: str, unique: str) -> None:
    def mode(**kwargs: Any) -> str:
        app = Flask(__name__)
        limiter = FlaskLimiter(lambda: "k", app=app, storage_uri=redis_url, key_prefix=unique, **kwargs)
        return str(limiter.storage.fail_mode)  # type: ignore[attr-defined]

    assert mode() == "fail-closed"
    assert mode(swallow_errors=True) == "fail-open"
    assert mode(in_memory_fallback_enabled=True) == "local"
    assert mode(in_memory_fallback=["10/minute"], swallow_errors=True) == "local"
    assert mode(storage_options={"fail_mode": "fail-open"}) == "fail-open"
    with pytest.raises(TypeError, match="clock= cannot be combined"):
        FlaskLimiter(lambda: "k", app=Flask(__name__), storage_uri=redis_url, clock=lambda: 1.0)
    with pytest.raises(TypeError, match="clock= cannot be combined"):
        FlaskLimiter(lambda: "k", app=Flask(__name__), storage_uri=redis_url, clock="coarse")


def test_asgi_middleware_with_redis_uses_the_async_path(redis_url: str, unique: str) -> None:
    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("home")

    app = Starlette(routes=[Route("/", home)])
    app.add_middleware(
        AsgiMiddleware,
        limits="2/hour",
        algorithm="fixed-window",
        storage_uri=redis_url,
        storage_options={"key_prefix": unique, **SLOW},
        key_func=lambda scope: "client",
    )

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.get("/") for _ in range(3)]

    r1, r2, r3 = asyncio.run(main())
    assert (r1.status_code, r2.status_code, r3.status_code) == (200, 200, 429)
    assert r1.headers["x-ratelimit-remaining"] == "1" and r2.headers["x-ratelimit-remaining"] == "0"
    assert r3.json()["error"] == "rate_limited" and int(r3.headers["retry-after"]) > 3500


def test_fastapi_dependency_with_redis(redis_url: str, unique: str) -> None:
    from fastapi import Depends, FastAPI

    from ratewall.asgi import RateLimit, RateLimitExceeded, rate_limit_exceeded_handler

    app = FastAPI()
    app.add_exception_handler(RateLimitExceeded, rate_limit_exceeded_handler)
    limit = RateLimit(
        "1/hour", algorithm="sliding-log", storage_uri=redis_url, storage_options={"key_prefix": unique, **SLOW}, fail_mode="local"
    )
    assert limit.limiter.fail_mode == "local"

    @app.get("/login")
    async def login(decision: ratewall.Decision = Depends(limit)) -> dict[str, Any]:
        return {"source": decision.source, "remaining": decision.remaining}

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return [await client.get("/login") for _ in range(2)]

    ok, denied = asyncio.run(main())
    assert ok.status_code == 200 and ok.json() == {"source": "redis", "remaining": 0}
    assert denied.status_code == 429 and denied.json()["error"] == "rate_limited"


def test_wsgi_middleware_with_redis(redis_url: str, unique: str) -> None:
    from werkzeug.test import Client

    def hello(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hi"]

    def client() -> Client:
        app = WsgiMiddleware(hello, limits="2/hour", storage_uri=redis_url, storage_options={"key_prefix": unique, **SLOW})
        return Client(app)

    a, b = client(), client()
    assert [a.get("/").status_code, b.get("/").status_code, a.get("/").status_code] == [200, 200, 429]


# -- outages ----------------------------------------------------------------------------------


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def _until(predicate: Any, seconds: float) -> bool:
    """Polls ``predicate`` (reconnection happens in real time in the background)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def _redis_command(port: int, *args: str) -> bytes:
    """One command on a raw connection (RESP), returning the first reply line."""
    import socket

    payload = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(payload.encode())
        return conn.recv(64)


def test_waiting_for_redis_releases_the_gil_and_the_event_loop(private_redis: RedisServer, unique: str) -> None:
    """While Redis stalls (CLIENT PAUSE holds every write for 400 ms), a blocked ``check``
    lets other Python threads run, and a pending ``acheck`` lets the event loop run."""
    store = ratewall.storage_from_uri(private_redis.url, command_timeout=3.0, key_prefix=unique)
    lim = store.limiter("100/hour", name="p")
    assert lim.check("k").source == "redis"

    assert _redis_command(private_redis.port, "CLIENT", "PAUSE", "400", "WRITE").startswith(b"+OK")
    calling, done = threading.Event(), threading.Event()
    span: list[float] = []
    result: list[ratewall.Decision] = []

    def work() -> None:
        calling.set()
        span.append(time.monotonic())
        result.append(lim.check("k"))
        span.append(time.monotonic())
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    calling.wait()
    seen: list[float] = []
    while not done.is_set():
        seen.append(time.monotonic())  # runs only while the waiting thread has released the GIL
    worker.join()
    start, end = span
    assert end - start > 0.2 and result[0].source == "redis"
    # This thread ran in the middle of the wait, not only around it.
    assert any(start + 0.1 < t < end - 0.05 for t in seen)

    async def main() -> tuple[ratewall.Decision, int]:
        ticks = 0
        pending = asyncio.ensure_future(lim.acheck("k"))
        while not pending.done():
            ticks += 1
            await asyncio.sleep(0.001)
        return pending.result(), ticks

    assert _redis_command(private_redis.port, "CLIENT", "PAUSE", "400", "WRITE").startswith(b"+OK")
    decision, ticks = asyncio.run(main())
    assert decision.source == "redis" and ticks > 50


def test_outage_fail_modes_then_recovery_without_rebuilding(private_redis: RedisServer, unique: str) -> None:
    events: list[ratewall.StorageEvent] = []

    def on_event(e: ratewall.StorageEvent) -> None:
        events.append(e)
        raise RuntimeError("a faulty callback must never reach a request")

    timeout = 0.1
    store = ratewall.storage_from_uri(
        private_redis.url,
        command_timeout=timeout,
        connect_timeout=0.2,
        reconnect_min_delay=0.01,
        reconnect_max_delay=0.1,
        key_prefix=unique,
        on_event=on_event,
    )
    open_ = store.limiter("2/hour", name="open", fail_mode="fail-open")
    closed = store.limiter("2/hour", name="closed", fail_mode="fail-closed")
    local = store.limiter("2/hour", name="local", fail_mode="local")
    for lim in (open_, closed, local):
        # (polled: a stall of a loaded machine beyond the short timeout would be a fallback)
        assert _until(lambda: lim.check("k").source == "redis", 5)

    private_redis.stop()
    bound = timeout + 0.5  # the command timeout plus scheduling slack on a loaded machine
    for _ in range(3):
        t0 = time.monotonic()
        d = open_.check("k")
        assert time.monotonic() - t0 < bound
        assert d.allowed and d.source == "fail-open" and d.fallback
        t0 = time.monotonic()
        d = closed.check("k")
        assert time.monotonic() - t0 < bound
        assert not d.allowed and d.source == "fail-closed" and d.retry_after == pytest.approx(1.0)
    # local: the same policy in process (it has its own state: 2 more admitted, then denied).
    assert [(d.allowed, d.source) for d in (local.check("k") for _ in range(3))] == [
        (True, "local"),
        (True, "local"),
        (False, "local"),
    ]

    async def during_outage() -> ratewall.Decision:
        return await asyncio.wait_for(open_.acheck("k"), bound)

    assert asyncio.run(during_outage()).source == "fail-open"
    health = store.health()
    assert health["state"] == "down" and health["errors"] >= 10 and health["disconnects"] >= 1
    assert health["fail_open"] >= 4 and health["fail_closed"] >= 3 and health["local"] >= 3
    assert health["last_error"]
    assert _until(lambda: any(e.kind == "down" for e in events), 5)
    assert _until(lambda: any(e.kind == "error" and e.policy == "closed" and e.fail_mode == "fail-closed" for e in events), 5)

    private_redis.start()  # same port, empty (no persistence)
    assert _until(lambda: open_.check("fresh").source == "redis", 10)
    for lim in (closed, local):
        assert _until(lambda: lim.check("fresh").source == "redis", 5)
    assert store.health()["state"] == "up" and store.health()["reconnects"] >= 1  # type: ignore[operator]
    assert _until(lambda: any(e.kind == "up" for e in events), 5)


def _event_threads() -> int:
    return sum(t.name == "ratewall-events" for t in threading.enumerate())


def test_lazy_start_while_redis_is_down(unique: str) -> None:
    port = free_port()
    kinds: list[str] = []
    before = _event_threads()
    store = ratewall.storage_from_uri(
        f"redis://127.0.0.1:{port}",
        lazy=True,
        fail_mode="local",
        command_timeout=0.05,
        reconnect_max_delay=0.1,
        key_prefix=unique,
        on_event=lambda e: kinds.append(e.kind),
    )
    assert _event_threads() == before + 1
    lim = store.limiter("1/hour", name="p")
    assert [(d.allowed, d.source) for d in (lim.check("k"), lim.check("k"))] == [(True, "local"), (False, "local")]
    server = RedisServer(port).start()
    try:
        assert _until(lambda: lim.check("k2").source == "redis", 10)
        assert _until(lambda: "up" in kinds, 5) and "error" in kinds
    finally:
        server.stop()
    # Dropping the store closes its event feed: the callback thread ends.
    del store, lim
    assert _until(lambda: _event_threads() == before, 5)


def test_redis_unix_socket_url(tmp_path: Any, unique: str) -> None:
    sock = str(tmp_path / "redis.sock")
    server = RedisServer(unix_socket=sock).start()
    try:
        store = ratewall.storage_from_uri(f"redis+unix://{sock}", key_prefix=unique, **SLOW)
        lim = store.limiter("2/hour", name="p")
        assert [(d.allowed, d.source) for d in (lim.check("k") for _ in range(3))] == [
            (True, "redis"),
            (True, "redis"),
            (False, "redis"),
        ]
        # The same state over TCP: one server, two ways in.
        over_tcp = ratewall.storage_from_uri(server.url, key_prefix=unique, **SLOW).limiter("2/hour", name="p")
        assert not over_tcp.check("k").allowed
    finally:
        server.stop()


def _test_pki(directory: Any) -> bool:
    """A throwaway PKI in ``directory`` (``redis/testing/tls-certs.sh``: ``ca.pem``, and
    ``server.pem``/``server.key`` for 127.0.0.1 signed by it); ``False`` (skip) when ``openssl``
    is missing outside CI."""
    script = Path(__file__).resolve().parents[2] / "redis" / "testing" / "tls-certs.sh"
    made = subprocess.run(["bash", str(script), str(directory)], capture_output=True, timeout=120)
    if made.returncode == 0:
        return True
    if os.environ.get("CI"):
        pytest.fail(f"{script} could not make test certificates but CI is set: install openssl")
    return False


def test_rediss_round_trips_to_a_tls_only_server(tmp_path: Any, unique: str) -> None:
    """``rediss://`` from Python, to a server whose certificate a private CA signed: verified
    with ``tls_ca_file`` (or the configuration's ``tls_ca_file``), unverified with
    ``#insecure``; against the system's roots the certificate is refused."""
    if not _test_pki(tmp_path):
        pytest.skip("no openssl to make test certificates")
    ca = str(tmp_path / "ca.pem")
    server = RedisServer(tls=(str(tmp_path / "server.pem"), str(tmp_path / "server.key"))).start()
    verified = f"rediss://127.0.0.1:{server.port}"
    try:
        for uri, options in [(verified, {"tls_ca_file": ca}), (server.url, {})]:
            lim = ratewall.storage_from_uri(uri, key_prefix=unique, **options, **SLOW).limiter("2/hour", name="p")
            assert [(d.allowed, d.source) for d in (lim.check(uri) for _ in range(3))] == [
                (True, "redis"),
                (True, "redis"),
                (False, "redis"),
            ], uri
        config = ratewall.Config.from_toml(f'[defaults]\nstorage = "{verified}"\ntls_ca_file = "{ca}"\n[policies.a]\nlimits = "1/hour"')
        assert config.open(connect_timeout=2.0)["a"].check("cfg").source == "redis"
        with pytest.raises(ConnectionError, match="certificate"):
            ratewall.storage_from_uri(verified, connect_timeout=2.0)
        with pytest.raises(ValueError, match="rediss:// URLs only"):
            ratewall.storage_from_uri(f"redis://127.0.0.1:{server.port}", tls_ca_file=ca)
        with pytest.raises(OSError, match="tls_ca_file"):
            ratewall.storage_from_uri(verified, tls_ca_file=str(tmp_path / "missing.pem"))
    finally:
        server.stop()


def test_rediss_presents_a_client_certificate_to_a_server_that_asks(tmp_path: Any, unique: str) -> None:
    """Mutual TLS: a server that asks every client for a certificate refuses a storage without
    one, and decides for one with ``tls_cert_file`` and ``tls_key_file`` (or the configuration's
    own); one of the two without the other is a ValueError that names the missing one."""
    if not _test_pki(tmp_path):
        pytest.skip("no openssl to make test certificates")
    ca, cert, key = (str(tmp_path / n) for n in ("ca.pem", "client.pem", "client.key"))
    server = RedisServer(tls=(str(tmp_path / "server.pem"), str(tmp_path / "server.key")), client_ca=ca).start()
    url = f"rediss://127.0.0.1:{server.port}"
    try:
        with pytest.raises(ConnectionError):
            ratewall.storage_from_uri(url, tls_ca_file=ca, connect_timeout=2.0)
        store = ratewall.storage_from_uri(url, key_prefix=unique, tls_ca_file=ca, tls_cert_file=cert, tls_key_file=key, **SLOW)
        lim = store.limiter("2/hour", name="p")
        assert [(d.allowed, d.source) for d in (lim.check("k") for _ in range(3))] == [
            (True, "redis"),
            (True, "redis"),
            (False, "redis"),
        ]
        config = ratewall.Config.from_toml(
            f'[defaults]\nstorage = "{url}"\ntls_ca_file = "{ca}"\ntls_cert_file = "{cert}"\n'
            f'tls_key_file = "{key}"\n[policies.a]\nlimits = "1/hour"'
        )
        assert config.open(connect_timeout=2.0)["a"].check("cfg").source == "redis"
        with pytest.raises(ValueError, match="tls_key_file"):
            ratewall.storage_from_uri(url, tls_ca_file=ca, tls_cert_file=cert)
        with pytest.raises(ValueError, match="tls_cert_file"):
            ratewall.storage_from_uri(url, tls_ca_file=ca, tls_key_file=key)
        with pytest.raises(OSError, match="tls_key_file"):
            ratewall.storage_from_uri(url, tls_cert_file=cert, tls_key_file=str(tmp_path / "missing.key"))
        with pytest.raises(ValueError, match="rediss:// URLs only"):
            ratewall.storage_from_uri(f"redis://127.0.0.1:{server.port}", tls_cert_file=cert, tls_key_file=key)
    finally:
        server.stop()


def test_a_redis_error_reply_is_decided_by_the_fail_mode(private_redis: RedisServer, unique: str) -> None:
    """Redis answers, but with an error (the key holds another type): not an outage of the
    connection, yet the fail mode decides and the event says why."""
    events: list[ratewall.StorageEvent] = []
    store = ratewall.storage_from_uri(private_redis.url, key_prefix=unique, on_event=events.append, **SLOW)
    lim = store.limiter("5/hour", algorithm="fixed-window", name="p", fail_mode="fail-closed")
    (key,) = lim.redis_keys("victim")
    assert _redis_command(private_redis.port, "HSET", key, "f", "v").startswith(b":1")
    d = lim.check("victim")
    assert not d.allowed and d.source == "fail-closed"
    assert lim.check("someone-else").source == "redis"  # the connection is fine
    health = store.health()
    assert health["state"] == "up" and health["errors"] == 1 and "WRONGTYPE" in str(health["last_error"])
    assert _until(lambda: any(e.kind == "error" and "WRONGTYPE" in (e.error or "") for e in events), 5)


# -- bad inputs -------------------------------------------------------------------------------


def test_bad_urls_options_and_unreachable_servers(redis_url: str) -> None:
    with pytest.raises(ValueError, match="invalid storage URL"):
        ratewall.storage_from_uri("redis://")
    with pytest.raises(ValueError, match="invalid storage URL"):
        ratewall.storage_from_uri("redis://host:notaport")
    with pytest.raises(ValueError, match="unsupported storage_uri scheme"):
        ratewall.storage_from_uri("http://127.0.0.1:6379")
    with pytest.raises(ratewall.StorageUnavailableError, match="not supported"):
        ratewall.storage_from_uri("redis+sentinel://127.0.0.1:26379/m")
    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match="cannot connect to Redis"):
        ratewall.storage_from_uri(f"redis://127.0.0.1:{free_port()}", connect_timeout=0.2)
    assert time.monotonic() - t0 < 5
    # Every URL form reaches the store (a cluster over TLS too): unreachable, not unsupported.
    for scheme in ("redis+cluster", "rediss+cluster"):
        with pytest.raises(ConnectionError):
            ratewall.storage_from_uri(f"{scheme}://127.0.0.1:{free_port()}", connect_timeout=0.2)
    with pytest.raises(ConnectionError):
        ratewall.Config.from_toml(f'[defaults]\nstorage = "redis://127.0.0.1:{free_port()}"\n[policies.a]\nlimits = "1/s"').open(
            connect_timeout=0.2
        )
    with pytest.raises(ConnectionError):
        FlaskLimiter(lambda: "k", app=Flask(__name__), storage_uri=f"redis://127.0.0.1:{free_port()}", storage_options={"connect_timeout": 0.2})
    with pytest.raises(ValueError, match="invalid storage URL"):
        ratewall.Config.from_toml('[defaults]\nstorage = "redis://"\n[policies.a]\nlimits = "1/s"').open()
    with pytest.raises(TypeError, match="unknown Redis storage option"):
        ratewall.storage_from_uri(redis_url, socket_timeout=1)
    with pytest.raises(ValueError, match="command_timeout"):
        ratewall.storage_from_uri(redis_url, command_timeout=0)
    with pytest.raises(ValueError, match="local_fraction"):
        ratewall.storage_from_uri(redis_url, local_fraction=1.5)
    with pytest.raises(ValueError, match="unknown fail mode"):
        ratewall.storage_from_uri(redis_url, fail_mode="maybe")
    with pytest.raises(ValueError, match="key_prefix"):
        ratewall.storage_from_uri(redis_url, key_prefix="a{b}")
    with pytest.raises(TypeError, match="on_event must be callable"):
        ratewall.storage_from_uri(redis_url, on_event="log")
    store = ratewall.storage_from_uri(redis_url)
    with pytest.raises(TypeError, match="clock= cannot be used"):
        store.limiter("1/s", clock=time.monotonic)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock= cannot be used"):
        store.limiter("1/s", clock="coarse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown unit"):
        store.limiter("1/fortnight")
    with pytest.raises(ValueError, match="sliding log on Redis holds at most"):
        store.limiter("1000000/day", algorithm="sliding-log")
    with pytest.raises(ValueError, match="contains"):
        store.limiter("1/s", name="{x}")
    with pytest.raises(ValueError, match="fail_mode"):
        AsgiMiddleware(lambda *a: None, storage_uri=redis_url, fail_mode="maybe")  # type: ignore[arg-type,return-value]
