"""WSGI rate limiting: a middleware for any WSGI app (Django, Flask, Pyramid, Bottle, ...).

::

    from ratewall.wsgi import RateLimitMiddleware

    application = RateLimitMiddleware(application, limits="100/minute")

Denied requests get status 429, ``Retry-After`` and the JSON body
``{"error":"rate_limited","retryAfter":N}``; every limited response gets the rate-limit headers
of the chosen header sets (default: legacy ``X-RateLimit-*``). Values are rendered in Rust.

Key functions receive the WSGI ``environ``. The default is the client address
(``REMOTE_ADDR`` under ``trust_proxy``, default ``False``: proxy headers ignored), IPv6 masked
to ``ipv6_subnet`` (/56).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from ratewall._native import DENIED_CONTENT_TYPE, Decision
from ratewall.keys import DEFAULT_IPV6_SUBNET, TrustProxy, client_key
from ratewall.storage import ClockOption, StorageError, fail_mode_name, open_storage

__all__ = ["RateLimitMiddleware", "environ_client_key"]

logger = logging.getLogger("ratewall.wsgi")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_REASONS = {429: "Too Many Requests", 503: "Service Unavailable"}


def environ_client_key(
    *, trust_proxy: TrustProxy | bool | int | str = False, ipv6_subnet: int = DEFAULT_IPV6_SUBNET
) -> Callable[[Environ], str]:
    """A key function over a WSGI environ: ``REMOTE_ADDR`` walked through
    ``X-Forwarded-For``/``Forwarded`` under ``trust_proxy``, IPv6 masked to ``ipv6_subnet``."""
    trust = TrustProxy(trust_proxy)
    client_key("127.0.0.1", ipv6_subnet=ipv6_subnet)  # validates ipv6_subnet now
    enabled = trust.enabled

    def key(environ: Environ) -> str:
        peer = environ.get("REMOTE_ADDR")
        if not enabled:
            return client_key(peer, ipv6_subnet=ipv6_subnet)
        return client_key(
            peer,
            environ.get("HTTP_X_FORWARDED_FOR"),
            trust_proxy=trust,
            forwarded=environ.get("HTTP_FORWARDED"),
            ipv6_subnet=ipv6_subnet,
        )

    return key


class RateLimitMiddleware:
    """WSGI middleware limiting every request of an app by one policy.

    :param app: the WSGI app.
    :param limits: a rate string (``"100/minute"``) or a list of them (one policy).
    :param key_func: ``key_func(environ) -> str``; default: the client address.
    :param algorithm: ``token-bucket`` (default), ``fixed-window``, ``sliding-window-counter``,
        ``sliding-log`` (``moving-window``), ``fixed-window-aligned``.
    :param headers: header sets on limited responses (``"legacy"`` default, ``"none"``, ...).
    :param cost: permits per request: an int or ``cost(environ) -> int``.
    :param exempt: ``exempt(environ) -> bool``: skip the limit for this request.
    :param on_breach: ``on_breach(environ, decision)``; a returned WSGI app is called instead
        of sending the 429.
    :param denied_status: the status of a denial (429).
    :param storage_uri: ``memory://`` (default) or a Redis URL (``redis://host:6379/0``,
        ``rediss://``, ``redis+unix://``, ``redis+cluster://``): every app instance on the same
        Redis shares one quota. Checks wait for Redis with the GIL released (at most about
        ``command_timeout``).
    :param storage_options: options of the storage (see :mod:`ratewall.storage`).
    :param fail_mode: how a storage failure is decided: ``"open"``/``"fail-open"`` (default:
        let requests through), ``"closed"``/``"fail-closed"`` (Redis: a 429 with
        ``Retry-After``; a custom storage raising ``StorageError``: a 503) or ``"local"`` (Redis
        only: the same limits in process).
    :param clock: a callable returning seconds (default ``ratewall.monotonic``), or ``"coarse"``
        for ``ratewall.coarse_monotonic`` (a tick behind at most, a quarter of the cost; see
        :class:`ratewall.Limiter`). Memory storage only.
    """

    def __init__(
        self,
        app: WSGIApp,
        limits: str | list[str] = "100/minute",
        *,
        key_func: Callable[[Environ], str] | None = None,
        algorithm: str = "token-bucket",
        name: str = "default",
        headers: str = "legacy",
        cost: int | Callable[[Environ], int] = 1,
        exempt: Callable[[Environ], bool] | None = None,
        on_breach: Callable[[Environ, Decision], WSGIApp | None] | None = None,
        denied_status: int = 429,
        trust_proxy: TrustProxy | bool | int | str = False,
        ipv6_subnet: int = DEFAULT_IPV6_SUBNET,
        storage_uri: str = "memory://",
        storage_options: dict[str, Any] | None = None,
        key_prefix: str = "",
        fail_mode: str = "open",
        clock: ClockOption = None,
        max_keys: int | None = None,
        overflow: str = "evict",
        burst: int | None = None,
    ) -> None:
        for n, f in (("key_func", key_func), ("exempt", exempt), ("on_breach", on_breach)):
            if f is not None and not callable(f):
                raise TypeError(f"{n} must be callable, not {type(f).__name__}")
        if isinstance(cost, bool) or not (callable(cost) or isinstance(cost, int)):
            raise TypeError(f"cost must be an int or a callable returning one, not {type(cost).__name__}")
        if isinstance(cost, int) and cost < 1:
            raise ValueError(f"cost must be at least 1, got {cost}")
        if isinstance(denied_status, bool) or not isinstance(denied_status, int) or not 400 <= denied_status <= 599:
            raise ValueError(f"denied_status must be an HTTP error status (400-599), got {denied_status!r}")
        fail_mode = fail_mode_name(fail_mode)
        self.app = app
        self.storage = open_storage(storage_uri, storage_options, fail_mode)
        self.limiter = self.storage.limiter(
            limits,
            algorithm=algorithm,
            name=name,
            headers=headers,
            clock=clock,
            max_keys=max_keys,
            overflow=overflow,
            burst=burst,
        )
        self.key_func = key_func or environ_client_key(trust_proxy=trust_proxy, ipv6_subnet=ipv6_subnet)
        self.cost = cost
        self.exempt = exempt
        self.on_breach = on_breach
        self.denied_status = denied_status
        self.key_prefix = key_prefix
        self.fail_mode = fail_mode

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.exempt is not None and self.exempt(environ):
            return self.app(environ, start_response)
        key = self.key_func(environ)
        cost = self.cost if isinstance(self.cost, int) else self.cost(environ)
        try:
            decision = self.limiter.check(self.key_prefix + key, cost)
        except StorageError:
            if self.fail_mode == "fail-closed":
                body = b"rate limit storage unavailable"
                start_response(
                    "503 Service Unavailable",
                    [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
                )
                return [body]
            logger.exception("rate limit storage failed: request let through (fail_mode='open')")
            return self.app(environ, start_response)
        headers = decision.headers(key)
        if not decision.allowed:
            if self.on_breach is not None:
                custom = self.on_breach(environ, decision)
                if custom is not None:
                    return custom(environ, _adding(start_response, headers))
            body = decision.body.encode()
            status = self.denied_status
            start_response(
                f"{status} {_REASONS.get(status, 'Rate Limited')}",
                [("Content-Type", DENIED_CONTENT_TYPE), ("Content-Length", str(len(body))), *headers],
            )
            return [body]
        if not headers:
            return self.app(environ, start_response)
        return self.app(environ, _adding(start_response, headers))


def _adding(start_response: StartResponse, extra: list[tuple[str, str]]) -> StartResponse:
    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        present = {n.lower() for n, _ in headers}
        merged = list(headers) + [h for h in extra if h[0].lower() not in present]
        if exc_info is not None:
            return start_response(status, merged, exc_info)
        return start_response(status, merged)

    return start
