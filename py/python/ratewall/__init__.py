"""ratewall: exact, lock-free rate limiting with one Rust engine.

The core API::

    import ratewall

    limiter = ratewall.Limiter("5 per 10 minutes", algorithm="sliding-log")
    decision = limiter.check("alice")          # decide and take one permit
    if not decision.allowed:
        status, body = 429, decision.body       # {"error":"rate_limited","retryAfter":N}
        headers = decision.headers()           # Retry-After and the rate-limit headers

- :class:`Limiter` holds a *policy*: one or more limits (``"10/second; 1000/day"``) under one
  algorithm (``token-bucket``, ``fixed-window``, ``fixed-window-aligned``,
  ``sliding-window-counter``, ``sliding-log`` alias ``moving-window``), enforced together per
  key: a request passes only if every limit admits it, and a denied request takes nothing.
- ``check(key, cost=1, now=None)``, ``peek``, ``refund``, ``reset(key)``; keys are ``str`` or
  ``bytes`` and are hashed in Rust with a per-process seed (raw keys are never stored).
- :class:`Decision`: ``allowed``, ``limit``, ``remaining``, ``retry_after`` and
  ``reset_after`` (seconds, float), ``headers()`` and ``body`` (rendered in Rust, identical in
  every ratewall binding).
- :class:`Config`: the shared TOML file and ``RATEWALL_*`` environment variables;
  ``Config.open()`` / :func:`open_config` build every policy on the configured store.

Fleets: ``storage_from_uri("redis://host:6379")`` (:class:`RedisStorage`) or a config with
``storage = "redis://..."`` gives :class:`RedisLimiter` objects: the same decisions, with the
state in Redis so every instance of an app shares one quota. ``check`` releases the GIL while
it waits (at most about ``command_timeout``); ``acheck`` is an awaitable for asyncio. A Redis
outage never raises: the policy's ``fail_mode`` decides and ``Decision.source`` says who did.

Time: durations are seconds (float). A limiter reads its clock once per call: by default
:func:`monotonic` (the scale of ``time.monotonic()``); ``clock="coarse"`` for
:func:`coarse_monotonic` (the same scale as of the kernel's last tick: up to
:func:`coarse_clock_resolution`, 1-4 ms, behind, for a quarter of the cost of a read; for limits
counted in seconds or more); or ``clock=`` any callable returning seconds, such as a test's fake
clock. ``now=`` on any call decides at an explicit instant on that same scale. Nothing in
ratewall sleeps.

Framework glue lives in submodules: :mod:`ratewall.flask` (a Flask-Limiter-shaped extension),
:mod:`ratewall.asgi` (Starlette/FastAPI middleware and dependency), :mod:`ratewall.wsgi`,
:mod:`ratewall.retry` (``requests``/``httpx`` helpers that honour ``Retry-After``) and
:mod:`ratewall.keys` (client IP, IPv6 masking, composite and hashed keys).

Errors: bad arguments raise ``TypeError`` or ``ValueError`` with a message that says what to
change; a cost that can never pass raises :class:`InsufficientCapacityError` (a ``ValueError``);
configuration problems raise :class:`ConfigError` (a ``ValueError``).
"""

from __future__ import annotations

from ratewall._native import (
    DENIED_CONTENT_TYPE,
    DENIED_STATUS,
    Config,
    ConfigError,
    Decision,
    InsufficientCapacityError,
    Limiter,
    Limiters,
    LimitStatus,
    RedisLimiter,
    RedisStorage,
    __version__,
    canonical_rates,
    coarse_clock_resolution,
    coarse_monotonic,
    denied_body,
    monotonic,
    parse_rates,
    retry_after_header,
)
from ratewall.storage import (
    MemoryStorage,
    StorageError,
    StorageEvent,
    StorageUnavailableError,
    open_config,
    register_storage,
    storage_from_uri,
)

#: The algorithms a :class:`Limiter` accepts, by canonical name (aliases: ``gcra``,
#: ``sliding-window``, ``moving-window``).
ALGORITHMS = (
    "token-bucket",
    "fixed-window",
    "fixed-window-aligned",
    "sliding-window-counter",
    "sliding-log",
)

__all__ = [
    "ALGORITHMS",
    "DENIED_CONTENT_TYPE",
    "DENIED_STATUS",
    "Config",
    "ConfigError",
    "Decision",
    "InsufficientCapacityError",
    "LimitStatus",
    "Limiter",
    "Limiters",
    "MemoryStorage",
    "RedisLimiter",
    "RedisStorage",
    "StorageError",
    "StorageEvent",
    "StorageUnavailableError",
    "__version__",
    "canonical_rates",
    "coarse_clock_resolution",
    "coarse_monotonic",
    "denied_body",
    "monotonic",
    "open_config",
    "parse_rates",
    "register_storage",
    "retry_after_header",
    "storage_from_uri",
]
