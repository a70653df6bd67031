//! `kafka.bootstrap_servers`: a comma-separated list of `host:port`, checked at start-up.
//!
//! # Ground rules
//!
//! * Each entry is `host:port`, blanks around it ignored: the host an IPv4 address, an
//!   IPv6 address in brackets (`[::1]:9092`), or a host name; the port a whole number
//!   from 1 to 65535. librdkafka would take a missing port as 9092 and a `proto://`
//!   prefix; both are refused here, so that what is written is what is dialled.
//! * A host name is RFC 1123's: dot-separated labels of letters, digits and `-`, none
//!   empty, none longer than 63 or starting or ending with `-`, 253 characters in all (a
//!   final dot allowed). `_` is allowed too: resolvers accept it and Docker Compose
//!   service names (`my_kafka`) use it.
//! * The result is the entries trimmed and joined with `,`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::Problem;

const PLACE: &str = "kafka.bootstrap_servers";
const EXAMPLE: &str =
    "write host:port entries separated by commas, e.g. \"broker-1:9092,broker-2:9092\"";

/// Checks the list and returns it normalised.
pub(super) fn bootstrap_servers(text: &str) -> Result<String, Problem> {
    let mut entries = Vec::new();
    for entry in text.split(',') {
        let entry = entry.trim();
        broker(entry).map_err(|why| (PLACE.to_string(), format!("{why}; {EXAMPLE}")))?;
        entries.push(entry);
    }
    Ok(entries.join(","))
}

/// One `host:port`; the error says what is wrong with it.
fn broker(entry: &str) -> Result<(), String> {
    if entry.is_empty() {
        return Err("has an empty entry".into());
    }
    if let Some(c) = entry.chars().find(|c| *c == ';' || c.is_whitespace()) {
        return Err(format!(
            "`{entry}` holds {c:?}; separate entries with `,` only"
        ));
    }
    if let Some((scheme, _)) = entry.split_once("://") {
        return Err(format!("`{entry}` starts with `{scheme}://`; drop it"));
    }
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (address, port) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{entry}` opens `[` without closing it"))?;
        address
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("`{address}` in `{entry}` is not an IPv6 address"))?;
        let port = port
            .strip_prefix(':')
            .ok_or_else(|| format!("`{entry}` has no `:port` after the address"))?;
        (None, port)
    } else {
        let (host, port) = entry
            .rsplit_once(':')
            .ok_or_else(|| format!("`{entry}` has no port"))?;
        if host.contains(':') {
            return Err(format!(
                "`{entry}`: write an IPv6 address in brackets, e.g. `[::1]:9092`"
            ));
        }
        (Some(host), port)
    };
    let valid_port =
        port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p >= 1);
    if !valid_port {
        return Err(format!(
            "`{port}` in `{entry}` is not a port (a whole number from 1 to 65535)"
        ));
    }
    match host {
        Some(host) if host.parse::<Ipv4Addr>().is_err() && !is_host_name(host) => Err(format!(
            "`{host}` in `{entry}` is not a host name or an IPv4 address"
        )),
        _ => Ok(()),
    }
}

fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (1..=253).contains(&name.len()) && name.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_lists_are_accepted_and_normalised() {
        for (given, kept) in [
            ("localhost:9092", "localhost:9092"),
            (
                "broker-1:9092, broker-2:9092",
                "broker-1:9092,broker-2:9092",
            ),
            ("127.0.0.1:29092", "127.0.0.1:29092"),
            ("[::1]:9092,[fe80::1]:1", "[::1]:9092,[fe80::1]:1"),
            ("kafka.example.com.:65535", "kafka.example.com.:65535"),
            ("my_kafka:9092", "my_kafka:9092"),
        ] {
            assert_eq!(bootstrap_servers(given), Ok(kept.to_string()), "{given}");
        }
    }

    #[test]
    fn anything_else_is_refused_naming_the_setting_and_the_fix() {
        for (given, why) in [
            (
                "127.0.0.1:notaport",
                "`notaport` in `127.0.0.1:notaport` is not a port",
            ),
            (
                "127.0.0.1:99999",
                "`99999` in `127.0.0.1:99999` is not a port",
            ),
            ("127.0.0.1:0", "is not a port"),
            ("127.0.0.1:+80", "is not a port"),
            ("kafka://127.0.0.1:29092", "starts with `kafka://`; drop it"),
            (",,; ;", "has an empty entry"),
            (
                "a:1;b:2",
                "`a:1;b:2` holds ';'; separate entries with `,` only",
            ),
            ("a:1 b:2", "holds ' '"),
            ("", "has an empty entry"),
            ("broker", "`broker` has no port"),
            ("::1:9092", "in brackets"),
            ("[::1:9092", "without closing"),
            ("[::g]:9092", "not an IPv6 address"),
            ("-broker:9092", "not a host name"),
            ("bro/ker:9092", "not a host name"),
            ("a..b:9092", "not a host name"),
        ] {
            let (place, problem) = bootstrap_servers(given).expect_err(given);
            assert_eq!(place, "kafka.bootstrap_servers");
            assert!(
                problem.contains(why) && problem.contains("host:port"),
                "{given}: {problem}"
            );
        }
    }
}
