"""Type stubs of the native module ``ratewall._native`` (built from ``py/src`` by maturin)."""

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from typing import Final, Literal, final

__all__ = [
    "AsyncBridge",
    "Config",
    "ConfigError",
    "DEFAULT_IPV6_SUBNET",
    "DENIED_CONTENT_TYPE",
    "DENIED_STATUS",
    "Decision",
    "EventFeed",
    "InsufficientCapacityError",
    "LimitStatus",
    "Limiter",
    "Limiters",
    "RedisLimiter",
    "RedisStorage",
    "TrustProxy",
    "__version__",
    "canonical_rates",
    "client_ip",
    "client_key",
    "coarse_clock_resolution",
    "coarse_monotonic",
    "composite_key",
    "denied_body",
    "hash_key",
    "ip_key",
    "mask_ip",
    "monotonic",
    "parse_ip",
    "parse_rates",
    "retry_after_header",
]

__version__: Final[str]
DENIED_STATUS: Final[int]
DENIED_CONTENT_TYPE: Final[str]
DEFAULT_IPV6_SUBNET: Final[int]

class InsufficientCapacityError(ValueError):
    """A cost the limiter can never admit at once: waiting will not help."""

class ConfigError(ValueError):
    """A configuration file, environment variable or option that cannot be used."""

