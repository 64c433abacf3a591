"""Client-side retry on 429: helpers for ``requests`` and ``httpx`` (sync and async).

A rate-limited response says when to come back: ``Retry-After`` as delay-seconds (``30``) or an
HTTP-date. These helpers wait exactly that long when it is present and otherwise back off
exponentially with full jitter (``random() * min(max_delay, base_delay * multiplier**n)``),
cap both the number of attempts and the total time spent waiting, and raise
:class:`RetryBudgetExceeded` when the budget is spent (including when the server asks for a
wait longer than what is left of the budget: waiting would be pointless).

::

    import requests
    from ratewall.retry import RetryPolicy, retrying_session

    session = retrying_session(RetryPolicy(max_attempts=5, max_total_wait=60))
    response = session.get("https://api.example.com/items")   # retried on 429

    import httpx
    from ratewall.retry import RetryTransport, AsyncRetryTransport

    client = httpx.Client(transport=RetryTransport())
    async_client = httpx.AsyncClient(transport=AsyncRetryTransport())

Time is injectable: ``sleep=`` (and ``async_sleep=``) receive every wait in seconds, ``now=``
gives the wall clock used to turn an HTTP-date into a delay, and ``rng=`` the jitter, so tests
assert the waits without sleeping.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, TypeVar

__all__ = [
    "AsyncRetryTransport",
    "RetryAdapter",
    "RetryBudgetExceeded",
    "RetryPolicy",
    "RetryTransport",
    "call_with_retry",
    "call_with_retry_async",
    "parse_retry_after",
    "retrying_session",
]

R = TypeVar("R")


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds (``"30"``; a decimal such as
    ``"1.5"`` is accepted too) or an HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``, measured
    from ``now()``, never negative). ``None`` for a missing or unparseable value."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        import datetime

        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - now())


class RetryBudgetExceeded(Exception):
    """The retry budget is spent and the server still says 429 (or another retry status).

    ``response`` is the last response (already read, closed for streaming clients),
    ``attempts`` how many requests were sent, ``waited`` the seconds spent waiting, and
    ``retry_after`` the wait the server asked for last (``None`` if it did not say).
    """

    def __init__(self, message: str, *, response: Any, attempts: int, waited: float, retry_after: float | None) -> None:
        super().__init__(message)
        self.response = response
        self.attempts = attempts
        self.waited = waited
        self.retry_after = retry_after


class RetryPolicy:
    """When and how long to wait before retrying a rate-limited request.

    :param max_attempts: requests sent at most, the first included (default 5).
    :param max_total_wait: seconds spent waiting at most, over all retries (default 60).
    :param base_delay: the first backoff ceiling when the server sends no ``Retry-After``.
    :param multiplier: growth of the backoff ceiling per retry (default 2).
    :param max_delay: the largest backoff ceiling (default 30 s).
    :param jitter: full jitter (default): wait a uniform random fraction of the ceiling, so
        clients do not retry in lockstep. ``False`` waits the ceiling itself.
    :param statuses: response statuses to retry (default ``(429,)``; add 503 to retry
        overload responses too).
    :param respect_retry_after: wait what ``Retry-After`` says when present (default).
    :param sleep: called with each wait in seconds by the sync helpers (default ``time.sleep``).
    :param async_sleep: awaited with each wait by the async helpers (default ``asyncio.sleep``).
    :param now: the wall clock for HTTP-dates (default ``time.time``).
    :param rng: returns a float in [0, 1) for jitter (default ``random.random``).
    """

    def __init__(
        self,
        *,
        max_attempts: int = 5,
        max_total_wait: float = 60.0,
        base_delay: float = 0.5,
        multiplier: float = 2.0,
        max_delay: float = 30.0,
        jitter: bool = True,
        statuses: Collection[int] = (429,),
        respect_retry_after: bool = True,
        sleep: Callable[[float], Any] = time.sleep,
        async_sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
            raise TypeError(f"max_attempts must be an int, not {type(max_attempts).__name__}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        for name, v in (
            ("max_total_wait", max_total_wait),
            ("base_delay", base_delay),
            ("max_delay", max_delay),
            ("multiplier", multiplier),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, not {type(v).__name__}")
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v}")
        if multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, got {multiplier}")
        for name, fn in (("sleep", sleep), ("async_sleep", async_sleep), ("now", now), ("rng", rng)):
            if not callable(fn):
                raise TypeError(f"{name} must be callable, not {type(fn).__name__}")
        self.max_attempts = max_attempts
        self.max_total_wait = float(max_total_wait)
        self.base_delay = float(base_delay)
        self.multiplier = float(multiplier)
        self.max_delay = float(max_delay)
        self.jitter = bool(jitter)
        self.statuses = frozenset(statuses)
        self.respect_retry_after = respect_retry_after
        self.sleep = sleep
        self.async_sleep = async_sleep
        self.now = now
        self.rng = rng

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0-based) when the server gave no
        ``Retry-After``."""
        ceiling = min(self.max_delay, self.base_delay * self.multiplier**retry)
        return ceiling * self.rng() if self.jitter else ceiling

    def next_wait(self, status: int, headers: Mapping[str, str], attempts: int, waited: float, response: Any) -> float | None:
        """``None`` if ``status`` is not retried; else the wait before the next attempt.
        Raises :class:`RetryBudgetExceeded` when no attempt or wait budget is left."""
        if status not in self.statuses:
            return None
        retry_after = parse_retry_after(headers.get("retry-after"), now=self.now) if self.respect_retry_after else None
        wait = retry_after if retry_after is not None else self.backoff(attempts - 1)
        left = self.max_total_wait - waited
        if attempts >= self.max_attempts:
            reason = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
        elif wait > left + 1e-9:
            reason = (
                f"the next wait of {wait:.3g} s exceeds what is left of the {self.max_total_wait:.3g} s "
                f"wait budget ({max(left, 0.0):.3g} s) after {attempts} attempt{'s' if attempts != 1 else ''}"
            )
        else:
            return wait
        said = f"; Retry-After: {headers.get('retry-after')}" if headers.get("retry-after") is not None else ""
        raise RetryBudgetExceeded(
            f"{reason} (waited {waited:.3g} s): the server still answers {status}{said}",
            response=response,
            attempts=attempts,
            waited=waited,
            retry_after=retry_after,
        )


