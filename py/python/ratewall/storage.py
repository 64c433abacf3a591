"""Where limiter state lives: the one place a ``storage_uri`` is turned into limiters.

Every piece of framework glue (:mod:`ratewall.flask`, :mod:`ratewall.asgi`,
:mod:`ratewall.wsgi`) calls :func:`storage_from_uri` and then :meth:`Storage.limiter` for each
policy, so a new backend is wired in here and nowhere else.

Schemes:

- ``memory://`` — in-process state in the native engine (:class:`MemoryStorage`). Decisions
  take well under a microsecond and never wait on I/O, so the ASGI middleware calls them inline
  on the event loop.
- ``redis://host:port/db``, ``rediss://`` (TLS), ``redis+unix:///path.sock``,
  ``redis+cluster://host:port,host:port`` — the fleet backend (crate ``ratewall-redis``, in
  the native module): :class:`ratewall.RedisStorage`. Every instance of an app that uses the
  same Redis, key prefix and key secret shares one quota. One round trip (one Lua script) per
  decision, with Redis server time. Construction connects: a malformed URL or option raises
  ``ValueError``, an unreachable server ``ConnectionError`` (``lazy=True`` starts anyway).
  A Redis outage never raises in the request path: each policy's ``fail_mode``
  (``fail-open``, ``fail-closed``, ``local``) decides within ``command_timeout``, and
  :attr:`ratewall.Decision.source` says who did.
- Anything else registered with :func:`register_storage` (for tests, or a custom backend).

Redis storage options (``storage_from_uri(uri, **options)``, Flask's ``storage_options``,
the middlewares' ``storage_options``): ``fail_mode`` (default ``fail-open``),
``command_timeout`` (seconds, default 0.05), ``connect_timeout`` (0.5),
``reconnect_min_delay`` (0.025), ``reconnect_max_delay`` (1.0), ``fail_closed_retry_after``
(1.0), ``key_prefix`` (``"ratewall"``), ``key_secret`` (default ``RATEWALL_KEY_SECRET``, else a
public default; the same in the whole fleet), ``local_fraction`` (share of each limit the
``local`` fallback admits, default 1.0), ``lazy`` (False), ``tls_ca_file`` (a PEM file of the
certificate authorities a ``rediss://`` server must chain to, instead of the system's roots;
``rediss://`` only; default none), ``tls_cert_file`` and ``tls_key_file`` (PEM files of the
client certificate and its key, for a ``rediss://`` server that asks clients for one: Redis's
``tls-auth-clients``, on by default when it serves TLS; both or neither; default none) and
``on_event`` (a callable receiving
:class:`StorageEvent` for every failure and connection change; it runs on a background thread
and its exceptions are logged, never raised into a request).

The async path (ASGI): ``RedisLimiter.acheck`` sends the request at once and returns a future
of the running loop. The store's I/O thread never takes the GIL: it queues the reply and
writes one byte to a socket the loop watches (``loop.add_reader``); the loop resolves every
queued future in one callback (see :func:`_bridge_for`). So the loop is never blocked, a busy
loop never stalls Redis I/O, and one wakeup serves a batch of replies. Requires a loop that
supports ``add_reader`` (the default loop on Unix, uvloop).

A *backend* (what :meth:`Storage.limiter` returns) has the methods of
:class:`ratewall.Limiter`: ``check(key, cost=1)``, ``peek``, ``refund``, ``reset(key)``, each
returning a :class:`ratewall.Decision`. A backend that talks to a network (``blocking`` storage)
also offers ``acheck``/``arefund`` coroutines, which the ASGI glue awaits so that the event loop
is never blocked; :func:`acheck` and :func:`arefund` pick the right call. A backend signals an
outage by raising :class:`StorageError`; the glue then applies ``swallow_errors`` /
``in_memory_fallback`` (Flask) or the ``fail_mode`` option (ASGI, WSGI).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Union

from ratewall._native import AsyncBridge, Config, Decision, Limiter, Limiters, RedisStorage

__all__ = [
    "Backend",
    "MemoryStorage",
    "REDIS_SCHEMES",
    "Storage",
    "StorageError",
    "StorageEvent",
    "StorageUnavailableError",
    "acheck",
    "arefund",
    "is_redis_uri",
    "open_config",
    "register_storage",
    "storage_from_uri",
]

logger = logging.getLogger("ratewall.storage")

#: A limiter's ``clock=`` option: ``"precise"`` or ``None`` (the default, ``ratewall.monotonic``),
#: ``"coarse"`` (``ratewall.coarse_monotonic``: the same scale as of the kernel's last tick), or
#: a callable returning seconds. In-process limiters only: Redis decides with its own clock.
ClockOption = Union[Callable[[], float], Literal["precise", "coarse"], None]

#: The URI schemes of the Redis storage.
REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+cluster", "rediss+cluster")


class StorageError(Exception):
    """The storage could not answer (connection refused, timeout, ...). Raised by backends."""


class StorageUnavailableError(RuntimeError):
    """The storage named by a URI is known but not supported by ratewall
    (``redis+sentinel://``)."""


class Backend(Protocol):
    """One policy's limiter on some storage: the methods of :class:`ratewall.Limiter`."""

    def check(self, key: str | bytes, cost: int | None = None, now: float | None = None) -> Decision:
        """Decide and take."""
        ...

    def refund(self, key: str | bytes, cost: int | None = None, now: float | None = None) -> Decision:
        """Give permits back."""
        ...

    def reset(self, key: str | bytes) -> None:
        """Make the key full again."""
        ...


class Storage(Protocol):
    """A storage: makes one :class:`Backend` per policy."""

    #: The URI it was opened from.
    uri: str
    #: ``True`` when calls may wait on I/O (the ASGI glue then awaits ``acheck``).
    blocking: bool

    def limiter(self, limits: str | list[str], **options: Any) -> Backend:
        """A backend enforcing ``limits`` with the options of :class:`ratewall.Limiter`."""
        ...


class MemoryStorage:
    """In-process storage: every :meth:`limiter` is a native :class:`ratewall.Limiter`.

    Limiters from one storage are independent objects; state is not shared between processes
    (use the Redis storage for a fleet).
    """

    uri = "memory://"
    blocking = False

    def __init__(self, uri: str = "memory://", **options: Any) -> None:
        if options:
            raise TypeError(
                f"memory:// storage takes no options, got {', '.join(sorted(options))}"
            )
        self.uri = uri

    def limiter(self, limits: str | list[str], **options: Any) -> Limiter:
        """A new native limiter (see :class:`ratewall.Limiter` for the options). ``fail_mode``
        is accepted for symmetry with the Redis storage and ignored: memory never fails."""
        options.pop("fail_mode", None)
        return Limiter(limits, **options)

    def __repr__(self) -> str:
        return f"MemoryStorage({self.uri!r})"


StorageFactory = Callable[..., Storage]

_lock = threading.Lock()
_factories: dict[str, StorageFactory] = {}


def register_storage(scheme: str, factory: StorageFactory) -> None:
    """Make ``scheme://...`` URIs open with ``factory(uri, **options)``.

    Replaces any factory registered for the scheme before (including the built-in ones).
    """
    if not isinstance(scheme, str) or not scheme or "://" in scheme:
        raise ValueError(f"scheme must be a name such as 'memory' (no '://'), got {scheme!r}")
    if not callable(factory):
        raise TypeError("factory must be callable: factory(uri, **options) -> storage")
    with _lock:
        _factories[scheme.lower()] = factory


@dataclass(frozen=True)
class StorageEvent:
    """A failure or connection change of the Redis storage, for logs and metrics."""

    #: ``"error"`` (Redis could not decide a request; ``fail_mode`` did), ``"down"`` (the
    #: connection was lost; reconnection runs in the background) or ``"up"`` (Redis decides
    #: again).
    kind: str
    #: What failed, for ``error`` and ``down``.
    error: str | None
    #: The policy whose request failed, for ``error``.
    policy: str | None
    #: How that request was decided (``fail-open``, ``fail-closed``, ``local``), for ``error``.
    fail_mode: str | None


_dispatchers: list[tuple[threading.Thread, threading.Event]] = []


def _dispatch_events(feed: Any, callback: Callable[[StorageEvent], Any]) -> None:
    """Calls ``callback`` for every event of ``feed`` on a daemon thread until the store is
    gone. The store's I/O thread only queues events (it never takes the GIL); exceptions from
    the callback are logged here and never reach a request."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            batch = feed.next(0.2)
            if batch is None:
                return
            for item in batch:
                try:
                    callback(StorageEvent(*item))
                except Exception:  # noqa: BLE001 - a faulty callback must not stop the feed
                    logger.exception("ratewall on_event callback failed (ignored)")

    thread = threading.Thread(target=run, name="ratewall-events", daemon=True)
    thread.start()
    with _lock:
        _dispatchers[:] = [d for d in _dispatchers if d[0].is_alive()]
        _dispatchers.append((thread, stop))


@atexit.register
def _stop_dispatchers() -> None:
    """Ends the event threads before the interpreter finalizes: a daemon thread that waits in
    native code with the GIL released would otherwise be torn down (``pthread_exit``) while
    unwinding through Rust frames when it tries to take the GIL back."""
    with _lock:
        dispatchers = list(_dispatchers)
    for _, stop in dispatchers:
        stop.set()
    for thread, _ in dispatchers:
        thread.join(timeout=2)


def _check_callback(on_event: Any) -> None:
    if on_event is not None and not callable(on_event):
        raise TypeError(f"on_event must be callable, not {type(on_event).__name__}")


_REDIS_OPTIONS = (
    "command_timeout",
    "connect_timeout",
    "fail_closed_retry_after",
    "fail_mode",
    "key_prefix",
    "key_secret",
    "lazy",
    "local_fraction",
    "on_event",
    "reconnect_max_delay",
    "reconnect_min_delay",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
)


def _redis_storage(uri: str, **options: Any) -> Storage:
    """The Redis storage (see the module documentation for the options)."""
    unknown = sorted(set(options) - set(_REDIS_OPTIONS))
    if unknown:
        raise TypeError(
            f"unknown Redis storage option(s) {', '.join(unknown)}: use "
            + ", ".join(_REDIS_OPTIONS)
        )
    scheme = uri.partition("://")[0].lower()
    if scheme not in REDIS_SCHEMES:
        raise StorageUnavailableError(
            f"storage_uri scheme {scheme}:// is not supported by ratewall's Redis storage "
            f"(storage_uri={_redact(uri)!r}): use one of "
            + ", ".join(f"{s}://" for s in REDIS_SCHEMES)
        )
    on_event = options.pop("on_event", None)
    _check_callback(on_event)
    native = RedisStorage(uri, events=on_event is not None, **options)
    feed = native.events()
    if on_event is not None and feed is not None:
        _dispatch_events(feed, on_event)
    # The native class has the Storage protocol's members (read-only uri and blocking).
    storage: Storage = native  # type: ignore[assignment]
    return storage


def open_config(config: Config, *, on_event: Callable[[StorageEvent], Any] | None = None, **options: Any) -> Limiters:
    """Every policy of ``config`` on the store its ``storage`` names (``Config.open``), with
    ``on_event`` called (on a background thread) for every failure and connection change.

    ``options``: ``command_timeout``, ``connect_timeout``, ``fail_closed_retry_after``,
    ``local_fraction``, ``key_secret``, ``lazy``. Raises ``ValueError`` for a bad URL or option
    and ``ConnectionError`` when Redis cannot be reached (unless ``lazy``).
    """
    _check_callback(on_event)
    limiters = config.open(events=on_event is not None, **options)
    feed = limiters.events()
    if on_event is not None and feed is not None:
        _dispatch_events(feed, on_event)
    return limiters


def is_redis_uri(uri: str | None) -> bool:
    """Whether ``uri`` names the Redis storage."""
    if not isinstance(uri, str):
        return False
    return uri.strip().partition("://")[0].lower() in REDIS_SCHEMES


_FAIL_MODE_NAMES = {
    "open": "fail-open",
    "fail-open": "fail-open",
    "closed": "fail-closed",
    "fail-closed": "fail-closed",
    "local": "local",
}


def fail_mode_name(fail_mode: str) -> str:
    """The canonical fail mode (``fail-open``, ``fail-closed``, ``local``) of the glue's
    ``fail_mode`` option (``open`` and ``closed`` are accepted too); ``ValueError`` otherwise."""
    name = _FAIL_MODE_NAMES.get(fail_mode) if isinstance(fail_mode, str) else None
    if name is None:
        raise ValueError(
            f"fail_mode must be 'open', 'closed', 'fail-open', 'fail-closed' or 'local', got {fail_mode!r}"
        )
    return name


def check_clock(clock: object) -> None:
    """Raises what :class:`ratewall.Limiter` raises for a ``clock=`` it refuses: ``ValueError``
    for a string other than ``"precise"`` and ``"coarse"``, ``TypeError`` for anything else that
    is not ``None`` or callable (for glue that builds its limiters later)."""
    if clock is None or callable(clock) or clock in ("precise", "coarse"):
        return
    if isinstance(clock, str):
        raise ValueError(
            f"clock must be 'precise' (the default), 'coarse' or a callable returning seconds, got {clock!r}"
        )
    raise TypeError(
        "clock must be 'precise', 'coarse' or a callable returning seconds (such as time.monotonic), "
        f"not {type(clock).__name__}"
    )


def open_storage(uri: str | None, options: dict[str, Any] | None, fail_mode: str | None) -> Storage:
    """:func:`storage_from_uri` for the framework glue: ``fail_mode`` becomes the Redis
    storage's default unless ``options`` names one (other storages do not take it)."""
    opts = dict(options or {})
    if fail_mode is not None and is_redis_uri(uri):
        opts.setdefault("fail_mode", fail_mode)
    return storage_from_uri(uri, **opts)


# The async path's per-loop bridge (see the module documentation). The last one is cached so
# that the common case, one loop, costs one identity test per call.
_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncBridge] = weakref.WeakKeyDictionary()
_bridges_lock = threading.Lock()
_last_bridge: tuple[asyncio.AbstractEventLoop | None, AsyncBridge | None] = (None, None)


