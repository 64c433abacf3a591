"""ratewall.asgi: Starlette/FastAPI middleware and dependency (TestClient and a real uvicorn)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import ratewall
from ratewall.asgi import RateLimit, RateLimitExceeded, RateLimitMiddleware, rate_limit_exceeded_handler

from .conftest import FakeClock, uvicorn_server


def starlette_app(**middleware: Any) -> Starlette:
    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("home")

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", home), Route("/health", health)])
    app.add_middleware(RateLimitMiddleware, **middleware)
    return app


def test_middleware_allowed_limited_recovered(clock: FakeClock) -> None:
    app = starlette_app(limits="2/minute", algorithm="fixed-window", clock=clock)
    with TestClient(app) as c:
        r1 = c.get("/")
        assert r1.status_code == 200 and r1.text == "home"
        assert r1.headers["x-ratelimit-limit"] == "2" and r1.headers["x-ratelimit-remaining"] == "1"
        assert c.get("/").status_code == 200
        clock.advance(15)
        denied = c.get("/")
        assert denied.status_code == 429
        assert denied.json() == {"error": "rate_limited", "retryAfter": 45}
        assert denied.headers["retry-after"] == "45"
        assert denied.headers["content-type"] == "application/json"
        clock.advance(45)
        assert c.get("/").status_code == 200


def test_middleware_exempt_cost_key_func_and_ietf_headers(clock: FakeClock) -> None:
    async def key(scope: dict) -> str:  # async key functions are awaited
        return dict(scope["headers"]).get(b"x-api-key", b"anon").decode()

    app = starlette_app(
        limits="10/minute",
        key_func=key,
        cost=lambda scope: 4,
        exempt=lambda scope: scope["path"] == "/health",
        headers="ietf",
        name="api",
        clock=clock,
    )
    with TestClient(app) as c:
        assert all(c.get("/health").status_code == 200 for _ in range(5))
        r = c.get("/", headers={"X-API-Key": "a"})
        assert r.headers["ratelimit-policy"] == '"api";q=10;w=60'
        assert c.get("/", headers={"X-API-Key": "a"}).status_code == 200
        assert c.get("/", headers={"X-API-Key": "a"}).status_code == 429
        assert c.get("/", headers={"X-API-Key": "b"}).status_code == 200


def test_middleware_on_breach_and_status_override(clock: FakeClock) -> None:
    breaches: list[Any] = []

    def on_breach(scope: dict, decision: ratewall.Decision) -> Any:
        breaches.append(decision)
        return JSONResponse({"slow": "down"}, status_code=429)

    app = starlette_app(limits="1/minute", on_breach=on_breach, clock=clock)
    with TestClient(app) as c:
        c.get("/")
        r = c.get("/")
        assert r.json() == {"slow": "down"} and r.headers["retry-after"] == "60"
        assert len(breaches) == 1 and not breaches[0].allowed

    app2 = starlette_app(limits="1/minute", denied_status=503, clock=clock)
    with TestClient(app2) as c:
        c.get("/")
        assert c.get("/").status_code == 503


def test_middleware_trust_proxy_and_ipv6(clock: FakeClock) -> None:
    app = starlette_app(limits="1/minute", trust_proxy=1, clock=clock)
    with TestClient(app, client=("10.0.0.1", 50000)) as c:
        assert c.get("/", headers={"X-Forwarded-For": "2001:db8:1:100::1"}).status_code == 200
        assert c.get("/", headers={"X-Forwarded-For": "2001:db8:1:1ff::9"}).status_code == 429
        assert c.get("/", headers={"X-Forwarded-For": "198.51.100.3"}).status_code == 200


def test_middleware_bad_options() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        pass

    with pytest.raises(ValueError, match="unknown unit"):
        RateLimitMiddleware(app, limits="3/fortnight")
    with pytest.raises(TypeError, match="key_func must be callable"):
        RateLimitMiddleware(app, key_func="ip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fail_mode"):
        RateLimitMiddleware(app, fail_mode="maybe")
    with pytest.raises(ratewall.StorageUnavailableError, match="not supported"):
        RateLimitMiddleware(app, storage_uri="redis+sentinel://localhost:26379/mymaster")
    with pytest.raises(ValueError, match="invalid storage URL"):
        RateLimitMiddleware(app, storage_uri="redis://")
    with pytest.raises(ValueError, match="clock must be 'precise' .* got 'fast'"):
        RateLimitMiddleware(app, clock="fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock must be 'precise', 'coarse' or a callable"):
        RateLimit("1/minute", clock=60)  # type: ignore[arg-type]


def test_clock_coarse_reaches_the_middleware_and_the_dependency() -> None:
    app = starlette_app(limits="2/minute", clock="coarse")
    with TestClient(app) as c:
        assert [c.get("/").status_code for _ in range(3)] == [200, 200, 429]
    mw = RateLimitMiddleware(app, clock="coarse")
    assert mw.limiter.clock == "coarse"
    assert RateLimit("1/minute", clock="coarse").policy.backend.clock == "coarse"  # type: ignore[attr-defined]
    assert RateLimitMiddleware(app).limiter.clock is None


def test_middleware_passes_websocket_and_lifespan_through(clock: FakeClock) -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    mw = RateLimitMiddleware(app, limits="1/minute", clock=clock)

    async def run() -> None:
        for _ in range(3):
            await mw({"type": "websocket", "path": "/ws"}, None, None)  # type: ignore[arg-type]
            await mw({"type": "lifespan"}, None, None)  # type: ignore[arg-type]

    asyncio.run(run())
    assert seen == ["websocket", "lifespan"] * 3


def fastapi_app(clock: FakeClock) -> FastAPI:
    app = FastAPI()
    app.add_exception_handler(RateLimitExceeded, rate_limit_exceeded_handler)
    login_limit = RateLimit("2/minute", algorithm="sliding-log", clock=clock)
    heavy = RateLimit("10/minute", cost=lambda request: int(request.query_params.get("n", "1")), clock=clock)

    @app.post("/login", dependencies=[Depends(login_limit)])
    async def login() -> dict:
        return {"ok": True}

    @app.get("/items")
    async def items(decision: ratewall.Decision = Depends(heavy)) -> dict:
        return {"remaining": decision.remaining}

    @app.get("/free")
    async def free() -> dict:
        return {"free": True}

    return app


def test_fastapi_dependency_per_route(clock: FakeClock) -> None:
    with TestClient(fastapi_app(clock)) as c:
        ok = c.post("/login")
        assert ok.status_code == 200 and ok.headers["x-ratelimit-remaining"] == "1"
        assert c.post("/login").status_code == 200
        denied = c.post("/login")
        assert denied.status_code == 429
        assert denied.json() == {"error": "rate_limited", "retryAfter": 60}
        assert denied.headers["retry-after"] == "60"
        assert c.get("/items?n=7").json() == {"remaining": 3}
        assert c.get("/items?n=4").status_code == 429
        assert all(c.get("/free").status_code == 200 for _ in range(5))
        clock.advance(60)
        assert c.post("/login").status_code == 200


def test_fastapi_dependency_without_handler_still_429_with_headers(clock: FakeClock) -> None:
    app = FastAPI()

    @app.get("/x", dependencies=[Depends(RateLimit("1/minute", clock=clock))])
    async def x() -> dict:
        return {}

    with TestClient(app) as c:
        c.get("/x")
        r = c.get("/x")
        assert r.status_code == 429 and r.headers["retry-after"] == "60"
        assert r.json() == {"detail": {"error": "rate_limited", "retryAfter": 60}}


def test_fastapi_middleware_through_a_real_uvicorn_on_loopback(clock: FakeClock) -> None:
    app = fastapi_app(clock)
    app.add_middleware(RateLimitMiddleware, limits="5/minute", algorithm="fixed-window", clock=clock)
    with uvicorn_server(app) as base, httpx.Client(base_url=base, timeout=5) as c:
        assert [c.get("/free").status_code for _ in range(5)] == [200] * 5
        denied = c.get("/free")
        assert denied.status_code == 429 and denied.headers["retry-after"] == "60"
        assert denied.json()["error"] == "rate_limited"
        clock.advance(60)
        assert c.get("/free").status_code == 200


def test_async_clients_concurrently_admit_exactly_the_quota(clock: FakeClock) -> None:
    app = starlette_app(limits="20/minute", algorithm="sliding-log", clock=clock)

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            responses = await asyncio.gather(*(c.get("/") for _ in range(50)))
        return [r.status_code for r in responses]

    codes = asyncio.run(run())
    assert codes.count(200) == 20 and codes.count(429) == 30


class _AsyncStorage:
    """A storage that does I/O: its sync calls must never run on the event loop."""

    blocking = True

    def __init__(self, uri: str, **options: Any) -> None:
        self.uri = uri
        self.fail = uri.endswith("down")
        self.awaited = 0

    def limiter(self, limits: Any, **options: Any) -> Any:
        inner = ratewall.MemoryStorage().limiter(limits, **options)
        storage = self

        class Backend:
            def check(self, key: str, cost: int = 1) -> Any:
                raise AssertionError("a blocking storage call ran on the event loop")

            async def acheck(self, key: str, cost: int = 1) -> Any:
                await asyncio.sleep(0)
                storage.awaited += 1
                if storage.fail:
                    raise ratewall.StorageError("connection refused")
                return inner.check(key, cost)

        return Backend()


def test_io_storages_are_awaited_never_called_on_the_loop(clock: FakeClock) -> None:
    ratewall.register_storage("asyncfake", _AsyncStorage)
    app = starlette_app(limits="2/minute", storage_uri="asyncfake://ok", clock=clock)
    with TestClient(app) as c:
        assert [c.get("/").status_code for _ in range(3)] == [200, 200, 429]
    open_app = starlette_app(limits="1/minute", storage_uri="asyncfake://down")
    with TestClient(open_app) as c:
        assert [c.get("/").status_code for _ in range(3)] == [200] * 3, "fail open (default)"
    closed_app = starlette_app(limits="1/minute", storage_uri="asyncfake://down", fail_mode="closed")
    with TestClient(closed_app) as c:
        assert c.get("/").status_code == 503
