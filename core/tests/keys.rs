//! Key helpers: IPv6 masking, address parsing, client IP resolution under every trust-proxy
//! mode (X-Forwarded-For and Forwarded), spoofing attempts, trust proxy parsing, the
//! diagnostic, and composite-key unambiguity.

use std::net::IpAddr;

use ipnet::IpNet;
use proptest::prelude::*;
use ratewall::keys::{
    composite_key, ip_key, mask_ip, normalize_ip, parse_forwarded, parse_ip, parse_x_forwarded_for,
    trust_proxy_warning, Hop, KeyBuilder, KeyError, TrustProxy, TrustProxyWarning,
    DEFAULT_IPV6_SUBNET,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn trust(s: &str) -> TrustProxy {
    s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|n| n.parse().unwrap()).collect()
}

// ---------------------------------------------------------------- masking

#[test]
fn ip_keys() {
    let v6 = "2001:db8:abcd:12ff:1:2:3:4";
    let table: &[(&str, u8, &str)] = &[
        ("203.0.113.7", 56, "203.0.113.7"),
        ("203.0.113.7", 1, "203.0.113.7"),
        ("203.0.113.7", 128, "203.0.113.7"),
        ("::ffff:203.0.113.7", 56, "203.0.113.7"),
        ("::ffff:203.0.113.7", 128, "203.0.113.7"),
        (v6, 56, "2001:db8:abcd:1200::/56"),
        (v6, 64, "2001:db8:abcd:12ff::/64"),
        (v6, 128, "2001:db8:abcd:12ff:1:2:3:4/128"),
        (v6, 48, "2001:db8:abcd::/48"),
        (v6, 32, "2001:db8::/32"),
        (v6, 57, "2001:db8:abcd:1280::/57"),
        (v6, 1, "::/1"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1, "8000::/1"),
        ("::1", 56, "::/56"),
        ("::1", 128, "::1/128"),
        ("::", 56, "::/56"),
        ("fe80::1", 64, "fe80::/64"),
        // IPv4-compatible (not mapped) addresses are IPv6.
        ("::203.0.113.7", 56, "::/56"),
        ("::203.0.113.7", 128, "::cb00:7107/128"),
    ];
    for &(addr, prefix, expected) in table {
        assert_eq!(
            ip_key(ip(addr), prefix).unwrap(),
            expected,
            "{addr}/{prefix}"
        );
        assert_eq!(
            mask_ip(ip(addr), prefix)
                .unwrap()
                .to_string()
                .split('/')
                .next(),
            expected.split('/').next(),
            "{addr}/{prefix}"
        );
    }
    assert_eq!(DEFAULT_IPV6_SUBNET, 56);
}