def _bridge_for() -> tuple[AsyncBridge, asyncio.Future[Decision]]:
    """The running loop's bridge (created and registered with ``loop.add_reader`` on first use)
    and a new future of that loop. Called by ``RedisLimiter.acheck``."""
    global _last_bridge
    loop = asyncio.get_running_loop()
    last_loop, bridge = _last_bridge
    if last_loop is not loop or bridge is None:
        with _bridges_lock:
            bridge = _bridges.get(loop)
            if bridge is None:
                bridge = AsyncBridge()
                loop.add_reader(bridge.fileno(), bridge.drain)
                _bridges[loop] = bridge
        _last_bridge = (loop, bridge)
    return bridge, loop.create_future()


def _redact(uri: str) -> str:
    """The URI without its password, for error messages."""
    scheme, sep, rest = uri.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return uri
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}" if user else f"{scheme}{sep}***@{host}"


for _scheme in (*REDIS_SCHEMES, "redis+sentinel"):
    _factories[_scheme] = _redis_storage
_factories["memory"] = MemoryStorage


def storage_from_uri(uri: str | None = "memory://", **options: Any) -> Storage:
    """Opens the storage a URI names (``None`` means ``memory://``).

    Raises ``ValueError`` for an unknown scheme or a malformed URI, ``TypeError`` for a URI that
    is not a string or an unknown option, ``ConnectionError`` when Redis cannot be reached, and
    :class:`StorageUnavailableError` for a scheme ratewall knows but does not support
    (``redis+sentinel://``).
    """
    if uri is None:
        uri = "memory://"
    if not isinstance(uri, str):
        raise TypeError(f"storage_uri must be a str such as 'memory://', not {type(uri).__name__}")
    scheme, sep, _ = uri.strip().partition("://")
    if not sep or not scheme:
        raise ValueError(f"storage_uri must look like 'scheme://...' (such as 'memory://'), got {uri!r}")
    with _lock:
        factory = _factories.get(scheme.lower())
        known = sorted(_factories)
    if factory is None:
        raise ValueError(
            f"unsupported storage_uri scheme {scheme!r}: use one of "
            + ", ".join(f"{s}://" for s in known)
        )
    return factory(uri.strip(), **options)


async def acheck(storage: Storage, backend: Any, key: str, cost: int = 1) -> Decision:
    """``backend.check`` without blocking an event loop: inline for non-blocking storage,
    ``await backend.acheck`` for storages that do I/O."""
    if not storage.blocking:
        decision: Decision = backend.check(key, cost)
        return decision
    return await backend.acheck(key, cost)  # type: ignore[no-any-return]


async def arefund(storage: Storage, backend: Any, key: str, cost: int = 1) -> Decision:
    """``backend.refund`` without blocking an event loop (see :func:`acheck`)."""
    if not storage.blocking:
        decision: Decision = backend.refund(key, cost)
        return decision
    return await backend.arefund(key, cost)  # type: ignore[no-any-return]