@final
class LimitStatus:
    """One limit's part of a :class:`Decision`."""

    @property
    def rate(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def allowed(self) -> bool: ...
    @property
    def limit(self) -> int: ...
    @property
    def remaining(self) -> int: ...
    @property
    def retry_after(self) -> float: ...
    @property
    def reset_after(self) -> float: ...
    @property
    def window(self) -> float: ...

@final
class Decision:
    """The answer to "may this client do this now?"."""

    @property
    def allowed(self) -> bool: ...
    @property
    def limit(self) -> int: ...
    @property
    def remaining(self) -> int: ...
    @property
    def retry_after(self) -> float:
        """Seconds until the same request could pass; 0.0 when allowed."""
    @property
    def reset_after(self) -> float:
        """Seconds until the limiter is full again / the window resets."""
    @property
    def retry_after_ns(self) -> int: ...
    @property
    def reset_after_ns(self) -> int: ...
    @property
    def retry_after_header(self) -> int:
        """The ``Retry-After`` value: whole seconds rounded up, at least 1."""
    @property
    def most_restrictive(self) -> int: ...
    @property
    def policy(self) -> str: ...
    @property
    def source(self) -> str:
        """Who decided: ``memory``, ``redis``, ``fail-open``, ``fail-closed`` or ``local``."""
    @property
    def fallback(self) -> bool:
        """``True`` when a fail mode decided instead of the configured store."""
    @property
    def limits(self) -> list[LimitStatus]: ...
    @property
    def body(self) -> str:
        """The 429 body: ``{"error":"rate_limited","retryAfter":N}``."""
    def headers(self, key: str | None = None, now_unix: float | None = None) -> list[tuple[str, str]]:
        """The rate-limit response headers (and ``Retry-After`` on a denial), in order."""
    def __bool__(self) -> bool: ...

@final
class Limiter:
    """A policy of one or more limits enforced together per key."""

    def __new__(
        cls,
        limits: str | Sequence[str],
        *,
        algorithm: str = "token-bucket",
        name: str = "default",
        burst: int | None = None,
        max_keys: int | None = None,
        overflow: str = "evict",
        headers: str = "legacy",
        send_date: bool = True,
        retry_after: bool | None = None,
        clock: Callable[[], float] | Literal["precise", "coarse"] | None = None,
    ) -> Limiter: ...
    def check(self, key: str | bytes, cost: int | None = None, now: float | None = None) -> Decision:
        """Decide and, if allowed, take ``cost`` permits (``None`` means 1)."""
    def peek(self, key: str | bytes, cost: int | None = None, now: float | None = None) -> Decision:
        """Decide without taking."""
    def refund(self, key: str | bytes, cost: int | None = None, now: float | None = None) -> Decision:
        """Give ``cost`` permits back (never above full)."""
    def reset(self, key: str | bytes) -> None:
        """Make ``key`` full again."""
    def now(self) -> float:
        """The time on this limiter's clock, in seconds."""
    def reclaim(self, now: float | None = None) -> int:
        """Drop idle keys' state; returns how many were dropped."""
    def __len__(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def limits(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def header_sets(self) -> str: ...
    @property
    def rates(self) -> list[tuple[int, float]]: ...
    @property
    def clock(self) -> Callable[[], float] | Literal["coarse"] | None:
        """The clock callable, ``"coarse"``, or ``None`` for the default (precise) clock."""

@final
class Config:
    """The shared TOML configuration plus ``RATEWALL_*`` environment variables."""

    def __new__(cls) -> Config: ...
    @staticmethod
    def from_toml(text: str) -> Config: ...
    @staticmethod
    def from_file(path: str | PathLike[str]) -> Config: ...
    @staticmethod
    def from_env(environ: Mapping[str, str] | None = None) -> Config: ...
    def with_env(self, environ: Mapping[str, str]) -> Config: ...
    @property
    def policy_names(self) -> list[str]: ...
    def limiter(
        self, name: str, *, clock: Callable[[], float] | Literal["precise", "coarse"] | None = None
    ) -> Limiter: ...
    def limiters(
        self, *, clock: Callable[[], float] | Literal["precise", "coarse"] | None = None
    ) -> dict[str, Limiter]: ...
    @property
    def storage(self) -> str: ...
    @property
    def key_prefix(self) -> str: ...
    @property
    def headers(self) -> str: ...
    def fail_mode(self, name: str) -> str: ...
    def limits(self, name: str) -> str: ...
    def to_toml(self) -> str: ...
    def open(
        self,
        *,
        command_timeout: float | None = None,
        connect_timeout: float | None = None,
        fail_closed_retry_after: float | None = None,
        local_fraction: float | None = None,
        key_secret: str | bytes | None = None,
        lazy: bool = False,
        events: bool = False,
    ) -> Limiters:
        """Every policy on the configured store (``memory://`` or Redis)."""

_EventTuple = tuple[str, str | None, str | None, str | None]

@final
class EventFeed:
    """The receiving end of a store's events (drained by ``ratewall.storage``)."""

    def next(self, timeout: float) -> list[_EventTuple] | None: ...
    @property
    def dropped(self) -> int: ...

@final
class RedisStorage:
    """A connection to Redis that policies are built on."""

    def __new__(
        cls,
        uri: str,
        *,
        fail_mode: str = "fail-open",
        command_timeout: float | None = None,
        connect_timeout: float | None = None,
        reconnect_min_delay: float | None = None,
        reconnect_max_delay: float | None = None,
        fail_closed_retry_after: float | None = None,
        key_prefix: str = "ratewall",
        key_secret: str | bytes | None = None,
        local_fraction: float | None = None,
        lazy: bool = False,
        events: bool = False,
        tls_ca_file: str | None = None,
        tls_cert_file: str | None = None,
        tls_key_file: str | None = None,
    ) -> RedisStorage: ...
    @property
    def uri(self) -> str: ...
    @property
    def blocking(self) -> bool: ...
    @property
    def fail_mode(self) -> str: ...
    def limiter(
        self,
        limits: str | Sequence[str],
        *,
        algorithm: str = "token-bucket",
        name: str = "default",
        burst: int | None = None,
        max_keys: int | None = None,
        overflow: str = "evict",
        headers: str = "legacy",
        send_date: bool = True,
        retry_after: bool | None = None,
        clock: None = None,
        fail_mode: str | None = None,
    ) -> RedisLimiter: ...
    def health(self) -> dict[str, str | int | None]: ...
    def events(self) -> EventFeed | None: ...

@final
class Limiters:
    """Every policy of a configuration on its store (``Config.open()``)."""

    def get(self, name: str) -> RedisLimiter | None: ...
    def __getitem__(self, key: str, /) -> RedisLimiter: ...
    def __contains__(self, key: str, /) -> bool: ...
    def __len__(self) -> int: ...
    @property
    def names(self) -> list[str]: ...
    @property
    def storage(self) -> str: ...
    def health(self) -> dict[str, str | int | None] | None: ...
    def events(self) -> EventFeed | None: ...

@final
class RedisLimiter:
    """One policy on a shared store: blocking calls release the GIL; ``a*`` calls are awaitable."""

    def check(self, key: str | bytes, cost: int | None = None, now: None = None) -> Decision: ...
    def peek(self, key: str | bytes, cost: int | None = None, now: None = None) -> Decision: ...
    def refund(self, key: str | bytes, cost: int | None = None, now: None = None) -> Decision: ...
    def acheck(self, key: str | bytes, cost: int | None = None) -> asyncio.Future[Decision]: ...
    def apeek(self, key: str | bytes, cost: int | None = None) -> asyncio.Future[Decision]: ...
    def arefund(self, key: str | bytes, cost: int | None = None) -> asyncio.Future[Decision]: ...
    def reset(self, key: str | bytes) -> None: ...
    def redis_keys(self, key: str | bytes) -> list[str]: ...
    def health(self) -> dict[str, str | int | None] | None: ...
    @property
    def fail_mode(self) -> str | None: ...
    @property
    def storage(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def limits(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def header_sets(self) -> str: ...
    @property
    def rates(self) -> list[tuple[int, float]]: ...

@final
class AsyncBridge:
    """The per-event-loop end of the async path (see ``ratewall.storage``)."""

    def __new__(cls) -> AsyncBridge: ...
    def fileno(self) -> int: ...
    def drain(self) -> int: ...

@final
class TrustProxy:
    """Which proxies to believe about the client address (Express's ``trust proxy``)."""

    def __new__(cls, setting: TrustProxy | bool | int | str | None) -> TrustProxy: ...
    def client_ip(self, peer: str, x_forwarded_for: str | None = None, forwarded: str | None = None) -> str: ...
    @property
    def enabled(self) -> bool: ...
    def warning(self, forwarding_header_present: bool) -> tuple[str, str] | None: ...

def client_ip(
    peer: str,
    x_forwarded_for: str | None = None,
    *,
    trust_proxy: TrustProxy | bool | int | str | None = None,
    forwarded: str | None = None,
) -> str: ...
def client_key(
    peer: str | None,
    x_forwarded_for: str | None = None,
    *,
    trust_proxy: TrustProxy | bool | int | str | None = None,
    forwarded: str | None = None,
    ipv6_subnet: int = 56,
) -> str:
    """The client address under ``trust_proxy``, IPv6 masked; a non-IP peer is returned as is."""
def ip_key(ip: str, ipv6_subnet: int = 56) -> str: ...
def mask_ip(ip: str, ipv6_subnet: int = 56) -> str: ...
def parse_ip(ip: str) -> str: ...
def composite_key(parts: Iterable[tuple[str, str]] | Mapping[str, str]) -> str: ...
def hash_key(value: str | bytes, secret: str | bytes) -> str: ...
def monotonic() -> float: ...
def coarse_monotonic() -> float:
    """The coarse clock of ``clock="coarse"`` limiters: ``monotonic()``'s scale as of the
    kernel's last tick (up to ``coarse_clock_resolution()`` behind)."""
def coarse_clock_resolution() -> float:
    """How far ``coarse_monotonic()`` may trail ``monotonic()``, in seconds (one kernel tick)."""
def denied_body(retry_after: float) -> str: ...
def retry_after_header(retry_after: float) -> int: ...
def parse_rates(rates: str) -> list[tuple[int, float]]: ...
def canonical_rates(rates: str) -> str: ...
