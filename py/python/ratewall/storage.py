"""Where limiter state lives: the one place a ``storage_uri`` is turned into limiters.

Every piece of framework glue (:mod:`ratewall.flask`, :mod:`ratewall.asgi`,
:mod:`ratewall.wsgi`) calls :func:`storage_from_uri` and then :meth:`Storage.limiter` for each
policy, so a new backend is wired in here and nowhere else.

Schemes:

- ``memory://`` — in-process state in the native engine (:class:`MemoryStorage`). Decisions
  take well under a microsecond and never wait on I/O, so the ASGI middleware calls them inline
  on the event loop.
- ``redis://``, ``rediss://``, ``redis+unix://``, ``redis+cluster://`` — the fleet backend
  (crate ``ratewall-redis``). It is **not available in this build**: these URIs raise
  :class:`StorageUnavailableError` with a message saying so. When the native module gains the
  Redis client, :func:`_redis_storage` is where it is returned.
- Anything else registered with :func:`register_storage` (for tests, or a custom backend).

A *backend* (what :meth:`Storage.limiter` returns) has the methods of
:class:`ratewall.Limiter`: ``check(key, cost=1)``, ``peek``, ``refund``, ``reset(key)``, each
returning a :class:`ratewall.Decision`. A backend that talks to a network (``blocking`` storage)
also offers ``acheck``/``arefund`` coroutines, which the ASGI glue awaits so that the event loop
is never blocked; :func:`acheck` and :func:`arefund` pick the right call. A backend signals an
outage by raising :class:`StorageError`; the glue then applies ``swallow_errors`` /
``in_memory_fallback`` (Flask) or the ``fail_mode`` option (ASGI, WSGI).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from ratewall._native import Decision, Limiter

__all__ = [
    "Backend",
    "MemoryStorage",
    "Storage",
    "StorageError",
    "StorageUnavailableError",
    "acheck",
    "arefund",
    "register_storage",
    "storage_from_uri",
]


class StorageError(Exception):
    """The storage could not answer (connection refused, timeout, ...). Raised by backends."""


class StorageUnavailableError(RuntimeError):
    """The storage named by a URI is not available in this build of ratewall."""


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
        """A new native limiter (see :class:`ratewall.Limiter` for the options)."""
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


def _redis_storage(uri: str, **options: Any) -> Storage:
    """The Redis storage, once the native module carries it; until then a clear error."""
    from ratewall import _native

    redis_storage = getattr(_native, "RedisStorage", None)
    if redis_storage is None:
        raise StorageUnavailableError(
            f"the Redis storage is not available in this build of ratewall (storage_uri="
            f"{_redact(uri)!r}): this ratewall._native was built without the ratewall-redis "
            "backend. Use storage_uri='memory://' (in-process limits), or install a ratewall "
            "build that includes Redis support."
        )
    storage: Storage = redis_storage(uri, **options)
    return storage


def _redact(uri: str) -> str:
    """The URI without its password, for error messages."""
    scheme, sep, rest = uri.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return uri
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}" if user else f"{scheme}{sep}***@{host}"


for _scheme in ("redis", "rediss", "redis+unix", "redis+cluster", "redis+sentinel"):
    _factories[_scheme] = _redis_storage
_factories["memory"] = MemoryStorage


def storage_from_uri(uri: str | None = "memory://", **options: Any) -> Storage:
    """Opens the storage a URI names (``None`` means ``memory://``).

    Raises ``ValueError`` for an unknown scheme or a malformed URI, ``TypeError`` for a URI that
    is not a string, and :class:`StorageUnavailableError` for a known storage that this build
    lacks (Redis, for now).
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
