"""ASGI rate limiting: a pure ASGI middleware (Starlette, FastAPI, any ASGI app) and a FastAPI
dependency for per-route limits.

::

    from fastapi import FastAPI
    from ratewall.asgi import RateLimitMiddleware

    app = FastAPI()
    app.add_middleware(RateLimitMiddleware, limits="100/minute")

Per route, with a dependency (register the handler once for the uniform 429 body)::

    from fastapi import Depends
    from ratewall.asgi import RateLimit, RateLimitExceeded, rate_limit_exceeded_handler

    app.add_exception_handler(RateLimitExceeded, rate_limit_exceeded_handler)

    @app.post("/login", dependencies=[Depends(RateLimit("5/15min", algorithm="sliding-log"))])
    async def login(): ...

Denied requests get status 429, ``Retry-After`` and the JSON body
``{"error":"rate_limited","retryAfter":N}``; every limited response gets the rate-limit headers
of the chosen header sets (default: legacy ``X-RateLimit-*``). Values are rendered in Rust.

The event loop is never blocked: in-memory decisions take well under a microsecond and run
inline; the Redis storage (``storage_uri="redis://..."``) is awaited through
``RedisLimiter.acheck``, a future that the store's I/O thread completes through a socket the
loop watches (see :mod:`ratewall.storage`), so no thread pool and no GIL on the I/O thread.
Key functions and hooks may be sync or async.

Key functions receive the ASGI ``scope`` (middleware) or the Starlette ``Request``
(dependency). The default is the client address: ``scope["client"]`` under ``trust_proxy``
(default ``False``: proxy headers ignored), IPv6 masked to ``ipv6_subnet`` (/56).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from ratewall._native import DENIED_CONTENT_TYPE, Decision
from ratewall.keys import DEFAULT_IPV6_SUBNET, TrustProxy, client_key
from ratewall.storage import ClockOption, StorageError, acheck, fail_mode_name, open_storage

try:  # The dependency and the exception need Starlette; the middleware does not.
    from starlette.exceptions import HTTPException as _StarletteHTTPException
    from starlette.requests import Request
    from starlette.responses import Response
except ImportError:  # pragma: no cover - exercised only without starlette installed
    _StarletteHTTPException = Exception  # type: ignore[assignment,misc]
    Request = Any  # type: ignore[assignment,misc]
    Response = Any  # type: ignore[assignment,misc]

__all__ = [
    "RateLimit",
    "RateLimitExceeded",
    "RateLimitMiddleware",
    "rate_limit_exceeded_handler",
    "scope_client_key",
]

logger = logging.getLogger("ratewall.asgi")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]



def _header(scope: Scope, name: bytes) -> str | None:
    values = [v for k, v in scope.get("headers", ()) if k.lower() == name]
    if not values:
        return None
    return ",".join(v.decode("latin-1") for v in values)


def scope_client_key(
    *, trust_proxy: TrustProxy | bool | int | str = False, ipv6_subnet: int = DEFAULT_IPV6_SUBNET
) -> Callable[[Scope], str]:
    """A key function over an ASGI scope: the client address (``scope["client"]``, walked
    through ``X-Forwarded-For``/``Forwarded`` under ``trust_proxy``), IPv6 masked."""
    trust = TrustProxy(trust_proxy)
    client_key("127.0.0.1", ipv6_subnet=ipv6_subnet)  # validates ipv6_subnet now
    enabled = trust.enabled

    def key(scope: Scope) -> str:
        client = scope.get("client")
        peer = client[0] if client else None
        if not enabled:
            return client_key(peer, ipv6_subnet=ipv6_subnet)
        return client_key(
            peer,
            _header(scope, b"x-forwarded-for"),
            trust_proxy=trust,
            forwarded=_header(scope, b"forwarded"),
            ipv6_subnet=ipv6_subnet,
        )

    return key


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _encode(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]


def _check_cost(cost: Any) -> None:
    if isinstance(cost, bool) or not (callable(cost) or isinstance(cost, int)):
        raise TypeError(f"cost must be an int or a callable returning one, not {type(cost).__name__}")
    if isinstance(cost, int) and cost < 1:
        raise ValueError(f"cost must be at least 1, got {cost}")


class _Policy:
    """One limiter on one storage plus the glue options shared by the middleware and the
    dependency."""

    def __init__(
        self,
        limits: str | list[str],
        *,
        algorithm: str,
        name: str,
        headers: str,
        storage_uri: str,
        storage_options: dict[str, Any] | None,
        key_prefix: str,
        fail_mode: str,
        clock: ClockOption,
        max_keys: int | None,
        overflow: str,
        burst: int | None,
    ) -> None:
        fail_mode = fail_mode_name(fail_mode)
        self.storage = open_storage(storage_uri, storage_options, fail_mode)
        self.backend = self.storage.limiter(
            limits,
            algorithm=algorithm,
            name=name,
            headers=headers,
            clock=clock,
            max_keys=max_keys,
            overflow=overflow,
            burst=burst,
        )
        self.key_prefix = key_prefix
        self.fail_mode = fail_mode

    async def check(self, key: str, cost: int) -> Decision | None:
        """The decision, or ``None`` when the storage failed and the mode is fail-open."""
        try:
            return await acheck(self.storage, self.backend, self.key_prefix + key, cost)
        except StorageError:
            if self.fail_mode == "fail-closed":
                raise
            logger.exception("rate limit storage failed: request let through (fail_mode='open')")
            return None


class RateLimitMiddleware:
    """Pure ASGI middleware limiting every HTTP request of an app by one policy.

    :param app: the ASGI app.
    :param limits: a rate string (``"100/minute"``, ``"10/second; 1000/day"``) or a list.
    :param key_func: ``key_func(scope) -> str`` (sync or async); default: the client address
        (see :func:`scope_client_key`, configured by ``trust_proxy`` and ``ipv6_subnet``).
    :param algorithm: ``token-bucket`` (default), ``fixed-window``, ``sliding-window-counter``,
        ``sliding-log`` (``moving-window``), ``fixed-window-aligned``.
    :param headers: header sets on limited responses (``"legacy"`` default, ``"ietf"``,
        ``"legacy, draft-8"``, ``"none"`` for ``Retry-After`` only).
    :param cost: permits per request, an int or ``cost(scope) -> int`` (sync or async).
    :param exempt: ``exempt(scope) -> bool`` (sync or async): skip the limit (health checks).
    :param on_breach: called with ``(scope, decision)`` on every denial (sync or async); a
        returned ASGI app (such as a Starlette ``Response``) is sent instead of the 429.
    :param denied_status: the status of a denial (429).
    :param storage_uri: ``memory://`` (default) or a Redis URL (``redis://host:6379/0``,
        ``rediss://``, ``redis+unix://``, ``redis+cluster://``): every app instance on the same
        Redis shares one quota. Connects now (``ConnectionError`` if unreachable, unless
        ``storage_options={"lazy": True}``).
    :param storage_options: options of the storage (Redis: ``command_timeout``,
        ``key_prefix``, ``on_event``, ...; see :mod:`ratewall.storage`).
    :param fail_mode: how a storage failure is decided: ``"open"``/``"fail-open"`` (let
        requests through, default), ``"closed"``/``"fail-closed"`` (Redis: a 429 with
        ``Retry-After``; a custom storage raising ``StorageError``: a 503) or ``"local"`` (Redis
        only: the same limits in process). With Redis, ``Decision.source`` says who decided.
    :param clock: a callable returning seconds (default ``ratewall.monotonic``), or ``"coarse"``
        for ``ratewall.coarse_monotonic`` (a tick behind at most, a quarter of the cost; see
        :class:`ratewall.Limiter`). Memory storage only.

    Only ``http`` scopes are limited; ``websocket`` and ``lifespan`` pass through.
    """

    def __init__(
        self,
        app: ASGIApp,
        limits: str | list[str] = "100/minute",
        *,
        key_func: Callable[[Scope], str | Awaitable[str]] | None = None,
        algorithm: str = "token-bucket",
        name: str = "default",
        headers: str = "legacy",
        cost: int | Callable[[Scope], int | Awaitable[int]] = 1,
        exempt: Callable[[Scope], bool | Awaitable[bool]] | None = None,
        on_breach: Callable[[Scope, Decision], Any] | None = None,
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
        _check_cost(cost)
        if isinstance(denied_status, bool) or not isinstance(denied_status, int) or not 400 <= denied_status <= 599:
            raise ValueError(f"denied_status must be an HTTP error status (400-599), got {denied_status!r}")
        self.app = app
        self.policy = _Policy(
            limits,
            algorithm=algorithm,
            name=name,
            headers=headers,
            storage_uri=storage_uri,
            storage_options=storage_options,
            key_prefix=key_prefix,
            fail_mode=fail_mode,
            clock=clock,
            max_keys=max_keys,
            overflow=overflow,
            burst=burst,
        )
        self.key_func = key_func or scope_client_key(trust_proxy=trust_proxy, ipv6_subnet=ipv6_subnet)
        self.cost = cost
        self.exempt = exempt
        self.on_breach = on_breach
        self.denied_status = denied_status

    @property
    def limiter(self) -> Any:
        """The policy's backend (a :class:`ratewall.Limiter` for ``memory://``)."""
        return self.policy.backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.exempt is not None and await _maybe_await(self.exempt(scope)):
            await self.app(scope, receive, send)
            return
        key = await _maybe_await(self.key_func(scope))
        cost = self.cost if isinstance(self.cost, int) else await _maybe_await(self.cost(scope))
        try:
            decision = await self.policy.check(key, cost)
        except StorageError:
            await _send_simple(send, 503, b"rate limit storage unavailable")
            return
        if decision is None:
            await self.app(scope, receive, send)
            return
        if not decision.allowed:
            await self._deny(scope, receive, send, decision, key)
            return
        extra = _encode(decision.headers(key))
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", ())) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _deny(self, scope: Scope, receive: Receive, send: Send, decision: Decision, key: str) -> None:
        headers = _encode(decision.headers(key))
        if self.on_breach is not None:
            custom = await _maybe_await(self.on_breach(scope, decision))
            if custom is not None:
                async def send_with_headers(message: dict[str, Any]) -> None:
                    if message["type"] == "http.response.start":
                        message = dict(message)
                        names = {n for n, _ in message.get("headers", ())}
                        message["headers"] = list(message.get("headers", ())) + [
                            h for h in headers if h[0] not in names
                        ]
                    await send(message)

                await custom(scope, receive, send_with_headers)
                return
        body = decision.body.encode()
        await send(
            {
                "type": "http.response.start",
                "status": self.denied_status,
                "headers": [
                    (b"content-type", DENIED_CONTENT_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _send_simple(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimitExceeded(_StarletteHTTPException):  # type: ignore[misc,valid-type]
    """Raised by the :class:`RateLimit` dependency on a denial: a Starlette ``HTTPException``
    with status 429 and the rate-limit headers. Register :func:`rate_limit_exceeded_handler`
    for the uniform JSON body (FastAPI's default handler would wrap it in ``{"detail": ...}``).
    """

    def __init__(self, decision: Decision, headers: dict[str, str], status_code: int = 429) -> None:
        self.decision = decision
        import json

        super().__init__(status_code=status_code, detail=json.loads(decision.body), headers=headers)


async def rate_limit_exceeded_handler(request: Any, exc: Exception) -> Any:
    """Exception handler rendering :class:`RateLimitExceeded` as the uniform 429 response."""
    if not isinstance(exc, RateLimitExceeded):  # pragma: no cover - registered for this class only
        raise exc
    return Response(
        exc.decision.body,
        status_code=exc.status_code,
        headers=exc.headers,
        media_type=DENIED_CONTENT_TYPE,
    )


class RateLimit:
    """FastAPI dependency: limits the routes that depend on it.

    One instance is one budget: every route that depends on the same instance shares it (with
    ``per_route=True``, each route path counts separately). Use as
    ``dependencies=[Depends(RateLimit("5/minute"))]`` or as a parameter
    (``decision: Decision = Depends(limit)``) to read the decision in the endpoint.

    ``key_func(request) -> str`` and ``cost(request) -> int`` may be sync or async; the default
    key is the client address (``trust_proxy``, ``ipv6_subnet``). Allowed responses get the
    rate-limit headers; a denial raises :class:`RateLimitExceeded`.
    """

    def __init__(
        self,
        limits: str | list[str],
        *,
        key_func: Callable[[Request], str | Awaitable[str]] | None = None,
        algorithm: str = "token-bucket",
        name: str = "default",
        headers: str = "legacy",
        cost: int | Callable[[Request], int | Awaitable[int]] = 1,
        per_route: bool = False,
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
        if _StarletteHTTPException is Exception:  # pragma: no cover
            raise ImportError("ratewall.asgi.RateLimit needs starlette (pip install starlette)")
        if key_func is not None and not callable(key_func):
            raise TypeError(f"key_func must be callable, not {type(key_func).__name__}")
        _check_cost(cost)
        self.policy = _Policy(
            limits,
            algorithm=algorithm,
            name=name,
            headers=headers,
            storage_uri=storage_uri,
            storage_options=storage_options,
            key_prefix=key_prefix,
            fail_mode=fail_mode,
            clock=clock,
            max_keys=max_keys,
            overflow=overflow,
            burst=burst,
        )
        scope_key = scope_client_key(trust_proxy=trust_proxy, ipv6_subnet=ipv6_subnet)
        self.key_func = key_func or (lambda request: scope_key(request.scope))
        self.cost = cost
        self.per_route = per_route
        self.denied_status = denied_status

    @property
    def limiter(self) -> Any:
        """The policy's backend (a :class:`ratewall.Limiter` for ``memory://``)."""
        return self.policy.backend

    async def __call__(self, request: Request, response: Response) -> Decision | None:
        key = await _maybe_await(self.key_func(request))
        if self.per_route:
            route = request.scope.get("route")
            path = getattr(route, "path", None) or request.url.path
            key = f"{key}\x1f{request.method} {path}"
        cost = self.cost if isinstance(self.cost, int) else await _maybe_await(self.cost(request))
        decision = await self.policy.check(key, cost)
        if decision is None:
            return None
        headers = decision.headers(key)
        if not decision.allowed:
            raise RateLimitExceeded(decision, dict(headers), self.denied_status)
        for name, value in headers:
            response.headers[name] = value
        return decision
