"""Keys: who is asking. Client IP behind proxies, IPv6 subnets, users, API keys, composites.

A limiter counts per key, so the key decides who shares a quota. The helpers here are thin
wrappers over the Rust core, so the C, Python and Node bindings derive the same key from the
same request.

- :func:`client_key` — the key of the client address: the socket peer walked through
  ``X-Forwarded-For`` (or RFC 7239 ``Forwarded``) under an explicit ``trust_proxy`` setting
  (:class:`TrustProxy`, Express's ``trust proxy``: ``False`` by default, a hop count, CIDRs, or
  ``True``), then IPv6 masked to ``ipv6_subnet`` bits (default /56, so rotating addresses inside
  one subscriber's prefix does not mint new keys). IPv4-mapped IPv6 keys as IPv4.
- :func:`user_key`, :func:`api_key_key`, :func:`route_key`, :func:`composite_key` — named parts
  joined injectively (``ip=203.0.113.7&user=alice``): different parts never collide.
- :func:`hash_key` — HMAC-SHA-256 (base64url, 22 characters) of personal data (emails, phone
  numbers, API keys) for logs, metrics and keys that leave the process. Limiters never store raw keys anyway (they keep a
  seeded 64-bit hash), but a breach hook or a log line should see the hash, not the email.
"""

from __future__ import annotations

import os
import threading

from ratewall import _native
from ratewall._native import (
    DEFAULT_IPV6_SUBNET,
    TrustProxy,
    client_ip,
    client_key,
    composite_key,
    ip_key,
    mask_ip,
    parse_ip,
)

__all__ = [
    "DEFAULT_IPV6_SUBNET",
    "TrustProxy",
    "api_key_key",
    "client_ip",
    "client_key",
    "composite_key",
    "hash_key",
    "ip_key",
    "mask_ip",
    "parse_ip",
    "process_secret",
    "route_key",
    "user_key",
]

_secret_lock = threading.Lock()
_secret: bytes | None = None


def process_secret() -> bytes:
    """The default secret of :func:`hash_key`: the environment variable
    ``RATEWALL_KEY_SECRET`` (the fleet-wide key secret the Redis backend also reads), else 32
    random bytes drawn once per process.

    Hashes under a random secret are stable within the process and useless outside it; set
    ``RATEWALL_KEY_SECRET`` (or pass a secret) for hashes that match across processes and
    languages.
    """
    global _secret
    secret = _secret
    if secret is not None:  # no lock once drawn
        return secret
    with _secret_lock:
        if _secret is None:
            configured = os.environ.get("RATEWALL_KEY_SECRET")
            _secret = configured.encode() if configured else os.urandom(32)
        return _secret


def hash_key(value: str | bytes, secret: str | bytes | None = None) -> str:
    """HMAC-SHA-256 of ``value`` under ``secret`` (default: :func:`process_secret`), first 16
    bytes, base64url without padding (22 characters; the Redis backend's key-name hash)."""
    return _native.hash_key(value, process_secret() if secret is None else secret)


def user_key(user_id: str) -> str:
    """``user=<id>``: an account, user id or email (escaped like every composite part)."""
    return composite_key([("user", user_id)])


def api_key_key(api_key: str, *, secret: str | bytes | None = None) -> str:
    """``apikey=<hash>``: an API key, hashed with :func:`hash_key` so that a secret never
    becomes a key that could be logged."""
    return composite_key([("apikey", hash_key(api_key, secret))])


def route_key(route: str) -> str:
    """``route=<route>``: an endpoint such as ``POST /login``."""
    return composite_key([("route", route)])
