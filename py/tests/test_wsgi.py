"""ratewall.wsgi: middleware for any WSGI app (werkzeug test client and a real server)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from werkzeug.test import Client
from werkzeug.wrappers import Response

import ratewall
from ratewall.wsgi import RateLimitMiddleware

from .conftest import FakeClock, werkzeug_server


def hello_app(environ: dict, start_response: Any) -> list[bytes]:
    body = b"hello"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def test_wsgi_allowed_limited_recovered(clock: FakeClock) -> None:
    app = RateLimitMiddleware(hello_app, limits="2/minute", algorithm="fixed-window", clock=clock)
    c = Client(app)
    r = c.get("/")
    assert r.status_code == 200 and r.data == b"hello"
    assert r.headers["X-RateLimit-Limit"] == "2" and r.headers["X-RateLimit-Remaining"] == "1"
    c.get("/")
    denied = c.get("/")
    assert denied.status_code == 429
    assert denied.json == {"error": "rate_limited", "retryAfter": 60}
    assert denied.headers["Retry-After"] == "60"
    assert denied.headers["Content-Type"] == "application/json"
    clock.advance(60)
    assert c.get("/").status_code == 200


def test_wsgi_options(clock: FakeClock) -> None:
    def breach(environ: dict, decision: ratewall.Decision) -> Any:
        return Response("custom", status=429)

    app = RateLimitMiddleware(
        hello_app,
        limits="5/minute",
        cost=lambda environ: 3 if environ["REQUEST_METHOD"] == "POST" else 1,
        exempt=lambda environ: environ["PATH_INFO"] == "/health",
        key_func=lambda environ: environ.get("HTTP_X_USER", "anon"),
        on_breach=breach,
        headers="draft-7",
        clock=clock,
    )
    c = Client(app)
    assert all(c.get("/health").status_code == 200 for _ in range(10))
    assert c.post("/", headers={"X-User": "u"}).status_code == 200
    r = c.get("/", headers={"X-User": "u"})
    assert r.headers["RateLimit"] == "limit=5, remaining=1, reset=48"  # token bucket: 4 permits x 12 s to full
    c.get("/", headers={"X-User": "u"})
    denied = c.get("/", headers={"X-User": "u"})
    assert denied.status_code == 429 and denied.data == b"custom"
    assert denied.headers["Retry-After"] == "12"  # one token refills in 60/5 s
    assert c.get("/", headers={"X-User": "v"}).status_code == 200


def test_wsgi_trust_proxy(clock: FakeClock) -> None:
    app = RateLimitMiddleware(hello_app, limits="1/minute", trust_proxy="loopback", clock=clock)
    c = Client(app)
    assert c.get("/", headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 200
    assert c.get("/", headers={"X-Forwarded-For": "203.0.113.2"}).status_code == 200
    assert c.get("/", headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 429


def test_wsgi_bad_options() -> None:
    with pytest.raises(ValueError, match="cost must be at least 1"):
        RateLimitMiddleware(hello_app, cost=0)
    with pytest.raises(ValueError, match="denied_status"):
        RateLimitMiddleware(hello_app, denied_status=302)
    with pytest.raises(ValueError, match="unknown algorithm"):
        RateLimitMiddleware(hello_app, algorithm="leaky")
    with pytest.raises(ratewall.StorageUnavailableError):
        RateLimitMiddleware(hello_app, storage_uri="redis+sentinel://cache:26379/m")
    with pytest.raises(TypeError, match="unknown Redis storage option"):
        RateLimitMiddleware(hello_app, storage_uri="redis://127.0.0.1:1", storage_options={"socket_timeout": 1})
    with pytest.raises(ValueError, match="clock must be 'precise' .* got 'fast'"):
        RateLimitMiddleware(hello_app, clock="fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock must be 'precise', 'coarse' or a callable"):
        RateLimitMiddleware(hello_app, clock=object())  # type: ignore[arg-type]


def test_wsgi_clock_coarse() -> None:
    app = RateLimitMiddleware(hello_app, limits="2/minute", clock="coarse")
    assert app.limiter.clock == "coarse"  # type: ignore[attr-defined]
    c = Client(app)
    assert [c.get("/").status_code for _ in range(3)] == [200, 200, 429]


def test_wsgi_through_a_real_werkzeug_server(clock: FakeClock) -> None:
    app = RateLimitMiddleware(hello_app, limits="3/minute", clock=clock)
    with werkzeug_server(app) as base, requests.Session() as s:
        assert [s.get(base, timeout=5).status_code for _ in range(4)] == [200, 200, 200, 429]
        clock.advance(20)
        assert s.get(base, timeout=5).status_code == 200


class _DownStorage:
    blocking = False

    def __init__(self, uri: str, **options: Any) -> None:
        self.uri = uri

    def limiter(self, limits: Any, **options: Any) -> Any:
        class Backend:
            def check(self, key: str, cost: int = 1) -> Any:
                raise ratewall.StorageError("connection refused")

        return Backend()


def test_wsgi_fail_modes() -> None:
    ratewall.register_storage("down", _DownStorage)
    c = Client(RateLimitMiddleware(hello_app, limits="1/minute", storage_uri="down://"))
    assert [c.get("/").status_code for _ in range(3)] == [200] * 3
    closed = Client(RateLimitMiddleware(hello_app, limits="1/minute", storage_uri="down://", fail_mode="closed"))
    assert closed.get("/").status_code == 503
    with pytest.raises(ValueError, match="scheme must be a name"):
        ratewall.register_storage("down://", _DownStorage)
