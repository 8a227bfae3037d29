//! Published ports in Compose short syntax: `8080:80`, `127.0.0.1:5000-5010:5000-5010`,
//! `[::1]:6001:6001/udp`, plus the port number and protocol parsers the long syntax uses.
//!
//! Pure functions from text to [`Port`]s, or to a one-line message that says what is wrong
//! and what a valid value looks like; the converter sets each port's `loc` and adds the
//! `file:line:col` position to messages. The grammar is docker/go-connections
//! `nat.ParsePortSpec` (what Compose uses), made stricter where berth needs it: ports are
//! 1-65535, every container port gets its own host port, and ranges are capped.

use std::net::IpAddr;

use crate::desired::model::{Port, Protocol};

/// The most ports one entry may expand to.
pub const MAX_RANGE: usize = 1000;

/// What a valid short-syntax port looks like, for messages.
const PORT_HINT: &str = "use e.g. 8080:80, 127.0.0.1:8080:80/udp or 9090-9091:8080-8081";

/// Parses one short-syntax `ports:` entry into one [`Port`] per container port.
///
/// Forms: `CONTAINER`, `HOST:CONTAINER`, `IP:HOST:CONTAINER`, `IP::CONTAINER`, each with an
/// optional `/tcp`, `/udp` or `/sctp`. A port may be a range (`5000-5010`); a host range
/// must be as long as the container range. The IP is IPv4 or IPv6, bracketed or not
/// (`[::1]:6001:6001`, `::1:6001:6001`). Without a host port the container port is
/// published on an ephemeral host port (`published: None`). `loc` is left at its default.
pub fn parse_port_short(s: &str) -> Result<Vec<Port>, String> {
    let fail = |why: String| format!("invalid port {s:?}: {why}; {PORT_HINT}");
    let (ip, host, container) = split_parts(s);
    let (container, protocol) = match container.split_once('/') {
        Some((port, proto)) => match parse_protocol(proto) {
            Ok(protocol) => (port, protocol),
            Err(_) => return Err(fail(format!("protocol {proto:?} is not tcp, udp or sctp"))),
        },
        None => (container, Protocol::Tcp),
    };
    let host_ip = match ip {
        "" => None,
        ip => Some(parse_host_ip(ip).map_err(fail)?),
    };
    let (first, last) = parse_range(container, "container").map_err(fail)?;
    let count = usize::from(last - first) + 1;
    let host_first = match host {
        "" => None,
        host => {
            let (host_first, host_last) = parse_range(host, "host").map_err(fail)?;
            let host_count = usize::from(host_last - host_first) + 1;
            if count == 1 && host_count > 1 {
                // compose: the engine binds one free port of the host range.
                return Ok(vec![Port {
                    host_ip,
                    published: Some(host_first),
                    published_end: Some(host_last),
                    target: first,
                    protocol,
                    loc: Default::default(),
                }]);
            }
            if host_count != count {
                return Err(fail(if host_count == 1 {
                    format!(
                        "host port {host} is a single port but container range {container} \
                         has {count}; give a host range of the same length or no host port"
                    )
                } else {
                    format!(
                        "host range {host} has {host_count} ports but container range \
                         {container} has {count}; give both the same length"
                    )
                }));
            }
            Some(host_first)
        }
    };
    if count > MAX_RANGE {
        return Err(fail(format!(
            "range {container} has {count} ports, more than the {MAX_RANGE} berth allows in \
             one entry"
        )));
    }
    Ok((0..=last - first)
        .map(|i| Port {
            host_ip: host_ip.clone(),
            published: host_first.map(|h| h + i),
            published_end: None,
            target: first + i,
            protocol,
            loc: Default::default(),
        })
        .collect())
}

/// Parses a port number, 1 to 65535, written in decimal digits.
pub fn parse_port_number(s: &str) -> Result<u16, String> {
    number(s).ok_or_else(|| format!("invalid port number {s:?}: use a number from 1 to 65535"))
}

/// Parses a protocol: `tcp`, `udp` or `sctp` (case-insensitive, as Docker lowercases it).
pub fn parse_protocol(s: &str) -> Result<Protocol, String> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Ok(Protocol::Sctp),
        _ => Err(format!("invalid protocol {s:?}: use tcp, udp or sctp")),
    }
}

/// Splits at `:` into (IP, host port, container port) the way `nat.ParsePortSpec` does:
/// the last two fields are the ports and everything before them is the IP, so unbracketed
/// IPv6 addresses work.
fn split_parts(s: &str) -> (&str, &str, &str) {
    match s.rsplit_once(':') {
        None => ("", "", s),
        Some((front, container)) => match front.rsplit_once(':') {
            None => ("", front, container),
            Some((ip, host)) => (ip, host, container),
        },
    }
}