def call_with_retry(
    send: Callable[[], R],
    policy: RetryPolicy | None = None,
    *,
    status: Callable[[R], int] = lambda r: r.status_code,  # type: ignore[attr-defined]
    headers: Callable[[R], Mapping[str, str]] = lambda r: r.headers,  # type: ignore[attr-defined]
    discard: Callable[[R], Any] | None = None,
) -> R:
    """Calls ``send()`` until its response is not a retry status, waiting between attempts as
    ``policy`` says. Works with any client whose responses have ``status_code`` and
    case-insensitive ``headers`` (``requests``, ``httpx``), or pass ``status``/``headers``
    accessors. ``discard(response)`` releases a response that is retried."""
    policy = policy or RetryPolicy()
    waited = 0.0
    attempts = 0
    while True:
        response = send()
        attempts += 1
        wait = policy.next_wait(status(response), headers(response), attempts, waited, response)
        if wait is None:
            return response
        if discard is not None:
            discard(response)
        policy.sleep(wait)
        waited += wait


async def call_with_retry_async(
    send: Callable[[], Awaitable[R]],
    policy: RetryPolicy | None = None,
    *,
    status: Callable[[R], int] = lambda r: r.status_code,  # type: ignore[attr-defined]
    headers: Callable[[R], Mapping[str, str]] = lambda r: r.headers,  # type: ignore[attr-defined]
    discard: Callable[[R], Awaitable[Any]] | None = None,
) -> R:
    """:func:`call_with_retry` for coroutines; waits with ``policy.async_sleep``."""
    policy = policy or RetryPolicy()
    waited = 0.0
    attempts = 0
    while True:
        response = await send()
        attempts += 1
        wait = policy.next_wait(status(response), headers(response), attempts, waited, response)
        if wait is None:
            return response
        if discard is not None:
            await discard(response)
        await policy.async_sleep(wait)
        waited += wait


