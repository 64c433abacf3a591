"""Flask extension shaped like Flask-Limiter: switch by changing one import.

::

    from flask import Flask
    from ratewall.flask import Limiter, get_remote_address

    app = Flask(__name__)
    limiter = Limiter(get_remote_address, app=app, default_limits=["200 per day", "50 per hour"])

    @app.route("/slow")
    @limiter.limit("1 per day")
    def slow():
        return "24"

The API follows Flask-Limiter 4 (``Limiter(key_func, app=..., default_limits=...,
application_limits=..., storage_uri=..., strategy=..., headers_enabled=..., key_prefix=...,
on_breach=..., swallow_errors=..., in_memory_fallback=...)``, ``init_app``,
``@limiter.limit(...)``, ``shared_limit``, ``@limiter.exempt``, ``request_filter``, the
``RATELIMIT_*`` config keys, :class:`RateLimitExceeded` as a werkzeug ``TooManyRequests``, so
``@app.errorhandler(429)`` keeps working). Decisions, header values and the 429 body come from the
Rust engine.

Differences from Flask-Limiter (also in ``py/README.md``):

- **Denied requests take nothing, across all limits.** A request is checked against every limit
  that applies (application, default or blueprint, route); if one denies it, the permits taken
  from the others are given back. Flask-Limiter counts the hits made before the breach. Several
  limits in one string (``"10/second;100/day"``) are one policy, checked all-or-nothing.
- **The 429 body is JSON**: ``{"error":"rate_limited","retryAfter":N}`` (``application/json``),
  with ``Retry-After: N`` on every denial even when ``headers_enabled`` is off (Flask-Limiter
  renders werkzeug's HTML page and sends ``Retry-After`` only with headers enabled). ``N`` is
  when the *same request* could pass (rounded up, at least 1), not the window reset. Override
  the body with ``on_breach`` (return a response) or ``@app.errorhandler(429)``; the status with
  ``denied_status`` / ``RATELIMIT_DENIED_STATUS``. ``error_message`` becomes the exception's
  ``description`` (for error handlers), not the body.
- **Headers**: ``headers_enabled`` sends ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` of the
  most restrictive limit (on a denial, the denying one; otherwise the one with the fewest
  permits left). ``header_sets`` (``RATELIMIT_HEADER_SETS``) selects other sets as well:
  ``"legacy, ietf"``, ``"draft-7"``, ``"draft-8"``, ... ``header_name_mapping`` is not
  supported.
- **Strategies**: ``fixed-window`` (default, as in Flask-Limiter), ``moving-window`` (the exact
  sliding log), ``sliding-window-counter``, plus ``token-bucket`` and ``fixed-window-aligned``.
  The fixed window opens at each key's first request, as in ``limits``.
- **deduct_when** takes the permits before the view runs and gives them back afterwards when
  ``deduct_when(response)`` is false. So requests in flight count, and concurrent requests can
  never exceed the limit (Flask-Limiter tests before and hits after, which lets a burst of
  concurrent requests through).
- **get_remote_address** masks IPv6 clients to their /56 (one subscriber), so rotating
  addresses does not mint keys; IPv4 is unchanged. :func:`remote_address` builds a key function
  that also trusts a given number of proxies (``trust_proxy``).
- **Rate strings** are validated when declared (a bad string raises ``ValueError`` at import
  time; Flask-Limiter logs an error per request) and accept ratewall's short units too
  (``60/min``, ``5/10min``).
- **Storage**: ``memory://`` (default) or Redis: ``redis://``, ``rediss://``,
  ``redis+unix://``, ``redis+cluster://`` (``redis+sentinel://``, ``memcached://`` and
  ``mongodb://`` are not supported). With Redis, every app instance shares one quota; the
  connection is made in ``init_app`` (an unreachable server raises ``ConnectionError`` there,
  unless ``storage_options={"lazy": True}``). ``storage_options`` are ratewall's Redis options
  (``command_timeout``, ``connect_timeout``, ``fail_mode``, ``key_prefix``, ``key_secret``,
  ``local_fraction``, ``lazy``, ``on_event``, ...; see :mod:`ratewall.storage`), not redis-py's.
- **Redis failures** are decided by a fail mode within ``command_timeout`` (default 50 ms),
  never by an exception in the request, and Redis decides again as soon as it is back (the
  connection is re-established in the background). The Flask-Limiter settings map onto it:

  ========================================================  ==================================
  Flask-Limiter setting                                     ratewall fail mode
  ========================================================  ==================================
  ``in_memory_fallback_enabled`` or ``in_memory_fallback``  ``local``: each route's own limits
                                                            in process (not the listed ones)
  ``swallow_errors`` (without a fallback)                   ``fail-open``: requests pass
  neither                                                   ``fail-closed``: 429 with
                                                            ``Retry-After: 1`` (Flask-Limiter
                                                            raises, a 500)
  ``storage_options={"fail_mode": ...}``                    that mode (wins over the above)
  ========================================================  ==================================

  Flask-Limiter probes the storage again only after a back-off; ratewall tries Redis on
  every request, bounded by the timeout. ``Decision.source`` (``limiter.current_limit``) says
  who decided. ``clock=`` cannot be combined with Redis (Redis decides with its own clock).
- **Not supported**: ``meta_limits``/``on_meta_breach``, ``fail_on_first_breach`` (accepted and
  ignored: evaluation always stops at the first breach), ``header_name_mapping``,
  ``request_identifier``, using ``limiter.limit(...)`` as a context manager, and rate limiting
  callables that are not view functions (limits are looked up by the request's view function).
  The ``flask limiter`` CLI commands do not exist.
- **Keys are hashed**: :class:`RequestLimit.key` (what ``on_breach`` sees) is an HMAC of the key
  under ``RATELIMIT_KEY_HASH_SECRET`` (default: ``RATEWALL_KEY_SECRET``, else a random
  per-process secret), never the raw
  client address or user name.
- **Time** comes from ``clock=`` (seconds, default ``ratewall.monotonic``), so tests move time
  without sleeping; ``clock="coarse"`` reads the cheaper tick clock (see :class:`ratewall.Limiter`).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import flask
from flask import Blueprint, Flask, g, request
from werkzeug.exceptions import TooManyRequests
from werkzeug.http import http_date

from ratewall._native import Decision, canonical_rates
from ratewall.keys import DEFAULT_IPV6_SUBNET, TrustProxy, client_key, hash_key, process_secret
from ratewall.storage import (
    ClockOption,
    MemoryStorage,
    Storage,
    StorageError,
    check_clock,
    is_redis_uri,
    open_storage,
)

__all__ = [
    "ExemptionScope",
    "Limiter",
    "RateLimitExceeded",
    "RequestLimit",
    "get_remote_address",
    "remote_address",
]

F = TypeVar("F", bound=Callable[..., Any])

STRATEGIES = {
    "fixed-window": "fixed-window",
    "fixed-window-aligned": "fixed-window-aligned",
    "moving-window": "sliding-log",
    "sliding-log": "sliding-log",
    "sliding-window-counter": "sliding-window-counter",
    "sliding-window": "sliding-window-counter",
    "token-bucket": "token-bucket",
    "gcra": "token-bucket",
}

_SEP = "\x1f"


def get_remote_address() -> str:
    """The key of the current request's client: ``request.remote_addr`` (``127.0.0.1`` if
    unknown), IPv6 masked to its /56. Proxy headers are ignored: see :func:`remote_address`."""
    return client_key(request.remote_addr)


def remote_address(
    *, trust_proxy: TrustProxy | bool | int | str = False, ipv6_subnet: int = DEFAULT_IPV6_SUBNET
) -> Callable[[], str]:
    """A key function: the client address under an explicit trust-proxy setting (a hop count
    such as ``1`` behind one proxy, CIDRs, or ``True``), IPv6 masked to ``ipv6_subnet``."""
    trust = TrustProxy(trust_proxy)
    client_key("127.0.0.1", ipv6_subnet=ipv6_subnet)  # validates ipv6_subnet now

    def key() -> str:
        headers = request.headers
        return client_key(
            request.remote_addr,
            headers.get("X-Forwarded-For"),
            trust_proxy=trust,
            forwarded=headers.get("Forwarded"),
            ipv6_subnet=ipv6_subnet,
        )

    return key


class ExemptionScope(enum.Flag):
    """What :meth:`Limiter.exempt` exempts from (as in Flask-Limiter)."""

    NONE = 0
    #: Application-wide limits.
    APPLICATION = enum.auto()
    #: Meta limits (accepted for compatibility; ratewall has none).
    META = enum.auto()
    #: The extension's default limits.
    DEFAULT = enum.auto()
    #: Blueprints nested under an exempted blueprint.
    DESCENDENTS = enum.auto()
    #: Limits inherited from ancestor blueprints.
    ANCESTORS = enum.auto()


_DEFAULT_EXEMPTION = ExemptionScope.APPLICATION | ExemptionScope.DEFAULT | ExemptionScope.META


class _Spec:
    """A declared limit: a rate (string or callable) plus how to key, scope and cost it."""

    __slots__ = (
        "provider",
        "static",
        "key_func",
        "scope",
        "per_method",
        "methods",
        "error_message",
        "exempt_when",
        "override_defaults",
        "deduct_when",
        "on_breach",
        "cost",
        "shared",
    )

    def __init__(
        self,
        provider: str | Callable[[], str],
        *,
        key_func: Callable[[], str] | None,
        scope: str | Callable[[str], str] | None = None,
        per_method: bool = False,
        methods: Iterable[str] | None = None,
        error_message: str | Callable[[], str] | None = None,
        exempt_when: Callable[[], bool] | None = None,
        override_defaults: bool = True,
        deduct_when: Callable[[flask.Response], bool] | None = None,
        on_breach: Callable[[RequestLimit], flask.Response | None] | None = None,
        cost: int | Callable[[], int] = 1,
        shared: bool = False,
    ) -> None:
        if isinstance(provider, str):
            self.static: str | None = canonical_rates(provider)
        elif callable(provider):
            self.static = None
        else:
            raise TypeError(
                f"a limit must be a rate string such as '10 per minute' or a callable returning "
                f"one, not {type(provider).__name__}"
            )
        for name, fn in (
            ("key_func", key_func),
            ("exempt_when", exempt_when),
            ("deduct_when", deduct_when),
            ("on_breach", on_breach),
        ):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable, not {type(fn).__name__}")
        if isinstance(cost, bool) or not (callable(cost) or isinstance(cost, int)):
            raise TypeError(f"cost must be an int or a callable returning one, not {type(cost).__name__}")
        if isinstance(cost, int) and cost < 1:
            raise ValueError(f"cost must be at least 1, got {cost}")
        if scope is not None and not (isinstance(scope, str) or callable(scope)):
            raise TypeError(f"scope must be a str or a callable, not {type(scope).__name__}")
        if isinstance(methods, str):
            raise TypeError("methods must be a list of HTTP methods such as ['POST'], not a str")
        self.provider = provider
        self.key_func = key_func
        self.scope = scope
        self.per_method = bool(per_method)
        self.methods = frozenset(m.upper() for m in methods) if methods is not None else None
        self.error_message = error_message
        self.exempt_when = exempt_when
        self.override_defaults = bool(override_defaults)
        self.deduct_when = deduct_when
        self.on_breach = on_breach
        self.cost = cost
        self.shared = bool(shared)

    def rate(self) -> str:
        if self.static is not None:
            return self.static
        value = self.provider()  # type: ignore[operator]
        if not isinstance(value, str):
            raise TypeError(f"a limit callable must return a rate string, got {type(value).__name__}")
        return value

    def scope_for(self, endpoint: str, method: str) -> str:
        scope = self.scope
        if callable(scope):
            scope = scope(endpoint)
        if scope:
            scope = scope if self.shared else f"{endpoint}:{scope}"
        else:
            scope = endpoint
        if self.per_method:
            scope = f"{scope}:{method}"
        return scope

    def cost_now(self) -> int:
        cost = self.cost
        if callable(cost):
            cost = cost()
            if isinstance(cost, bool) or not isinstance(cost, int):
                raise TypeError(f"a cost callable must return an int, got {type(cost).__name__}")
        return cost


class RequestLimit:
    """A limit in the context of one request, as ``on_breach`` and :attr:`Limiter.current_limit`
    see it (Flask-Limiter's ``RequestLimit``)."""

    __slots__ = ("limit", "key", "breached", "shared", "scope", "cost", "decision", "_spec")

    def __init__(
        self,
        spec: _Spec,
        limit: str,
        key: str,
        scope: str,
        cost: int,
        decision: Decision,
    ) -> None:
        #: The limit, canonical (``"5/10minutes"``).
        self.limit = limit
        #: The client key, hashed (see ``RATELIMIT_KEY_HASH_SECRET``).
        self.key = key
        #: Whether this limit denied the request.
        self.breached = not decision.allowed
        #: Whether the limit is a shared limit.
        self.shared = spec.shared
        #: The scope (endpoint, shared scope, method).
        self.scope = scope
        #: The permits the request asked for.
        self.cost = cost
        #: The :class:`ratewall.Decision`.
        self.decision = decision
        self._spec = spec

    @property
    def remaining(self) -> int:
        """Permits left after this request."""
        return self.decision.remaining

    @property
    def reset_at(self) -> int:
        """Unix time (whole seconds) at which the limit is full again."""
        return int(time.time() + self.decision.reset_after) + 1

    @property
    def retry_after(self) -> float:
        """Seconds until the request could pass."""
        return self.decision.retry_after

    def __repr__(self) -> str:
        return f"RequestLimit(limit={self.limit!r}, scope={self.scope!r}, breached={self.breached})"


class RateLimitExceeded(TooManyRequests):
    """Raised (and rendered) when a limit denies a request: a werkzeug ``TooManyRequests``, so
    ``@app.errorhandler(429)`` handles it. The default response is the uniform JSON body with
    ``Retry-After``."""

    def __init__(
        self,
        limit: RequestLimit,
        response: flask.Response | None = None,
        *,
        status: int = 429,
        retry_after_format: str | None = None,
    ) -> None:
        self.limit = limit
        self.decision = limit.decision
        self.retry_after_format = retry_after_format
        message = limit._spec.error_message
        description = (message() if callable(message) else message) if message else limit.limit
        super().__init__(description=description, response=response)
        self.code = status

    def get_response(self, environ: Any = None, scope: Any = None) -> Any:
        """The response: ``on_breach``'s if it returned one, else the JSON body with
        ``Retry-After`` (the after-request hook adds the rate-limit headers)."""
        if self.response is not None:
            return self.response
        d = self.decision
        response = flask.current_app.response_class(
            d.body, status=self.code, content_type="application/json"
        )
        response.headers["Retry-After"] = _retry_after_value(d, self.retry_after_format)
        return response


def _retry_after_value(d: Decision, fmt: str | None) -> str:
    if fmt == "http-date":
        return http_date(time.time() + d.retry_after_header)
    return str(d.retry_after_header)


class _State:
    """What one request took, for the after-request hook."""

    __slots__ = ("taken", "deduct", "decision", "request_limit", "limits")

    def __init__(self) -> None:
        self.taken: list[tuple[Any, str, int]] = []
        self.deduct: list[tuple[_Spec, Any, str, int]] = []
        self.decision: Decision | None = None
        self.request_limit: tuple[_Spec, str, str, str, int] | None = None
        self.limits: list[tuple[_Spec, str, str, str, int, Decision]] = []


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str) or callable(value):
        return [value]
    return list(value)