/// A host IP, brackets stripped, in canonical form (`::1`, `127.0.0.1`).
fn parse_host_ip(ip: &str) -> Result<String, String> {
    let bare = match ip.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']'),
        None => Some(ip),
    };
    bare.and_then(|b| b.parse::<IpAddr>().ok())
        .map(|addr| addr.to_string())
        .ok_or_else(|| format!("host IP {ip:?} is not an IPv4 or IPv6 address"))
}

/// `N` or `N-M` with `N <= M`, each 1 to 65535; `what` names the side for messages.
fn parse_range(s: &str, what: &str) -> Result<(u16, u16), String> {
    let bad =
        || format!("{what} port {s:?} is not a number from 1 to 65535 or a range like 8000-8010");
    if s.is_empty() {
        return Err(format!("{what} port is missing"));
    }
    let (first, last) = match s.split_once('-') {
        Some((a, b)) => (number(a).ok_or_else(bad)?, number(b).ok_or_else(bad)?),
        None => {
            let n = number(s).ok_or_else(bad)?;
            (n, n)
        }
    };
    if last < first {
        return Err(format!(
            "{what} range {s} ends before it starts; write it low-high"
        ));
    }
    Ok((first, last))
}

/// Decimal digits only (no sign, no spaces), 1 to 65535.
fn number(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Leading zeros are allowed (as Go's ParseUint does); skip them so that long runs of
    // zeros do not overflow.
    let digits = s.trim_start_matches('0');
    if digits.len() > 5 {
        return None;
    }
    digits
        .parse::<u32>()
        .ok()
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&n| n != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A port as text: `[ip]:published->target/proto`, `published` `*` when ephemeral.
    fn show(ports: &[Port]) -> Vec<String> {
        ports
            .iter()
            .map(|p| {
                let proto = match p.protocol {
                    Protocol::Tcp => "tcp",
                    Protocol::Udp => "udp",
                    Protocol::Sctp => "sctp",
                };
                let published = p.published.map_or("*".to_owned(), |h| h.to_string());
                let ip = p.host_ip.as_deref().unwrap_or("");
                format!("[{ip}]:{published}->{}/{proto}", p.target)
            })
            .collect()
    }

    #[test]
    fn short_syntax_forms_expand_to_one_port_each() {
        let cases: &[(&str, &[&str])] = &[
            ("3000", &["[]:*->3000/tcp"]),
            (
                "3000-3002",
                &["[]:*->3000/tcp", "[]:*->3001/tcp", "[]:*->3002/tcp"],
            ),
            ("8000:8000", &["[]:8000->8000/tcp"]),
            (
                "9090-9091:8080-8081",
                &["[]:9090->8080/tcp", "[]:9091->8081/tcp"],
            ),
            ("49100:22", &["[]:49100->22/tcp"]),
            ("127.0.0.1:8001:8001", &["[127.0.0.1]:8001->8001/tcp"]),
            (
                "127.0.0.1:5000-5001:5000-5001",
                &["[127.0.0.1]:5000->5000/tcp", "[127.0.0.1]:5001->5001/tcp"],
            ),
            ("127.0.0.1::5000", &["[127.0.0.1]:*->5000/tcp"]),
            ("6060:6060/udp", &["[]:6060->6060/udp"]),
            ("6060:6060/UDP", &["[]:6060->6060/udp"]),
            ("38412:38412/sctp", &["[]:38412->38412/sctp"]),
            ("80/tcp", &["[]:*->80/tcp"]),
            ("[::1]:6001:6001", &["[::1]:6001->6001/tcp"]),
            ("::1:6001:6001", &["[::1]:6001->6001/tcp"]),
            ("[::1]::6001/udp", &["[::1]:*->6001/udp"]),
            ("0:0:0:0:0:0:0:1:80:80", &["[::1]:80->80/tcp"]),
            ("::80", &["[]:*->80/tcp"]),
            ("0.0.0.0:80:80", &["[0.0.0.0]:80->80/tcp"]),
            ("65535:1", &["[]:65535->1/tcp"]),
            ("0080:080", &["[]:80->80/tcp"]),
        ];
        for (input, expected) in cases {
            let ports = parse_port_short(input).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(show(&ports), *expected, "input {input:?}");
            assert!(ports.iter().all(|p| p.loc == Default::default()));
        }
    }

    #[test]
    fn a_thousand_ports_is_the_limit() {
        assert_eq!(parse_port_short("10000-10999").map(|p| p.len()), Ok(1000));
        let err = parse_port_short("10000-11000").unwrap_err();
        assert!(err.contains("1001 ports, more than the 1000"), "{err}");
    }

    #[test]
    fn a_host_range_onto_one_container_port_lets_the_engine_pick() {
        let p = parse_port_short("127.0.0.1:8000-8010:80/udp").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(
            (
                p[0].published,
                p[0].published_end,
                p[0].target,
                p[0].protocol
            ),
            (Some(8000), Some(8010), 80, Protocol::Udp)
        );
    }

    #[test]
    fn bad_ports_say_what_is_wrong_and_what_fits() {
        let cases: &[(&str, &str)] = &[
            ("", "container port is missing"),
            ("80:", "container port is missing"),
            ("/tcp", "container port is missing"),
            ("0", r#"container port "0" is not a number from 1 to 65535"#),
            ("65536", r#"container port "65536""#),
            ("0:80", r#"host port "0""#),
            ("http", r#"container port "http""#),
            ("+80", r#"container port "+80""#),
            (" 80", r#"container port " 80""#),
            ("80-", r#"container port "80-""#),
            ("-80", r#"container port "-80""#),
            ("80-81-82", r#"container port "80-81-82""#),
            ("81-80", "container range 81-80 ends before it starts"),
            (
                "9091-9090:80-81",
                "host range 9091-9090 ends before it starts",
            ),
            ("80/", r#"protocol "" is not tcp, udp or sctp"#),
            ("80/icmp", r#"protocol "icmp" is not tcp, udp or sctp"#),
            ("80/tcp/udp", r#"protocol "tcp/udp" is not"#),
            (
                "80:8000-8001",
                "host port 80 is a single port but container range 8000-8001 has 2; give a host \
                 range of the same length or no host port",
            ),
            (
                "9090-9092:8080-8081",
                "host range 9090-9092 has 3 ports but container range 8080-8081 has 2",
            ),
            (
                "localhost:80:80",
                r#"host IP "localhost" is not an IPv4 or IPv6 address"#,
            ),
            ("[::1:80:80", r#"host IP "[::1""#),
            ("[127.0.0.1:80:80", r#"host IP "[127.0.0.1""#),
            ("1.2.3.4.5:80:80", r#"host IP "1.2.3.4.5""#),
            ("fe80::1%eth0:80:80", r#"host IP "fe80::1%eth0""#),
            ("a:b:c", r#"host IP "a""#),
            ("1-65535", "65535 ports, more than the 1000"),
        ];
        for (input, why) in cases {
            let err = parse_port_short(input).expect_err(input);
            assert!(err.contains(why), "{input:?}: {err}");
            assert!(
                err.starts_with(&format!("invalid port {input:?}: ")),
                "{err}"
            );
            assert!(err.ends_with(PORT_HINT), "{err}");
        }
    }

    #[test]
    fn port_numbers_are_one_to_65535() {
        assert_eq!(parse_port_number("1"), Ok(1));
        assert_eq!(parse_port_number("65535"), Ok(65535));
        assert_eq!(parse_port_number("000000000000000443"), Ok(443));
        for bad in [
            "",
            "0",
            "00",
            "65536",
            "99999999999999999999",
            "+1",
            "-1",
            "1.0",
            "８０",
        ] {
            assert_eq!(
                parse_port_number(bad),
                Err(format!(
                    "invalid port number {bad:?}: use a number from 1 to 65535"
                ))
            );
        }
    }

    #[test]
    fn protocols_are_tcp_udp_or_sctp() {
        assert_eq!(parse_protocol("tcp"), Ok(Protocol::Tcp));
        assert_eq!(parse_protocol("UDP"), Ok(Protocol::Udp));
        assert_eq!(parse_protocol("sctp"), Ok(Protocol::Sctp));
        assert_eq!(
            parse_protocol("icmp"),
            Err(r#"invalid protocol "icmp": use tcp, udp or sctp"#.to_owned())
        );
        assert!(parse_protocol("").is_err());
        assert!(parse_protocol("tcp ").is_err());
    }

    proptest! {
        #[test]
        fn parse_port_short_never_panics(s in "\\PC*") {
            let _ = parse_port_short(&s);
        }

        #[test]
        fn parse_port_short_never_panics_on_near_misses(s in "[0-9a-f:.\\[\\]/-]{0,30}(tcp|udp|sctp|)") {
            if let Ok(ports) = parse_port_short(&s) {
                prop_assert!(!ports.is_empty() && ports.len() <= MAX_RANGE);
                prop_assert!(ports.iter().all(|p| p.target != 0 && p.published != Some(0)));
            }
        }

        #[test]
        fn parse_port_number_never_panics(s in "\\PC*") {
            let _ = parse_port_number(&s);
        }

        #[test]
        fn parse_protocol_never_panics(s in "\\PC*") {
            let _ = parse_protocol(&s);
        }

        #[test]
        fn ranges_map_port_to_port(host in 1u16..=60000, target in 1u16..=60000, len in 0u16..=999) {
            let spec = format!("{host}-{}:{target}-{}", host + len, target + len);
            let ports = parse_port_short(&spec).unwrap();
            prop_assert_eq!(ports.len(), usize::from(len) + 1);
            for (i, p) in (0u16..).zip(&ports) {
                prop_assert_eq!(p.published, Some(host + i));
                prop_assert_eq!(p.target, target + i);
            }
        }
    }
}
