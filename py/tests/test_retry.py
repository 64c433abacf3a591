"""ratewall.retry: waits are injected (nothing sleeps), and the helpers run against a live
rate-limited server on loopback."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests

from ratewall.retry import (
    AsyncRetryTransport,
    RetryBudgetExceeded,
    RetryPolicy,
    RetryTransport,
    call_with_retry,
    parse_retry_after,
    retrying_session,
)
from ratewall.wsgi import RateLimitMiddleware

from .conftest import FakeClock, werkzeug_server

NOW = 1_700_000_000.0


def test_parse_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("0") == 0.0
    date = email.utils.formatdate(NOW + 90, usegmt=True)
    assert parse_retry_after(date, now=lambda: NOW) == pytest.approx(90.0)
    assert parse_retry_after(email.utils.formatdate(NOW - 5, usegmt=True), now=lambda: NOW) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00", now=lambda: NOW) == 0.0  # no zone: GMT
    for bad in (None, "", "soon", "-3", "nan", "inf"):
        assert parse_retry_after(bad) is None


def test_backoff_is_exponential_with_full_jitter() -> None:
    p = RetryPolicy(base_delay=0.5, multiplier=2, max_delay=3, rng=lambda: 0.5)
    assert [p.backoff(n) for n in range(5)] == [0.25, 0.5, 1.0, 1.5, 1.5]
    fixed = RetryPolicy(base_delay=1, jitter=False)
    assert [fixed.backoff(n) for n in range(3)] == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_attempts": 0}, ValueError, "max_attempts must be at least 1"),
        ({"max_attempts": 2.5}, TypeError, "max_attempts must be an int"),
        ({"max_total_wait": -1}, ValueError, "max_total_wait must be a finite number"),
        ({"base_delay": float("nan")}, ValueError, "base_delay"),
        ({"multiplier": 0.5}, ValueError, "multiplier must be at least 1"),
        ({"sleep": 3}, TypeError, "sleep must be callable"),
        ({"max_delay": "1"}, TypeError, "max_delay must be a number"),
    ],
)
def test_bad_policy_arguments(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        RetryPolicy(**kwargs)


def scripted(responses: list[httpx.Response]) -> Iterator[httpx.Response]:
    yield from responses


def mock_transport(*specs: tuple[int, dict[str, str]]) -> tuple[httpx.MockTransport, list[int]]:
    calls: list[int] = []
    queue = list(specs)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        assert request.content == b"payload"
        status, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        return httpx.Response(status, headers=headers, json={"n": len(calls)})

    return httpx.MockTransport(handler), calls


def test_httpx_waits_retry_after_then_backs_off_when_absent() -> None:
    waits: list[float] = []
    policy = RetryPolicy(sleep=waits.append, rng=lambda: 0.5, base_delay=1, now=lambda: NOW)
    inner, calls = mock_transport(
        (429, {"Retry-After": "3"}),
        (429, {}),
        (429, {"Retry-After": email.utils.formatdate(NOW + 7, usegmt=True)}),
        (200, {}),
    )
    with httpx.Client(transport=RetryTransport(policy, transport=inner)) as c:
        r = c.post("http://api.test/items", content=b"payload")
    assert r.status_code == 200 and r.json() == {"n": 4}
    assert waits == [3.0, 1.0, pytest.approx(7.0)]  # Retry-After, jittered backoff(1), HTTP-date
    assert len(calls) == 4


def test_gives_up_after_max_attempts_with_a_clear_error() -> None:
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=3, sleep=waits.append)
    inner, calls = mock_transport((429, {"Retry-After": "1"}))
    with httpx.Client(transport=RetryTransport(policy, transport=inner)) as c:
        with pytest.raises(RetryBudgetExceeded, match="gave up after 3 attempts") as info:
            c.post("http://api.test/", content=b"payload")
    assert waits == [1.0, 1.0] and len(calls) == 3
    assert info.value.attempts == 3 and info.value.waited == 2.0
    assert info.value.response.status_code == 429 and info.value.retry_after == 1.0
    assert "Retry-After: 1" in str(info.value)


def test_gives_up_at_once_when_the_wait_exceeds_the_budget() -> None:
    waits: list[float] = []
    policy = RetryPolicy(max_total_wait=10, sleep=waits.append)
    inner, _ = mock_transport((429, {"Retry-After": "4"}), (429, {"Retry-After": "30"}))
    with httpx.Client(transport=RetryTransport(policy, transport=inner)) as c:
        with pytest.raises(RetryBudgetExceeded, match="exceeds what is left of the 10 s wait budget"):
            c.post("http://api.test/", content=b"payload")
    assert waits == [4.0]


def test_other_statuses_are_returned_not_retried() -> None:
    waits: list[float] = []
    inner, calls = mock_transport((500, {}))
    with httpx.Client(transport=RetryTransport(RetryPolicy(sleep=waits.append), transport=inner)) as c:
        assert c.post("http://api.test/", content=b"payload").status_code == 500
    assert waits == [] and len(calls) == 1
    inner, calls = mock_transport((503, {"Retry-After": "2"}), (200, {}))
    policy = RetryPolicy(statuses=(429, 503), sleep=waits.append)
    with httpx.Client(transport=RetryTransport(policy, transport=inner)) as c:
        assert c.post("http://api.test/", content=b"payload").status_code == 200
    assert waits == [2.0]


def test_async_httpx_uses_the_async_sleep() -> None:
    waits: list[float] = []

    async def fake_sleep(s: float) -> None:
        waits.append(s)

    inner, _ = mock_transport((429, {"Retry-After": "2"}), (200, {}))

    async def run() -> int:
        transport = AsyncRetryTransport(RetryPolicy(async_sleep=fake_sleep), transport=inner)
        async with httpx.AsyncClient(transport=transport) as c:
            return (await c.post("http://api.test/", content=b"payload")).status_code

    assert asyncio.run(run()) == 200 and waits == [2.0]


def test_call_with_retry_is_generic() -> None:
    class R:
        def __init__(self, status_code: int, headers: dict[str, str]) -> None:
            self.status_code = status_code
            self.headers = headers

    seq = [R(429, {"retry-after": "5"}), R(201, {})]
    waits: list[float] = []
    assert call_with_retry(lambda: seq.pop(0), RetryPolicy(sleep=waits.append)).status_code == 201
    assert waits == [5.0]


# -- against a live server that rate-limits (its clock is the fake clock the sleep advances) ----


def limited_app(clock: FakeClock) -> Any:
    def app(environ: dict, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"served"]

    # Token bucket 1/second: the second request in the same instant gets Retry-After: 1.
    return RateLimitMiddleware(app, limits="1/second", clock=clock)


def test_requests_session_against_a_live_limited_server(clock: FakeClock) -> None:
    session = retrying_session(RetryPolicy(sleep=clock.sleep, max_attempts=3))
    with werkzeug_server(limited_app(clock)) as base, session:
        assert session.get(base, timeout=5).text == "served"
        second = session.get(base, timeout=5)
        assert second.status_code == 200 and second.text == "served"
        assert clock.sleeps == [1.0], "waited exactly Retry-After: 1 (injected, not slept)"


def test_requests_budget_spent_against_a_live_server(clock: FakeClock) -> None:
    waits: list[float] = []  # does not advance the server's clock: every retry is denied
    session = retrying_session(RetryPolicy(sleep=waits.append, max_attempts=3))
    with werkzeug_server(limited_app(clock)) as base, session:
        session.get(base, timeout=5)
        with pytest.raises(RetryBudgetExceeded, match="gave up after 3 attempts") as info:
            session.get(base, timeout=5)
    assert waits == [1.0, 1.0]
    assert info.value.response.status_code == 429
    assert info.value.response.json() == {"error": "rate_limited", "retryAfter": 1}


def test_httpx_sync_and_async_against_a_live_limited_server(clock: FakeClock) -> None:
    with werkzeug_server(limited_app(clock)) as base:
        with httpx.Client(transport=RetryTransport(RetryPolicy(sleep=clock.sleep))) as c:
            assert [c.get(base).status_code for _ in range(3)] == [200, 200, 200]
        assert clock.sleeps == [1.0, 1.0]

        async def run() -> list[int]:
            policy = RetryPolicy(async_sleep=clock.async_sleep)
            async with httpx.AsyncClient(transport=AsyncRetryTransport(policy)) as c:
                return [(await c.get(base)).status_code for _ in range(2)]

        assert asyncio.run(run()) == [200, 200]
        assert clock.sleeps == [1.0] * 4  # every request after the first waits for the next token


def test_requests_adapter_resends_the_body(clock: FakeClock) -> None:
    received: list[bytes] = []

    def echo(environ: dict, start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        received.append(environ["wsgi.input"].read(length))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    app = RateLimitMiddleware(echo, limits="1/second", clock=clock)
    session = retrying_session(RetryPolicy(sleep=clock.sleep))
    with werkzeug_server(app) as base, session:
        session.post(base, data=b"first", timeout=5)
        assert session.post(base, data=b"second", timeout=5).status_code == 200
    assert received == [b"first", b"second"]
    assert isinstance(session, requests.Session)