#[test]
fn one_subscriber_one_key() {
    let a = ip_key(ip("2001:db8:abcd:1200::1"), DEFAULT_IPV6_SUBNET).unwrap();
    let b = ip_key(ip("2001:db8:abcd:12ff:ffff::9"), DEFAULT_IPV6_SUBNET).unwrap();
    let c = ip_key(ip("2001:db8:abcd:1300::1"), DEFAULT_IPV6_SUBNET).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn invalid_subnets_fail_for_every_address() {
    for addr in ["203.0.113.7", "::ffff:203.0.113.7", "2001:db8::1"] {
        for prefix in [0, 129, 200, 255] {
            let err = ip_key(ip(addr), prefix).unwrap_err();
            assert_eq!(err, KeyError::Ipv6SubnetOutOfRange { prefix });
            assert_eq!(mask_ip(ip(addr), prefix).unwrap_err(), err);
        }
    }
    assert_eq!(
        ip_key(ip("2001:db8::1"), 0).unwrap_err().to_string(),
        "IPv6 subnet /0 is out of range: use a prefix length from 1 to 128 (56 is the default, \
         64 keys one LAN, 128 one address)"
    );
}

#[test]
fn normalize_maps_only_mapped_addresses() {
    assert_eq!(normalize_ip(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    assert_eq!(normalize_ip(ip("10.0.0.1")), ip("10.0.0.1"));
    assert_eq!(normalize_ip(ip("::10.0.0.1")), ip("::10.0.0.1"));
    assert_eq!(normalize_ip(ip("2001:db8::1")), ip("2001:db8::1"));
}

// ---------------------------------------------------------------- parsing addresses

#[test]
fn parse_ip_accepts_socket_and_header_forms() {
    let table: &[(&str, &str)] = &[
        ("203.0.113.7", "203.0.113.7"),
        ("  203.0.113.7\t", "203.0.113.7"),
        ("203.0.113.7:8080", "203.0.113.7"),
        ("203.0.113.7:0", "203.0.113.7"),
        ("203.0.113.7:_port", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[::1]:_x-1.y", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[fe80::1%25eth0]:80", "fe80::1"),
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("[::ffff:1.2.3.4]:80", "::ffff:1.2.3.4"),
        ("2001:DB8::A", "2001:db8::a"),
    ];
    for &(input, expected) in table {
        assert_eq!(parse_ip(input), Ok(ip(expected)), "{input:?}");
    }
}

#[test]
fn parse_ip_rejects_everything_else() {
    let table = [
        "",
        "  ",
        "example.com",
        "localhost",
        "1.2.3",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3.4:",
        "1.2.3.4:123456",
        "1.2.3.4:port",
        "1.2.3.4:_",
        "1.2.3.4:80:80",
        "1.2.3.4 5",
        "[1.2.3.4]",
        "[2001:db8::1",
        "2001:db8::1]",
        "[2001:db8::1]443",
        "[2001:db8::1]:",
        "fe80::1%",
        "2001:db8::1:80:80:80:80:80",
        "unknown",
        "_hidden",
        "🦀",
    ];
    for input in table {
        let err = parse_ip(input).unwrap_err();
        assert_eq!(
            err,
            KeyError::InvalidIp {
                input: input.into()
            },
            "{input:?}"
        );
    }
    assert_eq!(
        parse_ip("example.com").unwrap_err().to_string(),
        "\"example.com\" is not an IP address: expected a form such as 203.0.113.7, \
         203.0.113.7:443, 2001:db8::1 or [2001:db8::1]:443"
    );
    let long = "x".repeat(1000);
    assert_eq!(
        parse_ip(&long).unwrap_err(),
        KeyError::InvalidIp {
            input: "x".repeat(64)
        }
    );
}

#[test]
fn hops_classify_entries() {
    let table: &[(&str, Hop)] = &[
        ("198.51.100.7", Hop::Ip(ip("198.51.100.7"))),
        (" 198.51.100.7:5555 ", Hop::Ip(ip("198.51.100.7"))),
        ("::ffff:198.51.100.7", Hop::Ip(ip("198.51.100.7"))),
        ("[2001:db8::1]:443", Hop::Ip(ip("2001:db8::1"))),
        ("unknown", Hop::Unknown),
        ("UNKNOWN", Hop::Unknown),
        ("unknown:80", Hop::Unknown),
        ("_hidden", Hop::Obfuscated),
        ("_SEVKISEK", Hop::Obfuscated),
        ("_hidden:_port", Hop::Obfuscated),
        ("", Hop::Invalid),
        ("_", Hop::Invalid),
        ("garbage", Hop::Invalid),
        ("\"198.51.100.7\"", Hop::Invalid),
        ("198.51.100.7 198.51.100.8", Hop::Invalid),
    ];
    for &(entry, expected) in table {
        assert_eq!(Hop::parse(entry), expected, "{entry:?}");
    }
}

#[test]
fn header_parsers_keep_header_order() {
    assert_eq!(parse_x_forwarded_for(""), []);
    assert_eq!(parse_x_forwarded_for("  "), []);
    assert_eq!(
        parse_x_forwarded_for("1.1.1.1, 2.2.2.2,3.3.3.3"),
        [
            Hop::Ip(ip("1.1.1.1")),
            Hop::Ip(ip("2.2.2.2")),
            Hop::Ip(ip("3.3.3.3"))
        ]
    );
    assert_eq!(
        parse_x_forwarded_for("1.1.1.1,,2.2.2.2,"),
        [
            Hop::Ip(ip("1.1.1.1")),
            Hop::Invalid,
            Hop::Ip(ip("2.2.2.2")),
            Hop::Invalid
        ]
    );
    assert_eq!(parse_forwarded(""), []);
    let table: &[(&str, &[Hop])] = &[
        ("for=192.0.2.60", &[Hop::Ip(ip("192.0.2.60"))]),
        (
            // RFC 7239 §4 and §7.4 examples
            "for=192.0.2.43, for=198.51.100.17;by=203.0.113.60;proto=http;host=example.com",
            &[Hop::Ip(ip("192.0.2.43")), Hop::Ip(ip("198.51.100.17"))],
        ),
        (
            "for=\"[2001:db8:cafe::17]:4711\"",
            &[Hop::Ip(ip("2001:db8:cafe::17"))],
        ),
        (
            "for=192.0.2.60;proto=http;by=203.0.113.43",
            &[Hop::Ip(ip("192.0.2.60"))],
        ),
        ("For=\"_gazonk\"", &[Hop::Obfuscated]),
        ("for=unknown, for=_hidden", &[Hop::Unknown, Hop::Obfuscated]),
        (
            "FOR = 192.0.2.60 ; proto=https",
            &[Hop::Ip(ip("192.0.2.60"))],
        ),
        ("for=\"\\[2001:db8::1\\]\"", &[Hop::Ip(ip("2001:db8::1"))]),
        ("proto=https;by=10.0.0.1", &[Hop::Unknown]),
        ("for=1.1.1.1;for=2.2.2.2", &[Hop::Invalid]),
        ("for", &[Hop::Invalid]),
        ("for=\"192.0.2.60", &[Hop::Invalid]),
        ("for=\"192.0.2.60\"x", &[Hop::Invalid]),
        ("for=192.0.2.60\"", &[Hop::Invalid]),
        ("for=[2001:db8::1]", &[Hop::Ip(ip("2001:db8::1"))]),
        (
            "for=\"6.6.6.6, for=198.51.100.7",
            &[Hop::Invalid, Hop::Ip(ip("198.51.100.7"))],
        ),
        (
            "for=1.1.1.1,,for=2.2.2.2",
            &[Hop::Ip(ip("1.1.1.1")), Hop::Unknown, Hop::Ip(ip("2.2.2.2"))],
        ),
    ];
    for &(value, expected) in table {
        assert_eq!(parse_forwarded(value), expected, "{value:?}");
    }
}

// ---------------------------------------------------------------- client IP

const PEER: &str = "10.0.0.1";

#[test]
fn x_forwarded_for_under_every_trust_mode() {
    let none = TrustProxy::None;
    let all = TrustProxy::All;
    let hops = TrustProxy::Hops;
    let local = trust("loopback, uniquelocal");
    let table: &[(&TrustProxy, &str, Option<&str>, &str)] = &[
        // off: the peer, whatever the header says
        (&none, PEER, Some("198.51.100.7"), PEER),
        (&none, PEER, None, PEER),
        (&none, "::ffff:10.0.0.1", Some("198.51.100.7"), PEER),
        (&hops(0), PEER, Some("198.51.100.7"), PEER),
        (&TrustProxy::Cidrs(vec![]), PEER, Some("198.51.100.7"), PEER),
        // hop counts
        (&hops(1), PEER, Some("198.51.100.7"), "198.51.100.7"),
        (
            &hops(1),
            PEER,
            Some("6.6.6.6, 198.51.100.7"),
            "198.51.100.7",
        ),
        (&hops(1), PEER, Some("6.6.6.6,198.51.100.7"), "198.51.100.7"),
        (&hops(1), PEER, None, PEER),
        (&hops(1), PEER, Some(""), PEER),
        (&hops(1), PEER, Some(" "), PEER),
        (
            &hops(2),
            PEER,
            Some("6.6.6.6, 198.51.100.7, 10.0.0.5"),
            "198.51.100.7",
        ),
        (&hops(3), PEER, Some("198.51.100.7"), "198.51.100.7"),
        (&hops(1), PEER, Some("[2001:db8::1]:443"), "2001:db8::1"),
        (&hops(1), PEER, Some(" 198.51.100.7:5555 "), "198.51.100.7"),
        (&hops(1), PEER, Some("::ffff:198.51.100.7"), "198.51.100.7"),
        (
            &hops(1),
            "::ffff:10.0.0.1",
            Some("198.51.100.7"),
            "198.51.100.7",
        ),
        // not an address: stop, the last valid address is the client
        (&hops(1), PEER, Some("garbage"), PEER),
        (&hops(1), PEER, Some("unknown"), PEER),
        (&hops(1), PEER, Some("_hidden"), PEER),
        (&hops(1), PEER, Some("198.51.100.7,"), PEER),
        (&hops(2), PEER, Some("198.51.100.7, garbage"), PEER),
        (&hops(2), PEER, Some("garbage, 10.0.0.5"), "10.0.0.5"),
        (
            &hops(1),
            PEER,
            Some("1.1.1.1,,198.51.100.7"),
            "198.51.100.7",
        ),
        (
            &hops(2),
            PEER,
            Some("1.1.1.1,,198.51.100.7"),
            "198.51.100.7",
        ),
        // all: the leftmost valid entry
        (&all, PEER, Some("6.6.6.6, 198.51.100.7"), "6.6.6.6"),
        (&all, PEER, Some("garbage, 198.51.100.7"), "198.51.100.7"),
        (&all, PEER, None, PEER),
        // networks: walk left past trusted addresses
        (
            &local,
            "127.0.0.1",
            Some("6.6.6.6, 198.51.100.7"),
            "198.51.100.7",
        ),
        (
            &local,
            "127.0.0.1",
            Some("6.6.6.6, 198.51.100.7, 10.1.2.3, 192.168.0.9"),
            "198.51.100.7",
        ),
        (
            &local,
            "::ffff:127.0.0.1",
            Some("198.51.100.7"),
            "198.51.100.7",
        ),
        (&local, "::1", Some("[2001:db8::7]"), "2001:db8::7"),
        (&local, "::1", Some("2001:db8::7, fd00::3"), "2001:db8::7"),
        (&local, "203.0.113.9", Some("198.51.100.7"), "203.0.113.9"),
        (&local, PEER, Some("10.0.0.3, 10.0.0.2"), "10.0.0.3"),
        (
            &local,
            PEER,
            Some("10.0.0.3, garbage, 10.0.0.2"),
            "10.0.0.2",
        ),
        (&local, PEER, Some("::ffff:10.0.0.3, 10.0.0.2"), "10.0.0.3"),
        (
            &trust("10.0.0.0/8"),
            PEER,
            Some("6.6.6.6, 172.16.0.1"),
            "172.16.0.1",
        ),
        (&trust("10.0.0.1"), PEER, Some("10.0.0.2"), "10.0.0.2"),
        (
            &trust("10.0.0.1"),
            "10.0.0.2",
            Some("198.51.100.7"),
            "10.0.0.2",
        ),
    ];
    for &(trust, peer, xff, expected) in table {
        assert_eq!(
            trust.client_ip(ip(peer), xff),
            ip(expected),
            "{trust} peer={peer} xff={xff:?}"
        );
    }
}

#[test]
fn forwarded_under_every_trust_mode() {
    let hops = TrustProxy::Hops;
    let table: &[(&TrustProxy, &str, Option<&str>, &str)] = &[
        (&TrustProxy::None, PEER, Some("for=198.51.100.7"), PEER),
        (&hops(1), PEER, Some("for=198.51.100.7"), "198.51.100.7"),
        (&hops(1), PEER, None, PEER),
        (
            &hops(1),
            PEER,
            Some("for=6.6.6.6, for=198.51.100.7;proto=https"),
            "198.51.100.7",
        ),
        (
            &hops(1),
            PEER,
            Some("for=\"[2001:db8:cafe::17]:4711\""),
            "2001:db8:cafe::17",
        ),
        (
            &hops(1),
            PEER,
            Some("For=\"198.51.100.7:80\""),
            "198.51.100.7",
        ),
        (&hops(1), PEER, Some("for=_hidden"), PEER),
        (&hops(1), PEER, Some("for=unknown"), PEER),
        (&hops(1), PEER, Some("proto=https"), PEER),
        (&hops(1), PEER, Some("for=1.1.1.1;for=2.2.2.2"), PEER),
        (&hops(1), PEER, Some("for=\"198.51.100.7"), PEER),
        (
            &hops(2),
            PEER,
            Some("for=\"6.6.6.6, for=198.51.100.7"),
            "198.51.100.7",
        ),
        (
            &hops(2),
            PEER,
            Some("for=6.6.6.6, for=198.51.100.7, for=10.0.0.5"),
            "198.51.100.7",
        ),
        (
            &TrustProxy::All,
            PEER,
            Some("for=6.6.6.6, for=198.51.100.7"),
            "6.6.6.6",
        ),
        (
            &TrustProxy::All,
            PEER,
            Some("for=_x, for=198.51.100.7"),
            "198.51.100.7",
        ),
        (
            &trust("loopback"),
            "127.0.0.1",
            Some("for=198.51.100.7"),
            "198.51.100.7",
        ),
        (
            &trust("loopback"),
            "198.51.100.9",
            Some("for=198.51.100.7"),
            "198.51.100.9",
        ),
    ];
    for &(trust, peer, forwarded, expected) in table {
        assert_eq!(
            trust.client_ip_forwarded(ip(peer), forwarded),
            ip(expected),
            "{trust} peer={peer} forwarded={forwarded:?}"
        );
    }
}

#[test]
fn resolve_walks_hops_nearest_first() {
    let t = trust("loopback, uniquelocal");
    let hops = [
        Hop::Ip(ip("10.0.0.7")),
        Hop::Invalid,
        Hop::Ip(ip("6.6.6.6")),
    ];
    assert_eq!(t.resolve(ip("127.0.0.1"), hops), ip("10.0.0.7"));
    assert_eq!(t.resolve(ip("127.0.0.1"), []), ip("127.0.0.1"));
    // Entries beyond the first untrusted address are never read.
    let client = ip("198.51.100.7");
    let never = std::iter::from_fn(|| -> Option<Hop> { panic!("read past the client") });
    let chain = [Hop::Ip(ip("10.0.0.2")), Hop::Ip(client)]
        .into_iter()
        .chain(never);
    assert_eq!(TrustProxy::Hops(2).resolve(ip(PEER), chain.clone()), client);
    assert_eq!(t.resolve(ip(PEER), chain), client);
    assert!(t.trusts(ip("::ffff:192.168.1.1"), 5));
    assert!(!t.trusts(ip("192.169.1.1"), 0));
    assert!(TrustProxy::Hops(2).trusts(ip("6.6.6.6"), 1));
    assert!(!TrustProxy::Hops(2).trusts(ip("6.6.6.6"), 2));
    assert!(!TrustProxy::Hops(u32::MAX).trusts(ip("6.6.6.6"), usize::MAX));
}

#[test]
fn spoofed_leftmost_entries_are_ignored_beyond_the_hop_count() {
    // The client sends its own X-Forwarded-For; our one proxy appends what it saw.
    let spoofs = [
        "1.2.3.4",
        "127.0.0.1",
        "10.0.0.1",
        "::1",
        "garbage",
        "unknown",
        "1.2.3.4, 5.6.7.8, 9.9.9.9",
        "\"",
        "[::1]:80",
    ];
    for spoof in spoofs {
        let xff = format!("{spoof}, 198.51.100.7");
        for t in [TrustProxy::Hops(1), trust("10.0.0.1"), trust("uniquelocal")] {
            assert_eq!(
                t.client_ip(ip(PEER), Some(&xff)),
                ip("198.51.100.7"),
                "{t} {xff:?}"
            );
        }
        let forwarded = format!("for={spoof}, for=198.51.100.7");
        assert_eq!(
            TrustProxy::Hops(1).client_ip_forwarded(ip(PEER), Some(&forwarded)),
            ip("198.51.100.7"),
            "{forwarded:?}"
        );
    }
    // A client reaching the app directly cannot claim anything.
    let direct = ip("198.51.100.7");
    assert_eq!(
        trust("uniquelocal").client_ip(direct, Some("10.0.0.5")),
        direct
    );
    assert_eq!(TrustProxy::None.client_ip(direct, Some("1.2.3.4")), direct);
}

// ---------------------------------------------------------------- trust proxy setting

#[test]
fn trust_proxy_parses_express_forms() {
    let table: &[(&str, TrustProxy)] = &[
        ("false", TrustProxy::None),
        (" FALSE ", TrustProxy::None),
        ("true", TrustProxy::All),
        ("True", TrustProxy::All),
        ("0", TrustProxy::Hops(0)),
        ("1", TrustProxy::Hops(1)),
        (" 2 ", TrustProxy::Hops(2)),
        ("4294967295", TrustProxy::Hops(u32::MAX)),
        (
            "loopback",
            TrustProxy::Cidrs(nets(&["127.0.0.0/8", "::1/128"])),
        ),
        (
            "LoopBack",
            TrustProxy::Cidrs(nets(&["127.0.0.0/8", "::1/128"])),
        ),
        (
            "linklocal",
            TrustProxy::Cidrs(nets(&["169.254.0.0/16", "fe80::/10"])),
        ),
        (
            "uniquelocal",
            TrustProxy::Cidrs(nets(&[
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "fc00::/7",
            ])),
        ),
        ("10.0.0.1", TrustProxy::Cidrs(nets(&["10.0.0.1/32"]))),
        ("2001:db8::1", TrustProxy::Cidrs(nets(&["2001:db8::1/128"]))),
        ("10.0.0.0/8", TrustProxy::Cidrs(nets(&["10.0.0.0/8"]))),
        ("10.1.2.3/8", TrustProxy::Cidrs(nets(&["10.0.0.0/8"]))),
        (
            "10.0.0.0/255.0.0.0",
            TrustProxy::Cidrs(nets(&["10.0.0.0/8"])),
        ),
        ("10.0.0.0 / 16", TrustProxy::Cidrs(nets(&["10.0.0.0/16"]))),
        (
            "::ffff:10.0.0.0/104",
            TrustProxy::Cidrs(nets(&["10.0.0.0/8"])),
        ),
        ("::ffff:10.0.0.1", TrustProxy::Cidrs(nets(&["10.0.0.1/32"]))),
        ("::ffff:0:0/80", TrustProxy::Cidrs(nets(&["::/80"]))),
        (
            "loopback, 10.0.0.0/8 ,fd00::/8",
            TrustProxy::Cidrs(nets(&["127.0.0.0/8", "::1/128", "10.0.0.0/8", "fd00::/8"])),
        ),
    ];
    for (input, expected) in table {
        let parsed = trust(input);
        assert_eq!(&parsed, expected, "{input:?}");
        assert_eq!(trust(&parsed.to_string()), parsed, "{input:?} round trip");
    }
    assert_eq!(TrustProxy::default(), TrustProxy::None);
    assert_eq!(TrustProxy::Cidrs(vec![]).to_string(), "false");
    assert_eq!(
        trust("loopback, 10.0.0.0/8").to_string(),
        "127.0.0.0/8, ::1/128, 10.0.0.0/8"
    );
}

#[test]
fn trust_proxy_errors_name_the_entry() {
    let table: &[(&str, &str)] = &[
        ("", ""),
        ("   ", ""),
        ("yes", "yes"),
        ("4294967296", "4294967296"),
        ("-1", "-1"),
        ("1.5", "1.5"),
        ("1, 2", "1"),
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("10.0.0.0/", "10.0.0.0/"),
        ("10.0.0.0/255.0.255.0", "10.0.0.0/255.0.255.0"),
        ("10.0.0.0/ffff::", "10.0.0.0/ffff::"),
        ("2001:db8::/129", "2001:db8::/129"),
        ("loopback,", ""),
        (",loopback", ""),
        ("loopback,,10.0.0.1", ""),
        ("loopback, private", "private"),
        ("[::1]", "[::1]"),
        ("10.0.0.1:80", "10.0.0.1:80"),
    ];
    for &(input, entry) in table {
        let err = input.parse::<TrustProxy>().unwrap_err();
        assert_eq!(
            err,
            KeyError::InvalidTrustProxy {
                entry: entry.into()
            },
            "{input:?}"
        );
    }
    let forms = "use false, true, a hop count such as 1, or a comma-separated list of IP \
                 addresses, CIDR networks such as 10.0.0.0/8, and the names loopback, \
                 linklocal, uniquelocal";
    assert_eq!(
        "loopback, private"
            .parse::<TrustProxy>()
            .unwrap_err()
            .to_string(),
        format!("invalid trust proxy entry \"private\": {forms}")
    );
    assert_eq!(
        "".parse::<TrustProxy>().unwrap_err().to_string(),
        format!("empty trust proxy setting or entry: {forms}")
    );
}

#[test]
fn warnings_like_express_rate_limit() {
    use TrustProxyWarning::*;
    let table: &[(TrustProxy, bool, Option<TrustProxyWarning>)] = &[
        (TrustProxy::None, true, Some(UnexpectedXForwardedFor)),
        (TrustProxy::None, false, None),
        (TrustProxy::Hops(0), true, Some(UnexpectedXForwardedFor)),
        (
            TrustProxy::Cidrs(vec![]),
            true,
            Some(UnexpectedXForwardedFor),
        ),
        (TrustProxy::Hops(1), true, None),
        (TrustProxy::Hops(1), false, None),
        (trust("loopback"), true, None),
        (TrustProxy::All, true, Some(PermissiveTrustProxy)),
        (TrustProxy::All, false, Some(PermissiveTrustProxy)),
    ];
    for (t, present, expected) in table {
        assert_eq!(trust_proxy_warning(t, *present), *expected, "{t} {present}");
    }
    assert_eq!(
        UnexpectedXForwardedFor.to_string(),
        "X-Forwarded-For is set but trust proxy is off: all clients behind the proxy share one \
         key; set trust proxy to the number of proxies in front of the app"
    );
    assert_eq!(UnexpectedXForwardedFor.code(), "unexpected_x_forwarded_for");
    assert_eq!(PermissiveTrustProxy.code(), "permissive_trust_proxy");
    assert!(PermissiveTrustProxy
        .message()
        .starts_with("trust proxy is true"));
}

// ---------------------------------------------------------------- composite keys

#[test]
fn composite_keys() {
    let key = KeyBuilder::new()
        .ip(ip("2001:db8:abcd:12ff::1"))
        .user("alice")
        .api_key("k=1&2")
        .route("POST /login")
        .build();
    assert_eq!(
        key,
        r"ip=2001:db8:abcd:1200::/56&user=alice&apikey=k\=1\&2&route=POST /login"
    );
    assert_eq!(KeyBuilder::new().build(), "");
    assert_eq!(KeyBuilder::new().part("", "").build(), "=");
    assert_eq!(
        KeyBuilder::new().ip(ip("::ffff:203.0.113.7")).build(),
        "ip=203.0.113.7"
    );
    assert_eq!(KeyBuilder::new().part("a\\", "\\").build(), r"a\\=\\");
    type Parts<'a> = &'a [(&'a str, &'a str)];
    let pairs: &[(Parts, Parts)] = &[
        (&[("k", "a:b"), ("k", "c")], &[("k", "a"), ("k", "b:c")]),
        (&[("k", "a&k=b")], &[("k", "a"), ("k", "b")]),
        (&[("a=b", "c")], &[("a", "b=c")]),
        (&[("k", "a\\"), ("k", "b")], &[("k", "a\\&k=b")]),
        (&[], &[("", "")]),
        (&[("ip", "1"), ("user", "2")], &[("user", "2"), ("ip", "1")]),
    ];
    for &(a, b) in pairs {
        assert_ne!(
            composite_key(a.iter().copied()),
            composite_key(b.iter().copied()),
            "{a:?} vs {b:?}"
        );
    }
}

/// Inverse of the composite encoding, for the injectivity property.
fn decode(key: &str) -> Vec<(String, String)> {
    let mut parts = Vec::new();
    if key.is_empty() {
        return parts;
    }
    let (mut name, mut value, mut in_value) = (String::new(), String::new(), false);
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let escaped = chars.next().expect("dangling escape");
                if in_value { &mut value } else { &mut name }.push(escaped);
            }
            '=' if !in_value => in_value = true,
            '&' if in_value => {
                parts.push((std::mem::take(&mut name), std::mem::take(&mut value)));
                in_value = false;
            }
            '=' | '&' => panic!("unescaped {c:?} in {key:?}"),
            c => if in_value { &mut value } else { &mut name }.push(c),
        }
    }
    assert!(in_value, "part without '=' in {key:?}");
    parts.push((name, value));
    parts
}

fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!['a', 'b', ':', '=', '&', '\\', '|', ' ', 'é']),
        0..6,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn parts() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((tricky_text(), tricky_text()), 0..4)
}

fn build(parts: &[(String, String)]) -> String {
    composite_key(parts.iter().map(|(n, v)| (n.as_str(), v.as_str())))
}

// ---------------------------------------------------------------- properties

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
        any::<[u8; 4]>().prop_map(|v4| IpAddr::V6(std::net::Ipv4Addr::from(v4).to_ipv6_mapped())),
    ]
}

/// Addresses outside 10.0.0.0/8 (stand-ins for real clients).
fn public_ip() -> impl Strategy<Value = IpAddr> {
    any_ip().prop_filter("not in 10/8", |a| {
        !"10.0.0.0/8"
            .parse::<IpNet>()
            .unwrap()
            .contains(&normalize_ip(*a))
    })
}

fn proxy_ip() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 3]>().prop_map(|[a, b, c]| IpAddr::from([10, a, b, c]))
}

fn header_entry(addr: IpAddr) -> String {
    match addr {
        IpAddr::V6(v6) => format!("[{v6}]:443"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

fn any_trust() -> impl Strategy<Value = TrustProxy> {
    prop_oneof![
        Just(TrustProxy::None),
        Just(TrustProxy::All),
        (0u32..4).prop_map(TrustProxy::Hops),
        Just(trust("loopback, uniquelocal")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn different_parts_never_build_the_same_key(a in parts(), b in parts()) {
        prop_assert_eq!(build(&a) == build(&b), a == b);
    }

    #[test]
    fn composite_keys_decode_to_their_parts(a in parts()) {
        prop_assert_eq!(decode(&build(&a)), a);
    }

    #[test]
    fn builder_equals_composite_key(a in parts()) {
        let built = a.iter().fold(KeyBuilder::new(), |b, (n, v)| b.part(n, v)).build();
        prop_assert_eq!(built, build(&a));
    }

    /// A chain of `n` trusted proxies in 10/8 in front of the app; the client prepends any
    /// junk it likes. Hops(n) and the 10/8 network both find the real client.
    #[test]
    fn spoofing_never_moves_the_client(
        client in public_ip(),
        proxies in prop::collection::vec(proxy_ip(), 1..5),
        junk in prop::collection::vec(any::<String>(), 0..4),
    ) {
        let peer = *proxies.last().unwrap();
        let mut entries: Vec<String> = junk.clone();
        entries.push(header_entry(client));
        entries.extend(proxies[..proxies.len() - 1].iter().map(|p| header_entry(*p)));
        let xff = entries.join(", ");
        let hops = TrustProxy::Hops(proxies.len() as u32);
        let expected = normalize_ip(client);
        prop_assert_eq!(hops.client_ip(peer, Some(&xff)), expected);
        prop_assert_eq!(trust("10.0.0.0/8").client_ip(peer, Some(&xff)), expected);

        let mut elements: Vec<String> = junk.iter().map(|j| format!("for={j}")).collect();
        elements.push(format!("for=\"{}\"", header_entry(client)));
        elements.extend(proxies[..proxies.len() - 1].iter().map(|p| format!("for=\"{}\";proto=https", header_entry(*p))));
        let forwarded = elements.join(", ");
        prop_assert_eq!(hops.client_ip_forwarded(peer, Some(&forwarded)), expected);
        prop_assert_eq!(trust("10.0.0.0/8").client_ip_forwarded(peer, Some(&forwarded)), expected);
    }

    /// Whatever the header, the answer is the peer or an address the header holds.
    #[test]
    fn arbitrary_headers_never_panic(t in any_trust(), peer in any_ip(), header in any::<String>()) {
        let xff_hops = parse_x_forwarded_for(&header);
        let fwd_hops = parse_forwarded(&header);
        for (got, hops) in [
            (t.client_ip(peer, Some(&header)), xff_hops),
            (t.client_ip_forwarded(peer, Some(&header)), fwd_hops),
        ] {
            prop_assert!(got == normalize_ip(peer) || hops.contains(&Hop::Ip(got)));
        }
    }

    #[test]
    fn grammar_fragments_never_panic(
        t in any_trust(),
        parts in prop::collection::vec(prop::sample::select(vec![
            "for", "=", "\"", "\\", ",", ";", " ", "[", "]", ":", "::1", "10.0.0.1", "_x",
            "unknown", "198.51.100.7", "2001:db8::1", "%eth0", "80", "é",
        ]), 0..16),
    ) {
        let header = parts.concat();
        let peer = ip("127.0.0.1");
        let _ = t.client_ip(peer, Some(&header));
        let _ = t.client_ip_forwarded(peer, Some(&header));
        let _ = parse_ip(&header);
        let _ = header.parse::<TrustProxy>();
    }

    #[test]
    fn parsed_trust_settings_round_trip(s in "[a-z0-9.:/, ]{0,30}") {
        if let Ok(t) = s.parse::<TrustProxy>() {
            prop_assert_eq!(t.to_string().parse::<TrustProxy>(), Ok(t));
        }
    }

    #[test]
    fn ip_keys_are_total_for_valid_prefixes(addr in any_ip(), prefix in 1u8..=128) {
        let key = ip_key(addr, prefix).unwrap();
        match normalize_ip(addr) {
            IpAddr::V4(v4) => prop_assert_eq!(key, v4.to_string()),
            IpAddr::V6(_) => {
                let net: IpNet = key.parse().unwrap();
                prop_assert_eq!(net.prefix_len(), prefix);
                prop_assert!(net.contains(&addr));
                prop_assert_eq!(net, net.trunc());
            }
        }
    }

    #[test]
    fn parse_ip_reads_what_display_writes(addr in any_ip(), port in any::<u16>()) {
        prop_assert_eq!(parse_ip(&addr.to_string()), Ok(addr));
        let with_port = std::net::SocketAddr::new(addr, port).to_string();
        prop_assert_eq!(parse_ip(&with_port), Ok(addr));
    }

    #[test]
    fn parse_ip_never_panics(s in any::<String>()) {
        let _ = parse_ip(&s);
        let _ = Hop::parse(&s);
        let _ = s.parse::<TrustProxy>();
    }
}