# -- requests ---------------------------------------------------------------------------------

try:
    import requests
    from requests.adapters import HTTPAdapter
except ImportError:  # pragma: no cover - requests is optional
    requests = None  # type: ignore[assignment]
    HTTPAdapter = object  # type: ignore[assignment,misc]


class RetryAdapter(HTTPAdapter):  # type: ignore[misc,valid-type]
    """A ``requests`` transport adapter that retries rate-limited responses::

        session.mount("https://", RetryAdapter(RetryPolicy()))

    Other keyword arguments go to ``HTTPAdapter``. Bodies are resent as prepared (streamed
    bodies from generators cannot be resent: pass bytes)."""

    def __init__(self, policy: RetryPolicy | None = None, **kwargs: Any) -> None:
        if requests is None:  # pragma: no cover
            raise ImportError("RetryAdapter needs requests (pip install requests)")
        super().__init__(**kwargs)
        self.policy = policy or RetryPolicy()

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        def once() -> Any:
            return super(RetryAdapter, self).send(request.copy(), **kwargs)

        return call_with_retry(once, self.policy, discard=lambda r: r.close())


def retrying_session(policy: RetryPolicy | None = None, session: Any = None) -> Any:
    """A ``requests.Session`` (new, or ``session``) whose http and https requests retry
    rate-limited responses under ``policy``."""
    if requests is None:  # pragma: no cover
        raise ImportError("retrying_session needs requests (pip install requests)")
    session = session if session is not None else requests.Session()
    adapter = RetryAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# -- httpx ------------------------------------------------------------------------------------

try:
    import httpx
except ImportError:  # pragma: no cover - httpx is optional
    httpx = None  # type: ignore[assignment]

_BaseTransport: Any = httpx.BaseTransport if httpx is not None else object
_AsyncBaseTransport: Any = httpx.AsyncBaseTransport if httpx is not None else object


class RetryTransport(_BaseTransport):  # type: ignore[misc]
    """An ``httpx`` transport that retries rate-limited responses::

        client = httpx.Client(transport=RetryTransport(RetryPolicy()))

    ``transport`` is the transport that sends (default ``httpx.HTTPTransport()``). The request
    body is read into memory once so that it can be resent."""

    def __init__(self, policy: RetryPolicy | None = None, transport: Any = None) -> None:
        if httpx is None:  # pragma: no cover
            raise ImportError("RetryTransport needs httpx (pip install httpx)")
        self.policy = policy or RetryPolicy()
        self.transport = transport if transport is not None else httpx.HTTPTransport()

    def handle_request(self, request: Any) -> Any:
        request.read()

        def discard(response: Any) -> None:
            response.read()
            response.close()

        return call_with_retry(lambda: self.transport.handle_request(request), self.policy, discard=discard)

    def close(self) -> None:
        self.transport.close()


class AsyncRetryTransport(_AsyncBaseTransport):  # type: ignore[misc]
    """The async ``httpx`` transport (``httpx.AsyncClient(transport=AsyncRetryTransport())``);
    waits with ``policy.async_sleep`` so the event loop keeps running."""

    def __init__(self, policy: RetryPolicy | None = None, transport: Any = None) -> None:
        if httpx is None:  # pragma: no cover
            raise ImportError("AsyncRetryTransport needs httpx (pip install httpx)")
        self.policy = policy or RetryPolicy()
        self.transport = transport if transport is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: Any) -> Any:
        await request.aread()

        async def discard(response: Any) -> None:
            await response.aread()
            await response.aclose()

        return await call_with_retry_async(
            lambda: self.transport.handle_async_request(request), self.policy, discard=discard
        )

    async def aclose(self) -> None:
        await self.transport.aclose()
