"""Key helpers: client IP behind proxies, IPv6 masking, composite and hashed keys."""

from __future__ import annotations

import pytest

from ratewall import keys
from ratewall.keys import TrustProxy


def test_client_ip_trust_proxy_settings() -> None:
    xff = "6.6.6.6, 198.51.100.7"
    assert keys.client_ip("10.0.0.2", xff) == "10.0.0.2"  # default: headers ignored
    assert keys.client_ip("10.0.0.2", xff, trust_proxy=1) == "198.51.100.7"
    assert keys.client_ip("10.0.0.2", xff, trust_proxy="1") == "198.51.100.7"
    assert keys.client_ip("10.0.0.2", xff, trust_proxy=2) == "6.6.6.6"
    assert keys.client_ip("10.0.0.2", xff, trust_proxy=True) == "6.6.6.6"
    assert keys.client_ip("10.0.0.2", xff, trust_proxy="uniquelocal") == "198.51.100.7"
    assert keys.client_ip("10.0.0.2", None, trust_proxy=1, forwarded='for="[2001:db8::7]:443"') == "2001:db8::7"
    assert keys.client_ip("::ffff:203.0.113.9") == "203.0.113.9"


def test_trust_proxy_object_and_warnings() -> None:
    tp = TrustProxy("loopback, 10.0.0.0/8")
    assert tp.enabled and str(tp) == "127.0.0.0/8, ::1/128, 10.0.0.0/8"
    assert tp.client_ip("127.0.0.1", "203.0.113.5, 10.1.2.3") == "203.0.113.5"
    assert TrustProxy(False).warning(True)[0] == "unexpected_x_forwarded_for"
    assert TrustProxy(True).warning(False)[0] == "permissive_trust_proxy"
    assert TrustProxy(1).warning(True) is None
    assert repr(TrustProxy(None)) == 'TrustProxy("false")'
    with pytest.raises(ValueError, match="invalid trust proxy entry"):
        TrustProxy("10.0.0.0/33")
    with pytest.raises(TypeError, match="trust_proxy must be"):
        TrustProxy(1.5)
    with pytest.raises(ValueError, match="hop count"):
        TrustProxy(-1)


def test_ipv6_masking_and_ip_keys() -> None:
    assert keys.ip_key("2001:db8:abcd:12ff::1") == "2001:db8:abcd:1200::/56"
    assert keys.ip_key("2001:db8:abcd:12ff::1", 64) == "2001:db8:abcd:12ff::/64"
    assert keys.ip_key("[2001:db8::1]:443", 128) == "2001:db8::1/128"
    assert keys.ip_key("203.0.113.7:8080") == "203.0.113.7"
    assert keys.mask_ip("2001:db8:abcd:12ff::1", 48) == "2001:db8:abcd::/48"
    assert keys.parse_ip(" [2001:db8::1]:443 ") == "2001:db8::1"
    with pytest.raises(ValueError, match="not an IP address"):
        keys.ip_key("example.com")
    with pytest.raises(ValueError, match="ipv6_subnet must be a prefix length from 1 to 128"):
        keys.ip_key("2001:db8::1", 0)
    with pytest.raises(ValueError, match="ipv6_subnet"):
        keys.ip_key("2001:db8::1", 300)


def test_client_key_combines_ip_trust_and_masking() -> None:
    assert keys.client_key("2001:db8:abcd:12ff::1") == "2001:db8:abcd:1200::/56"
    assert keys.client_key("2001:db8:abcd:12ff::1") == keys.client_key("2001:db8:abcd:12aa::99")
    assert keys.client_key("10.0.0.1", "2001:db8::5", trust_proxy=1, ipv6_subnet=64) == "2001:db8::/64"
    assert keys.client_key(None) == "127.0.0.1"
    assert keys.client_key("testclient") == "testclient"  # not an address: keyed as is
    with pytest.raises(ValueError):
        keys.client_key("testclient", trust_proxy="nonsense")
    with pytest.raises(ValueError):
        keys.client_key("testclient", ipv6_subnet=0)


def test_composite_user_and_route_keys_are_injective() -> None:
    assert keys.composite_key([("ip", "203.0.113.7"), ("user", "alice")]) == "ip=203.0.113.7&user=alice"
    assert keys.composite_key({"ip": "1.2.3.4", "user": "bob"}) == "ip=1.2.3.4&user=bob"
    assert keys.composite_key([("k", "a:b"), ("k", "c")]) != keys.composite_key([("k", "a"), ("k", "b:c")])
    assert keys.composite_key([("x", "a&y=b")]) == r"x=a\&y\=b"
    assert keys.user_key("alice") == "user=alice"
    assert keys.route_key("POST /login") == "route=POST /login"
    with pytest.raises(TypeError, match="every part must be a \\(str, str\\) pair"):
        keys.composite_key([("ip", 5)])
    with pytest.raises(TypeError, match="parts must be"):
        keys.composite_key(5)


def test_hashing_personal_data() -> None:
    h = keys.hash_key("alice@example.com", b"s3cret")
    assert len(h) == 22 and "=" not in h
    assert h == keys.hash_key(b"alice@example.com", "s3cret"), "str and bytes hash alike"
    assert h != keys.hash_key("alice@example.com", b"other")
    # HMAC-SHA-256, first 16 bytes, base64url without padding: the Redis key-name hash, the
    # same in every language given the same secret.
    import base64
    import hashlib
    import hmac

    digest = hmac.new(b"s3cret", b"alice@example.com", hashlib.sha256).digest()[:16]
    assert h == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    # The Redis crate's known answer (RFC 4231-style vector): f7bc83f430538424b13298e6aa6fb143.
    known = keys.hash_key("The quick brown fox jumps over the lazy dog", "key")
    assert base64.urlsafe_b64decode(known + "==").hex() == "f7bc83f430538424b13298e6aa6fb143"
    assert keys.hash_key("x") == keys.hash_key("x"), "default: one secret per process"
    assert keys.api_key_key("sk_live_123").startswith("apikey=")
    assert "sk_live_123" not in keys.api_key_key("sk_live_123")
    with pytest.raises(ValueError, match="secret must not be empty"):
        keys.hash_key("x", b"")
    with pytest.raises(TypeError, match="value must be str or bytes"):
        keys.hash_key(5, b"k")
    with pytest.raises(TypeError, match="secret must be str or bytes"):
        keys.hash_key("x", 5)
