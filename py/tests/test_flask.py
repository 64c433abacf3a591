"""ratewall.flask: a Flask-Limiter-shaped extension, through the test client and a real server."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from flask import Blueprint, Flask, jsonify, request

import ratewall
from ratewall.flask import ExemptionScope, Limiter, RateLimitExceeded, get_remote_address, remote_address
from ratewall.storage import StorageError, register_storage

from .conftest import FakeClock, werkzeug_server


def make_app(clock: FakeClock, **kwargs: Any) -> tuple[Flask, Limiter]:
    app = Flask(__name__)
    app.config.update(kwargs.pop("config", {}))
    limiter = Limiter(get_remote_address, app=app, clock=clock, **kwargs)
    return app, limiter


def test_allowed_limited_recovered_with_headers_and_body(clock: FakeClock) -> None:
    app, limiter = make_app(clock, headers_enabled=True)

    @app.route("/slow")
    @limiter.limit("2 per minute")
    def slow() -> str:
        return "ok"

    c = app.test_client()
    r1 = c.get("/slow")
    assert r1.status_code == 200 and r1.text == "ok"
    assert r1.headers["X-RateLimit-Limit"] == "2"
    assert r1.headers["X-RateLimit-Remaining"] == "1"
    assert int(r1.headers["X-RateLimit-Reset"]) > 1_600_000_000
    assert "Retry-After" not in r1.headers
    assert c.get("/slow").headers["X-RateLimit-Remaining"] == "0"
    clock.advance(20)
    r3 = c.get("/slow")
    assert r3.status_code == 429
    assert r3.content_type == "application/json"
    assert r3.get_json() == {"error": "rate_limited", "retryAfter": 40}
    assert r3.headers["Retry-After"] == "40"
    assert r3.headers["X-RateLimit-Remaining"] == "0"
    assert "Date" not in r3.headers or r3.headers.getlist("Date") == [r3.headers["Date"]]
    clock.advance(40)
    assert c.get("/slow").status_code == 200


def test_retry_after_is_sent_on_429_even_without_headers_enabled(clock: FakeClock) -> None:
    app, limiter = make_app(clock)

    @app.route("/x")
    @limiter.limit("1/minute")
    def x() -> str:
        return "x"

    c = app.test_client()
    ok = c.get("/x")
    assert "X-RateLimit-Limit" not in ok.headers
    denied = c.get("/x")
    assert denied.status_code == 429 and denied.headers["Retry-After"] == "60"
    assert "X-RateLimit-Limit" not in denied.headers


def test_default_limits_count_per_route_and_route_limits_override(clock: FakeClock) -> None:
    app, limiter = make_app(clock, default_limits=["2/minute"])

    @app.route("/a")
    def a() -> str:
        return "a"

    @app.route("/b")
    def b() -> str:
        return "b"

    @app.route("/own")
    @limiter.limit("4/minute")
    def own() -> str:
        return "own"

    @app.route("/both")
    @limiter.limit("5/minute", override_defaults=False)
    def both() -> str:
        return "both"

    c = app.test_client()
    assert [c.get("/a").status_code for _ in range(3)] == [200, 200, 429]
    assert [c.get("/b").status_code for _ in range(3)] == [200, 200, 429]
    assert [c.get("/own").status_code for _ in range(5)] == [200] * 4 + [429]
    assert [c.get("/both").status_code for _ in range(3)] == [200, 200, 429]
    assert c.get("/missing").status_code == 404


def test_application_limits_are_shared_and_denials_take_nothing(clock: FakeClock) -> None:
    app, limiter = make_app(clock, application_limits=["3/minute"])

    @app.route("/a")
    def a() -> str:
        return "a"

    @app.route("/tight")
    @limiter.limit("1/minute")
    def tight() -> str:
        return "t"

    c = app.test_client()
    assert c.get("/tight").status_code == 200  # app: 2 left
    assert c.get("/tight").status_code == 429  # route denies: the app permit is given back
    assert c.get("/tight").status_code == 429
    assert [c.get("/a").status_code for _ in range(3)] == [200, 200, 429]


def test_exemptions_and_request_filter(clock: FakeClock) -> None:
    app, limiter = make_app(clock, default_limits=["1/minute"], application_limits=["100/minute"])
    bp = Blueprint("health", __name__)

    @bp.route("/health/live")
    def live() -> str:
        return "live"

    @app.route("/exempt")
    @limiter.exempt
    def exempt() -> str:
        return "e"

    @app.route("/only-defaults-exempt")
    @limiter.exempt(flags=ExemptionScope.DEFAULT)
    def partly() -> str:
        return "p"

    @app.route("/filtered")
    def filtered() -> str:
        return "f"

    @limiter.request_filter
    def is_internal() -> bool:
        return request.headers.get("X-Internal") == "yes"

    limiter.exempt(bp)
    app.register_blueprint(bp)
    c = app.test_client()
    assert all(c.get("/exempt").status_code == 200 for _ in range(5))
    assert all(c.get("/health/live").status_code == 200 for _ in range(5))
    assert all(c.get("/only-defaults-exempt").status_code == 200 for _ in range(5))
    assert [c.get("/filtered", headers={"X-Internal": "yes"}).status_code for _ in range(3)] == [200] * 3
    assert [c.get("/filtered").status_code for _ in range(2)] == [200, 429]
    with pytest.raises(TypeError):
        limiter.exempt(42)


def test_cost_int_and_callable(clock: FakeClock) -> None:
    app, limiter = make_app(clock)

    @app.route("/batch", methods=["POST"])
    @limiter.limit("10/minute", cost=lambda: int(request.args.get("n", "1")))
    def batch() -> str:
        return "done"

    @app.route("/heavy")
    @limiter.limit("10/minute", cost=4)
    def heavy() -> str:
        return "heavy"

    c = app.test_client()
    assert c.post("/batch?n=7").status_code == 200
    assert c.post("/batch?n=4").status_code == 429
    assert c.post("/batch?n=3").status_code == 200
    assert [c.get("/heavy").status_code for _ in range(3)] == [200, 200, 429]
    with pytest.raises(ValueError, match="cost must be at least 1"):
        limiter.limit("1/s", cost=0)


def test_deduct_when_counts_only_failed_logins(clock: FakeClock) -> None:
    app, limiter = make_app(clock, headers_enabled=True)

    @app.route("/login", methods=["POST"])
    @limiter.limit("3/15minutes", deduct_when=lambda response: response.status_code == 401)
    def login() -> Any:
        if request.form.get("password") == "right":
            return "welcome"
        return "nope", 401

    c = app.test_client()
    for _ in range(10):
        assert c.post("/login", data={"password": "right"}).status_code == 200
    assert [c.post("/login", data={"password": "wrong"}).status_code for _ in range(3)] == [401] * 3
    blocked = c.post("/login", data={"password": "right"})
    assert blocked.status_code == 429
    assert blocked.get_json()["retryAfter"] == 900
    clock.advance(900)
    assert c.post("/login", data={"password": "right"}).status_code == 200


def test_blueprint_limits_apply_to_every_route_of_the_blueprint(clock: FakeClock) -> None:
    app, limiter = make_app(clock, default_limits=["100/minute"])
    api = Blueprint("api", __name__, url_prefix="/api")

    @api.route("/one")
    def one() -> str:
        return "1"

    @api.route("/two")
    def two() -> str:
        return "2"

    @api.route("/special")
    @limiter.limit("1/minute")
    def special() -> str:
        return "s"

    limiter.limit("2/minute")(api)
    app.register_blueprint(api)
    c = app.test_client()
    assert [c.get("/api/one").status_code for _ in range(3)] == [200, 200, 429]
    assert [c.get("/api/two").status_code for _ in range(3)] == [200, 200, 429], "per route"
    assert [c.get("/api/special").status_code for _ in range(2)] == [200, 429], "route overrides"


def test_nested_blueprints_inherit_ancestor_limits(clock: FakeClock) -> None:
    app, limiter = make_app(clock)
    parent = Blueprint("parent", __name__, url_prefix="/p")
    child = Blueprint("child", __name__, url_prefix="/c")

    @child.route("/x")
    def x() -> str:
        return "x"

    limiter.limit("1/minute")(parent)
    parent.register_blueprint(child)
    app.register_blueprint(parent)
    c = app.test_client()
    assert [c.get("/p/c/x").status_code for _ in range(2)] == [200, 429]


def test_shared_limit_per_method_methods_exempt_when(clock: FakeClock) -> None:
    app, limiter = make_app(clock)
    shared = limiter.shared_limit("3/minute", scope="search")

    @app.route("/s1")
    @shared
    def s1() -> str:
        return "1"

    @app.route("/s2")
    @shared
    def s2() -> str:
        return "2"

    @app.route("/m", methods=["GET", "POST"])
    @limiter.limit("1/minute", per_method=True)
    def m() -> str:
        return "m"

    @app.route("/writes", methods=["GET", "POST"])
    @limiter.limit("1/minute", methods=["post"])
    def writes() -> str:
        return "w"

    @app.route("/vip")
    @limiter.limit("1/minute", exempt_when=lambda: request.args.get("vip") == "1")
    def vip() -> str:
        return "v"

    c = app.test_client()
    assert [c.get(p).status_code for p in ("/s1", "/s2", "/s1", "/s2")] == [200, 200, 200, 429]
    assert [c.get("/m").status_code, c.post("/m").status_code, c.get("/m").status_code] == [200, 200, 429]
    assert [c.get("/writes").status_code for _ in range(3)] == [200] * 3
    assert [c.post("/writes").status_code for _ in range(2)] == [200, 429]
    assert [c.get("/vip?vip=1").status_code for _ in range(3)] == [200] * 3
    assert [c.get("/vip").status_code for _ in range(2)] == [200, 429]


def test_keys_scope_and_custom_key_func(clock: FakeClock) -> None:
    app, limiter = make_app(clock)

    @app.route("/u")
    @limiter.limit("1/minute", key_func=lambda: request.args["user"], scope="users")
    def u() -> str:
        return "u"

    c = app.test_client()
    assert c.get("/u?user=alice").status_code == 200
    assert c.get("/u?user=bob").status_code == 200
    assert c.get("/u?user=alice").status_code == 429


def test_ipv6_clients_are_keyed_by_their_56(clock: FakeClock) -> None:
    app, limiter = make_app(clock)

    @app.route("/v6")
    @limiter.limit("1/minute")
    def v6() -> str:
        return "v6"

    c = app.test_client()
    assert c.get("/v6", environ_base={"REMOTE_ADDR": "2001:db8:abcd:1200::1"}).status_code == 200
    assert c.get("/v6", environ_base={"REMOTE_ADDR": "2001:db8:abcd:12ff::2"}).status_code == 429
    assert c.get("/v6", environ_base={"REMOTE_ADDR": "2001:db8:abcd:1300::1"}).status_code == 200


def test_remote_address_with_trusted_proxy(clock: FakeClock) -> None:
    app = Flask(__name__)
    limiter = Limiter(remote_address(trust_proxy=1), app=app, clock=clock)

    @app.route("/p")
    @limiter.limit("1/minute")
    def p() -> str:
        return "p"

    c = app.test_client()
    h1 = {"X-Forwarded-For": "198.51.100.1"}
    h2 = {"X-Forwarded-For": "198.51.100.2"}
    assert c.get("/p", headers=h1).status_code == 200
    assert c.get("/p", headers=h2).status_code == 200
    assert c.get("/p", headers=h1).status_code == 429


def test_on_breach_hook_sees_hashed_key_and_can_replace_the_response(clock: FakeClock) -> None:
    seen: list[Any] = []

    def hook(limit: Any) -> Any:
        seen.append(limit)
        return jsonify(message="slow down"), 429

    app, limiter = make_app(clock, on_breach=hook, headers_enabled=True)

    @app.route("/h")
    @limiter.limit("1/minute")
    def h() -> str:
        return "h"

    c = app.test_client()
    c.get("/h")
    r = c.get("/h")
    assert r.status_code == 429 and r.get_json() == {"message": "slow down"}
    assert r.headers["Retry-After"] == "60" and r.headers["X-RateLimit-Remaining"] == "0"
    (info,) = seen
    assert info.breached and info.limit == "1/minute" and info.cost == 1
    assert len(info.key) == 22 and "127.0.0.1" not in info.key
    assert info.remaining == 0 and info.retry_after == pytest.approx(60.0)


def test_errorhandler_429_and_error_message(clock: FakeClock) -> None:
    app, limiter = make_app(clock)

    @app.errorhandler(429)
    def too_many(e: RateLimitExceeded) -> Any:
        return jsonify(description=e.description, retry=e.decision.retry_after_header), 429

    @app.route("/e")
    @limiter.limit("1/minute", error_message="easy there")
    def e() -> str:
        return "e"

    c = app.test_client()
    c.get("/e")
    r = c.get("/e")
    assert r.status_code == 429 and r.get_json() == {"description": "easy there", "retry": 60}
    assert r.headers["Retry-After"] == "60"


def test_config_keys(clock: FakeClock) -> None:
    app, limiter = make_app(
        clock,
        config={
            "RATELIMIT_DEFAULT": "2/minute",
            "RATELIMIT_HEADERS_ENABLED": True,
            "RATELIMIT_STRATEGY": "moving-window",
            "RATELIMIT_DENIED_STATUS": 503,
            "RATELIMIT_HEADER_RETRY_AFTER_VALUE": "http-date",
            "RATELIMIT_HEADER_SETS": "legacy, ietf",
            "RATELIMIT_KEY_PREFIX": "svc",
        },
    )

    @app.route("/c")
    def c_() -> str:
        return "c"

    c = app.test_client()
    ok = c.get("/c")
    assert ok.headers["X-RateLimit-Limit"] == "2" and ok.headers["RateLimit"].endswith(";r=1;t=60")
    c.get("/c")
    denied = c.get("/c")
    assert denied.status_code == 503
    assert denied.headers["Retry-After"].endswith("GMT")
    assert json.loads(denied.data)["retryAfter"] == 60


def test_ratelimit_enabled_false_and_constructor_precedence(clock: FakeClock) -> None:
    app = Flask(__name__)
    app.config["RATELIMIT_ENABLED"] = False
    limiter = Limiter(get_remote_address, app=app, default_limits=["1/minute"], clock=clock)

    @app.route("/off")
    def off() -> str:
        return "off"

    assert all(app.test_client().get("/off").status_code == 200 for _ in range(3))
    assert limiter.enabled is False

    app2 = Flask(__name__)
    app2.config["RATELIMIT_DEFAULT"] = "100/minute"
    limiter2 = Limiter(get_remote_address, default_limits=["1/minute"], clock=clock)
    limiter2.init_app(app2)

    @app2.route("/on")
    def on() -> str:
        return "on"

    assert [app2.test_client().get("/on").status_code for _ in range(2)] == [200, 429]


def test_dynamic_limits_and_reset(clock: FakeClock) -> None:
    app, limiter = make_app(clock)
    current = {"value": "1/minute"}

    @app.route("/d")
    @limiter.limit(lambda: current["value"])
    def d() -> str:
        return "d"

    c = app.test_client()
    assert [c.get("/d").status_code for _ in range(2)] == [200, 429]
    current["value"] = "3/minute"
    assert [c.get("/d").status_code for _ in range(4)] == [200, 200, 200, 429]
    limiter.reset()
    assert c.get("/d").status_code == 200


def test_bad_declarations_fail_early(clock: FakeClock) -> None:
    app, limiter = make_app(clock)
    with pytest.raises(ValueError, match="unknown unit"):
        limiter.limit("5 per fortnight")
    with pytest.raises(TypeError, match="a limit must be a rate string"):
        limiter.limit(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="methods must be a list"):
        limiter.limit("1/s", methods="POST")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown strategy"):
        Limiter(get_remote_address, app=Flask(__name__), strategy="leaky-bucket")
    with pytest.raises(ValueError, match="denied_status"):
        Limiter(get_remote_address, app=Flask(__name__), denied_status=200)
    with pytest.raises(TypeError, match="key_func must be callable"):
        Limiter("nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retry_after"):
        Limiter(get_remote_address, app=Flask(__name__), retry_after="later")


class _ClockSpyStorage:
    """Memory storage that records the ``clock=`` each backend was made with."""

    blocking = False
    clocks: list[Any] = []

    def __init__(self, uri: str, **options: Any) -> None:
        self.uri = uri

    def limiter(self, limits: Any, **options: Any) -> Any:
        _ClockSpyStorage.clocks.append(options.get("clock"))
        return ratewall.MemoryStorage().limiter(limits, **options)


def test_clock_coarse_reaches_every_backend_and_bad_clocks_fail_early() -> None:
    register_storage("clockspy", _ClockSpyStorage)
    _ClockSpyStorage.clocks.clear()
    app = Flask(__name__)
    limiter = Limiter(get_remote_address, app=app, storage_uri="clockspy://", clock="coarse")

    @app.route("/")
    @limiter.limit("3/hour")
    def index() -> str:
        return "ok"

    c = app.test_client()
    assert [c.get("/").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert _ClockSpyStorage.clocks == ["coarse"]
    with pytest.raises(ValueError, match="clock must be 'precise' .* got 'fast'"):
        Limiter(get_remote_address, app=Flask(__name__), clock="fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock must be 'precise', 'coarse' or a callable"):
        Limiter(get_remote_address, app=Flask(__name__), clock=1)  # type: ignore[arg-type]


def test_unsupported_storage_uris_are_clear_errors() -> None:
    with pytest.raises(ratewall.StorageUnavailableError, match="not supported"):
        Limiter(get_remote_address, app=Flask(__name__), storage_uri="redis+sentinel://localhost:26379/m")
    with pytest.raises(ValueError, match="unsupported storage_uri scheme"):
        Limiter(get_remote_address, app=Flask(__name__), storage_uri="memcached://localhost")


class _FlakyStorage:
    """A storage whose backends fail while ``down`` is set."""

    blocking = False

    def __init__(self, uri: str, **options: Any) -> None:
        self.uri = uri
        self.down = True
        _FlakyStorage.last = self  # type: ignore[attr-defined]

    def limiter(self, limits: Any, **options: Any) -> Any:
        inner = ratewall.MemoryStorage().limiter(limits, **options)
        storage = self

        class Backend:
            def check(self, key: str, cost: int = 1) -> Any:
                if storage.down:
                    raise StorageError("connection refused")
                return inner.check(key, cost)

            def refund(self, key: str, cost: int = 1) -> Any:
                return inner.refund(key, cost)

        return Backend()


def test_storage_errors_swallow_errors_and_in_memory_fallback(clock: FakeClock) -> None:
    register_storage("flaky", _FlakyStorage)

    app, limiter = make_app(clock, storage_uri="flaky://x")

    @app.route("/r")
    @limiter.limit("1/minute")
    def r() -> str:
        return "r"

    app.testing = True
    with pytest.raises(StorageError):
        app.test_client().get("/r")

    app2, limiter2 = make_app(clock, storage_uri="flaky://x", swallow_errors=True)

    @app2.route("/r")
    @limiter2.limit("1/minute")
    def r2() -> str:
        return "r"

    assert all(app2.test_client().get("/r").status_code == 200 for _ in range(3))

    app3, limiter3 = make_app(clock, storage_uri="flaky://x", in_memory_fallback=["2/minute"])

    @app3.route("/r")
    @limiter3.limit("1/minute")
    def r3() -> str:
        return "r"

    c = app3.test_client()
    assert [c.get("/r").status_code for _ in range(3)] == [200, 200, 429], "fallback limits apply"


def test_through_a_real_werkzeug_server_on_loopback(clock: FakeClock) -> None:
    app, limiter = make_app(clock, headers_enabled=True, default_limits=["3/minute"])

    @app.route("/hello")
    def hello() -> str:
        return "hello"

    with werkzeug_server(app) as base, requests.Session() as s:
        codes = [s.get(f"{base}/hello", timeout=5).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        denied = s.get(f"{base}/hello", timeout=5)
        assert denied.status_code == 429
        assert denied.json() == {"error": "rate_limited", "retryAfter": 60}
        assert denied.headers["Retry-After"] == "60"
        assert denied.headers["X-RateLimit-Limit"] == "3"
        clock.advance(60)
        ok = s.get(f"{base}/hello", timeout=5)
        assert ok.status_code == 200 and ok.headers["X-RateLimit-Remaining"] == "2"


def test_current_limit_inside_the_view(clock: FakeClock) -> None:
    app, limiter = make_app(clock, application_limits=["100/minute"])

    @app.route("/info")
    @limiter.limit("3/minute")
    def info() -> Any:
        cur = limiter.current_limit
        return jsonify(limit=cur.limit, remaining=cur.remaining, n=len(limiter.current_limits))

    c = app.test_client()
    assert c.get("/info").get_json() == {"limit": "3/minute", "remaining": 2, "n": 2}
    assert c.get("/info").get_json()["remaining"] == 1