class Limiter:
    """The extension. See the module documentation for the differences from Flask-Limiter.

    :param key_func: returns the key of the current request (:func:`get_remote_address`).
    :param app: the app to initialise now (else call :meth:`init_app`).
    :param default_limits: limits applied to every route without its own (each route counts
        separately); strings (``"100/day"``, several in one string are one policy) or callables
        returning strings.
    :param application_limits: limits shared by all routes.
    :param headers_enabled: send ``X-RateLimit-*`` headers on every limited response.
    :param header_sets: the header sets to send when headers are enabled (default ``"legacy"``;
        also ``"legacy, ietf"``, ``"draft-7"``, ``"draft-8"``, ...).
    :param strategy: ``fixed-window`` (default), ``moving-window``, ``sliding-window-counter``,
        ``token-bucket``, ``fixed-window-aligned``.
    :param storage_uri: ``memory://`` (default) or a Redis URL (``redis://host:6379/0``,
        ``rediss://``, ``redis+unix://``, ``redis+cluster://``): every app instance on the same
        Redis shares one quota.
    :param storage_options: options of the storage (Redis: ``command_timeout``,
        ``fail_mode``, ``key_prefix``, ``lazy``, ``on_event``, ...; see :mod:`ratewall.storage`).
    :param swallow_errors: on a storage error, log and let the request through (Redis:
        ``fail-open``).
    :param on_breach: called with a :class:`RequestLimit` on every denial; a returned response
        replaces the 429.
    :param in_memory_fallback: limits enforced in process while the storage is down
        (``in_memory_fallback_enabled`` alone falls back with the original limits). With
        Redis either one selects the ``local`` fail mode: each route's own limits in process.
    :param retry_after: ``"delta-seconds"`` (default) or ``"http-date"``.
    :param key_prefix: namespaces the keys of this extension.
    :param denied_status: the status of a denial (default 429).
    :param clock: a callable returning seconds (default ``ratewall.monotonic``): tests move time;
        or ``"coarse"``: ``ratewall.coarse_monotonic``, the same scale as of the kernel's last
        tick (up to a tick, 1-4 ms, behind) for a quarter of the cost of a read (see
        :class:`ratewall.Limiter`). Memory storage only.
    :param max_keys: keys with live state per limit (default 1 000 000).
    """

    def __init__(
        self,
        key_func: Callable[[], str],
        *,
        app: Flask | None = None,
        default_limits: Sequence[str | Callable[[], str]] | None = None,
        default_limits_per_method: bool | None = None,
        default_limits_exempt_when: Callable[[], bool] | None = None,
        default_limits_deduct_when: Callable[[flask.Response], bool] | None = None,
        default_limits_cost: int | Callable[[], int] | None = None,
        application_limits: Sequence[str | Callable[[], str]] | None = None,
        application_limits_per_method: bool | None = None,
        application_limits_exempt_when: Callable[[], bool] | None = None,
        application_limits_deduct_when: Callable[[flask.Response], bool] | None = None,
        application_limits_cost: int | Callable[[], int] | None = None,
        headers_enabled: bool | None = None,
        header_sets: str | None = None,
        strategy: str | None = None,
        storage_uri: str | None = None,
        storage_options: dict[str, Any] | None = None,
        swallow_errors: bool | None = None,
        fail_on_first_breach: bool | None = None,
        on_breach: Callable[[RequestLimit], flask.Response | None] | None = None,
        in_memory_fallback: Sequence[str] | None = None,
        in_memory_fallback_enabled: bool | None = None,
        retry_after: str | None = None,
        key_prefix: str = "",
        enabled: bool = True,
        denied_status: int | None = None,
        clock: ClockOption = None,
        max_keys: int | None = None,
    ) -> None:
        if not callable(key_func):
            raise TypeError(f"key_func must be callable, not {type(key_func).__name__}")
        self.logger = logging.getLogger("ratewall.flask")
        self._key_func = key_func
        self._args: dict[str, Any] = {
            "default_limits": default_limits,
            "default_limits_per_method": default_limits_per_method,
            "default_limits_exempt_when": default_limits_exempt_when,
            "default_limits_deduct_when": default_limits_deduct_when,
            "default_limits_cost": default_limits_cost,
            "application_limits": application_limits,
            "application_limits_per_method": application_limits_per_method,
            "application_limits_exempt_when": application_limits_exempt_when,
            "application_limits_deduct_when": application_limits_deduct_when,
            "application_limits_cost": application_limits_cost,
            "headers_enabled": headers_enabled,
            "header_sets": header_sets,
            "strategy": strategy,
            "storage_uri": storage_uri,
            "storage_options": storage_options,
            "swallow_errors": swallow_errors,
            "on_breach": on_breach,
            "in_memory_fallback": in_memory_fallback,
            "in_memory_fallback_enabled": in_memory_fallback_enabled,
            "retry_after": retry_after,
            "key_prefix": key_prefix,
            "denied_status": denied_status,
        }
        del fail_on_first_breach  # always stops at the first breach
        check_clock(clock)
        self._clock = clock
        self._max_keys = max_keys
        self.enabled = enabled
        self.initialized = False
        self._lock = threading.Lock()
        self._decorated: dict[str, list[_Spec]] = {}
        self._blueprint_limits: dict[str, list[_Spec]] = {}
        self._route_exemptions: dict[str, ExemptionScope] = {}
        self._blueprint_exemptions: dict[str, ExemptionScope] = {}
        self._request_filters: list[Callable[[], bool]] = []
        self._resolved: dict[tuple[int, str, str], tuple[_Spec, ...]] = {}
        self._backends: dict[tuple[int, str], Any] = {}
        self._g_name = f"_ratewall_{id(self)}"
        # Settings, filled by init_app (these defaults let an uninitialised limiter be inspected).
        self._defaults: list[_Spec] = []
        self._application: list[_Spec] = []
        self._fallback: list[_Spec] = []
        self._fallback_enabled = False
        self._storage: Storage = MemoryStorage()
        self._fallback_storage: Storage = MemoryStorage()
        self._storage_dead_until = 0.0
        self._storage_failures = 0
        self._strategy = "fixed-window"
        self._headers_enabled = False
        self._header_sets = "legacy"
        self._swallow_errors = False
        self._on_breach: Callable[[RequestLimit], Any] | None = None
        self._retry_after: str | None = None
        self._key_prefix = ""
        self._denied_status = 429
        self._hash_secret: bytes | str = process_secret()
        if app is not None:
            self.init_app(app)

    # -- configuration ------------------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Reads the ``RATELIMIT_*`` config of ``app`` (constructor arguments take precedence,
        as in Flask-Limiter) and installs the request hooks."""
        config = app.config
        a = self._args

        def setting(arg: str, key: str, default: Any) -> Any:
            value = a.get(arg)
            return value if value is not None else config.get(key, default)

        self.enabled = bool(config.setdefault("RATELIMIT_ENABLED", self.enabled))
        strategy = setting("strategy", "RATELIMIT_STRATEGY", "fixed-window")
        if not isinstance(strategy, str) or strategy.lower() not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {strategy!r}: use one of {', '.join(sorted(STRATEGIES))}"
            )
        self._strategy = STRATEGIES[strategy.lower()]
        self._headers_enabled = bool(setting("headers_enabled", "RATELIMIT_HEADERS_ENABLED", False))
        self._header_sets = setting("header_sets", "RATELIMIT_HEADER_SETS", "legacy")
        self._swallow_errors = bool(setting("swallow_errors", "RATELIMIT_SWALLOW_ERRORS", False))
        self._on_breach = setting("on_breach", "RATELIMIT_ON_BREACH_CALLBACK", None)
        self._retry_after = setting("retry_after", "RATELIMIT_HEADER_RETRY_AFTER_VALUE", None)
        if self._retry_after not in (None, "delta-seconds", "http-date"):
            raise ValueError(
                f"retry_after must be 'delta-seconds' or 'http-date', got {self._retry_after!r}"
            )
        self._key_prefix = a["key_prefix"] or config.get("RATELIMIT_KEY_PREFIX", "")
        status = setting("denied_status", "RATELIMIT_DENIED_STATUS", 429)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"denied_status must be an HTTP error status (400-599), got {status!r}")
        self._denied_status = status
        secret = config.get("RATELIMIT_KEY_HASH_SECRET")
        self._hash_secret = secret if secret else process_secret()

        options = dict(config.get("RATELIMIT_STORAGE_OPTIONS", {}))
        options.update(a["storage_options"] or {})
        uri = setting("storage_uri", "RATELIMIT_STORAGE_URI", "memory://")
        if is_redis_uri(uri) and self._clock is not None:
            raise TypeError(
                "clock= cannot be combined with a Redis storage_uri: Redis decides with its own "
                "clock (use storage_uri='memory://' to move time in tests)"
            )
        fallback_limits = _as_list(setting("in_memory_fallback", "RATELIMIT_IN_MEMORY_FALLBACK", None))
        fallback_enabled = bool(
            setting("in_memory_fallback_enabled", "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", False)
            or fallback_limits
        )
        # How a Redis outage is decided (see the module documentation for the mapping).
        if fallback_enabled:
            fail_mode = "local"
        elif self._swallow_errors:
            fail_mode = "fail-open"
        else:
            fail_mode = "fail-closed"
        self._storage = open_storage(uri, options, fail_mode)
        if fallback_limits and is_redis_uri(uri):
            self.logger.warning(
                "in_memory_fallback limits are not used with a Redis storage: while Redis is down "
                "each route's own limits are enforced in process (fail_mode='local')"
            )

        kf = self._key_func
        self._defaults = [
            _Spec(
                p,
                key_func=kf,
                per_method=bool(setting("default_limits_per_method", "RATELIMIT_DEFAULTS_PER_METHOD", False)),
                exempt_when=setting("default_limits_exempt_when", "RATELIMIT_DEFAULTS_EXEMPT_WHEN", None),
                deduct_when=setting("default_limits_deduct_when", "RATELIMIT_DEFAULTS_DEDUCT_WHEN", None),
                cost=setting("default_limits_cost", "RATELIMIT_DEFAULTS_COST", 1),
            )
            for p in _as_list(setting("default_limits", "RATELIMIT_DEFAULT", None))
        ]
        self._application = [
            _Spec(
                p,
                key_func=kf,
                scope="global",
                shared=True,
                per_method=bool(
                    setting("application_limits_per_method", "RATELIMIT_APPLICATION_PER_METHOD", False)
                ),
                exempt_when=setting(
                    "application_limits_exempt_when", "RATELIMIT_APPLICATION_EXEMPT_WHEN", None
                ),
                deduct_when=setting(
                    "application_limits_deduct_when", "RATELIMIT_APPLICATION_DEDUCT_WHEN", None
                ),
                cost=setting("application_limits_cost", "RATELIMIT_APPLICATION_COST", 1),
            )
            for p in _as_list(setting("application_limits", "RATELIMIT_APPLICATION", None))
        ]
        self._fallback = [_Spec(p, key_func=kf) for p in fallback_limits]
        self._fallback_enabled = fallback_enabled
        with self._lock:
            self._backends.clear()
            self._resolved.clear()
        extensions = app.extensions.setdefault("ratewall", set())
        if self not in extensions:
            app.before_request(self._check_request_limit)
            app.after_request(self._after_request)
            extensions.add(self)
        self.initialized = True

    # -- declarations -------------------------------------------------------------------------

    def limit(
        self,
        limit_value: str | Callable[[], str],
        *,
        key_func: Callable[[], str] | None = None,
        per_method: bool = False,
        methods: list[str] | None = None,
        error_message: str | Callable[[], str] | None = None,
        exempt_when: Callable[[], bool] | None = None,
        override_defaults: bool = True,
        deduct_when: Callable[[flask.Response], bool] | None = None,
        on_breach: Callable[[RequestLimit], flask.Response | None] | None = None,
        cost: int | Callable[[], int] = 1,
        scope: str | Callable[[str], str] | None = None,
    ) -> Callable[[F], F]:
        """Decorator limiting a view function (each route counts separately) or, applied to a
        :class:`flask.Blueprint`, every route of the blueprint.

        ``deduct_when(response)`` decides after the view whether the request counts (for
        "count only failed logins"); ``cost`` is an int or a callable returning one;
        ``exempt_when()`` skips the limit; ``methods`` limits only those methods;
        ``per_method`` counts each method separately; ``scope`` further partitions the count.
        """
        spec = _Spec(
            limit_value,
            key_func=key_func or self._key_func,
            scope=scope,
            per_method=per_method,
            methods=methods,
            error_message=error_message,
            exempt_when=exempt_when,
            override_defaults=override_defaults,
            deduct_when=deduct_when,
            on_breach=on_breach,
            cost=cost,
        )
        return self._decorator(spec)

    def shared_limit(
        self,
        limit_value: str | Callable[[], str],
        scope: str | Callable[[str], str],
        *,
        key_func: Callable[[], str] | None = None,
        per_method: bool = False,
        methods: list[str] | None = None,
        error_message: str | Callable[[], str] | None = None,
        exempt_when: Callable[[], bool] | None = None,
        override_defaults: bool = True,
        deduct_when: Callable[[flask.Response], bool] | None = None,
        on_breach: Callable[[RequestLimit], flask.Response | None] | None = None,
        cost: int | Callable[[], int] = 1,
    ) -> Callable[[F], F]:
        """Like :meth:`limit`, but every route decorated with the same ``scope`` shares one
        count."""
        if not scope:
            raise ValueError("shared_limit needs a scope naming the shared count")
        spec = _Spec(
            limit_value,
            key_func=key_func or self._key_func,
            scope=scope,
            per_method=per_method,
            methods=methods,
            error_message=error_message,
            exempt_when=exempt_when,
            override_defaults=override_defaults,
            deduct_when=deduct_when,
            on_breach=on_breach,
            cost=cost,
            shared=True,
        )
        return self._decorator(spec)

    def _decorator(self, spec: _Spec) -> Callable[[F], F]:
        def decorate(obj: F) -> F:
            with self._lock:
                if isinstance(obj, Blueprint):
                    self._blueprint_limits.setdefault(obj.name, []).append(spec)
                elif callable(obj):
                    self._decorated.setdefault(_qualified_name(obj), []).append(spec)
                else:
                    raise TypeError(
                        f"limit decorates a view function or a Blueprint, not {type(obj).__name__}"
                    )
                self._resolved.clear()
            return obj

        return decorate

    def exempt(
        self,
        obj: Any = None,
        *,
        flags: ExemptionScope = _DEFAULT_EXEMPTION,
    ) -> Any:
        """Exempts a view function or a whole blueprint (default: from application, default and
        decorated/blueprint limits). Usable as ``@limiter.exempt``,
        ``@limiter.exempt(flags=...)`` or ``limiter.exempt(blueprint)``."""
        if obj is None:
            return lambda o: self.exempt(o, flags=flags)
        if not isinstance(flags, ExemptionScope):
            raise TypeError(f"flags must be an ExemptionScope, not {type(flags).__name__}")
        with self._lock:
            if isinstance(obj, Blueprint):
                self._blueprint_exemptions[obj.name] = flags
            elif callable(obj):
                self._route_exemptions[_qualified_name(obj)] = flags
            else:
                raise TypeError(f"exempt takes a view function or a Blueprint, not {type(obj).__name__}")
            self._resolved.clear()
        return obj

    def request_filter(self, fn: Callable[[], bool]) -> Callable[[], bool]:
        """Decorator: a function returning ``True`` exempts the current request from every
        limit (health checks, verified webhooks)."""
        if not callable(fn):
            raise TypeError("request_filter decorates a callable")
        self._request_filters.append(fn)
        return fn

    def reset(self) -> None:
        """Forgets every in-process count (new in-process state). Counts held in Redis are
        shared with other instances and are not touched."""
        with self._lock:
            self._backends.clear()

    @property
    def storage(self) -> Storage:
        """The storage opened from ``storage_uri``."""
        return self._storage

    @property
    def current_limit(self) -> RequestLimit | None:
        """The limit the response headers describe for the current request (the denying one,
        else the one with the fewest permits left)."""
        state: _State | None = getattr(g, self._g_name, None)
        if state is None or state.request_limit is None or state.decision is None:
            return None
        spec, rate, key, scope, cost = state.request_limit
        return RequestLimit(spec, rate, key, scope, cost, state.decision)

    @property
    def current_limits(self) -> list[RequestLimit]:
        """Every limit checked for the current request."""
        state: _State | None = getattr(g, self._g_name, None)
        if state is None:
            return []
        return [RequestLimit(s, r, k, sc, c, d) for s, r, k, sc, c, d in state.limits]

    # -- per request --------------------------------------------------------------------------

    def _backend(self, storage: Storage, rate: str) -> Any:
        cache_key = (id(storage), rate)
        backend = self._backends.get(cache_key)
        if backend is None:
            with self._lock:
                backend = self._backends.get(cache_key)
                if backend is None:
                    options: dict[str, Any] = {
                        "algorithm": self._strategy,
                        "name": rate.replace(" ", ""),
                        "headers": self._header_sets if self._headers_enabled else "none",
                        "send_date": False,
                        "clock": self._clock,
                    }
                    if self._max_keys is not None:
                        options["max_keys"] = self._max_keys
                    backend = storage.limiter(rate, **options)
                    self._backends[cache_key] = backend
        return backend

    def _resolve(self, app: Flask, endpoint: str, method: str) -> tuple[_Spec, ...]:
        view = app.view_functions.get(endpoint)
        name = _qualified_name(view) if view is not None else ""
        route_exemption = self._route_exemptions.get(name, ExemptionScope.NONE)
        decorated = [] if route_exemption else list(self._decorated.get(name, ()))
        blueprint = endpoint.rpartition(".")[0] if "." in endpoint else None
        exemption = route_exemption
        if blueprint:
            bp_exemption, bp_limits = self._blueprint_resolution(app, blueprint)
            exemption |= bp_exemption
            if not decorated or all(not s.override_defaults for s in decorated):
                decorated += bp_limits
        active = [s for s in decorated if s.methods is None or method in s.methods]
        limits: list[_Spec] = []
        if not exemption & ExemptionScope.APPLICATION:
            limits += self._application
        if not exemption & ExemptionScope.DEFAULT and all(not s.override_defaults for s in active):
            limits += self._defaults
        limits += decorated
        return tuple(limits)

    def _blueprint_resolution(self, app: Flask, blueprint: str) -> tuple[ExemptionScope, list[_Spec]]:
        """Exemption flags and limits for a (possibly nested, dotted) blueprint name."""
        chain = blueprint.split(".")
        names = [".".join(chain[: i + 1]) for i in range(len(chain))]  # outermost first
        own = names[-1]
        bp = app.blueprints.get(own)
        own_name = bp.name if bp is not None else chain[-1]
        exemption = self._blueprint_exemptions.get(own_name, ExemptionScope.NONE)
        for ancestor in names[:-1]:
            a_bp = app.blueprints.get(ancestor)
            a_name = a_bp.name if a_bp is not None else ancestor.rpartition(".")[2]
            a_flags = self._blueprint_exemptions.get(a_name, ExemptionScope.NONE)
            if a_flags & ExemptionScope.DESCENDENTS:
                exemption |= a_flags
        if exemption & ~(ExemptionScope.DEFAULT | ExemptionScope.APPLICATION | ExemptionScope.ANCESTORS):
            return exemption, []
        own_limits = self._blueprint_limits.get(own_name, [])
        if (own_limits and all(s.override_defaults for s in own_limits)) or (
            exemption & ExemptionScope.ANCESTORS
        ):
            return exemption, list(own_limits)
        limits: list[_Spec] = []
        for ancestor in names[:-1]:
            a_bp = app.blueprints.get(ancestor)
            a_name = a_bp.name if a_bp is not None else ancestor.rpartition(".")[2]
            limits += self._blueprint_limits.get(a_name, [])
        return exemption, limits + list(own_limits)

    def _check_request_limit(self) -> None:
        if not self.enabled:
            return
        req = request._get_current_object()  # type: ignore[attr-defined]
        endpoint = req.endpoint
        if not endpoint or endpoint.rpartition(".")[2] == "static":
            return
        for f in self._request_filters:
            if f():
                return
        app = flask.current_app._get_current_object()  # type: ignore[attr-defined]
        method = req.method
        cache_key = (id(app), endpoint, method)
        limits = self._resolved.get(cache_key)
        if limits is None:
            limits = self._resolve(app, endpoint, method)
            self._resolved[cache_key] = limits
        if not limits:
            return
        storage = self._storage
        if self._storage_dead_until:
            if time.monotonic() < self._storage_dead_until:
                self._evaluate_fallback(endpoint, method, limits)
                return
            storage = self._storage  # try the primary again
        try:
            self._evaluate(storage, endpoint, method, limits)
        except StorageError:
            self._storage_failed()
            if self._fallback_enabled:
                self.logger.warning("rate limit storage unreachable: falling back to in-memory limits")
                self._evaluate_fallback(endpoint, method, limits)
            elif self._swallow_errors:
                self.logger.exception("rate limit storage failed: request let through (swallow_errors)")
            else:
                raise
        else:
            if self._storage_dead_until:
                self.logger.info("rate limit storage recovered")
                self._storage_dead_until = 0.0
                self._storage_failures = 0

    def _storage_failed(self) -> None:
        self._storage_failures += 1
        self._storage_dead_until = time.monotonic() + min(2.0 ** self._storage_failures, 60.0)

    def _evaluate_fallback(self, endpoint: str, method: str, limits: tuple[_Spec, ...]) -> None:
        if not self._fallback_enabled:
            if self._swallow_errors:
                return
            raise StorageError("rate limit storage is down and no in-memory fallback is enabled")
        self._evaluate(self._fallback_storage, endpoint, method, tuple(self._fallback) or limits)

    def _evaluate(self, storage: Storage, endpoint: str, method: str, limits: tuple[_Spec, ...]) -> None:
        state = _State()
        setattr(g, self._g_name, state)
        prefix = self._key_prefix
        best: Decision | None = None
        best_info: tuple[_Spec, str, str, str, int] | None = None
        for spec in limits:
            if spec.methods is not None and method not in spec.methods:
                continue
            if spec.exempt_when is not None and spec.exempt_when():
                continue
            key_value = spec.key_func()  # type: ignore[misc]
            if not key_value:
                self.logger.error("skipping limit %s: the key function returned an empty key", spec.provider)
                continue
            rate = spec.rate()
            scope = spec.scope_for(endpoint, method)
            cost = spec.cost_now()
            key = f"{prefix}{_SEP}{scope}{_SEP}{key_value}"
            backend = self._backend(storage, rate)
            d = backend.check(key, cost)
            state.limits.append((spec, rate, key_value, scope, cost, d))
            if not d.allowed:
                # A denied request takes nothing: give back what the other limits took.
                for b, k, c in state.taken:
                    b.refund(k, c)
                state.taken.clear()
                state.deduct.clear()
                state.decision = d
                state.request_limit = (spec, rate, key_value, scope, cost)
                self._breach(spec, rate, key_value, scope, cost, d)
            state.taken.append((backend, key, cost))
            if spec.deduct_when is not None:
                state.deduct.append((spec, backend, key, cost))
            if best is None or d.remaining < best.remaining or (
                d.remaining == best.remaining and d.reset_after > best.reset_after
            ):
                best, best_info = d, (spec, rate, key_value, scope, cost)
        state.decision = best
        state.request_limit = best_info

    def _breach(self, spec: _Spec, rate: str, key_value: str, scope: str, cost: int, d: Decision) -> None:
        info = RequestLimit(spec, rate, hash_key(key_value, self._hash_secret), scope, cost, d)
        self.logger.info("rate limit %s exceeded at %s", rate, scope)
        response = None
        for callback in dict.fromkeys([self._on_breach, spec.on_breach]):
            if callback is None:
                continue
            try:
                result = callback(info)
            except Exception:
                if not self._swallow_errors:
                    raise
                self.logger.exception("on_breach callback failed")
                continue
            if result is not None:
                response = flask.current_app.make_response(result)
        raise RateLimitExceeded(
            info, response, status=self._denied_status, retry_after_format=self._retry_after
        )

    def _after_request(self, response: flask.Response) -> flask.Response:
        state: _State | None = getattr(g, self._g_name, None)
        if state is None:
            return response
        for spec, backend, key, cost in state.deduct:
            try:
                if not spec.deduct_when(response):  # type: ignore[misc]
                    backend.refund(key, cost)
            except StorageError:
                if not self._swallow_errors:
                    raise
                self.logger.exception("failed to refund a conditional deduction")
        d = state.decision
        if d is None or (not self._headers_enabled and d.allowed):
            return response
        # add (as Flask-Limiter does: a membership test per header would cost more than the
        # whole check); Retry-After replaces one an error handler may have set.
        headers = response.headers
        for name, value in d.headers():
            if name == "Retry-After":
                headers["Retry-After"] = _retry_after_value(d, self._retry_after)
            else:
                headers.add(name, value)
        return response


def _qualified_name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__name__', '')}.{getattr(fn, '__qualname__', '')}"
