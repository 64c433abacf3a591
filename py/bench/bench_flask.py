"""Per-request overhead of rate limiting a Flask route: ratewall.flask vs Flask-Limiter.

Three apps, one route each, requests through Flask's test client in the same run:

- bare:          no limiter
- ratewall:      ratewall.flask.Limiter, @limit("10000000 per hour"), headers enabled
- Flask-Limiter: flask_limiter.Limiter, the same limit, headers enabled, memory storage,
                 fixed window (both libraries' default strategy)

Overhead = time per limited request - time per bare request (best of several interleaved
rounds, CPU time of the process). Printed: each overhead in microseconds and ratewall's overhead as a fraction of
Flask-Limiter's (goal: at most 0.2).

    python py/bench/bench_flask.py [--quick]
"""

from __future__ import annotations

import gc
import sys
import time
import warnings

import flask
import flask_limiter
from flask import Flask

import ratewall.flask

QUICK = "--quick" in sys.argv
ROUNDS = 20 if QUICK else 80
REQUESTS = 200 if QUICK else 300
LIMIT = "10000000 per hour"


def bare_app() -> Flask:
    app = Flask("bare")

    @app.route("/")
    def index() -> str:
        return "ok"

    return app


def ratewall_app() -> Flask:
    app = Flask("ratewall")
    limiter = ratewall.flask.Limiter(ratewall.flask.get_remote_address, app=app, headers_enabled=True)

    @app.route("/")
    @limiter.limit(LIMIT)
    def index() -> str:
        return "ok"

    return app


def flask_limiter_app() -> Flask:
    app = Flask("flask_limiter")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        limiter = flask_limiter.Limiter(
            flask_limiter.util.get_remote_address,
            app=app,
            headers_enabled=True,
            storage_uri="memory://",
            strategy="fixed-window",
        )

    @app.route("/")
    @limiter.limit(LIMIT)
    def index() -> str:
        return "ok"

    return app


def per_request_us(client: flask.testing.FlaskClient, n: int) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.process_time_ns()
        for _ in range(n):
            response = client.get("/")
        elapsed = time.process_time_ns() - t0
    finally:
        gc.enable()
    assert response.status_code == 200
    return elapsed / n / 1000


def main() -> None:
    clients = {
        "bare": bare_app().test_client(),
        "ratewall": ratewall_app().test_client(),
        "Flask-Limiter": flask_limiter_app().test_client(),
    }
    limited = clients["ratewall"].get("/")
    assert "X-RateLimit-Remaining" in limited.headers
    assert "X-RateLimit-Remaining" in clients["Flask-Limiter"].get("/").headers
    for c in clients.values():  # warm up
        per_request_us(c, 200)
    best = {name: float("inf") for name in clients}
    for _ in range(ROUNDS):
        for name, c in clients.items():  # interleaved, so drift affects all alike
            best[name] = min(best[name], per_request_us(c, REQUESTS))
    ours = best["ratewall"] - best["bare"]
    theirs = best["Flask-Limiter"] - best["bare"]
    from importlib.metadata import version

    print(
        f"Flask {version('flask')} test client, Flask-Limiter {version('flask-limiter')}, "
        f"Python {sys.version.split()[0]}"
    )
    for name, us in best.items():
        print(f"{name:<14} {us:8.1f} us/request")
    print(f"overhead: ratewall {ours:.1f} us, Flask-Limiter {theirs:.1f} us")
    print(f"ratio ratewall / Flask-Limiter overhead: {ours / theirs:.3f}  (goal: <= 0.2)")


if __name__ == "__main__":
    main()
