//! Who the client is, when no token says so: its address.
//!
//! The peer's address, unless the peer is a trusted proxy (one of
//! `rate_limit.trusted_proxies`): then the hops its `Forwarded` (RFC 7239)
//! or, without one, `X-Forwarded-For` header lists are walked from the
//! right — the hop each proxy appended — for as long as the address reached
//! is itself trusted. The first untrusted address is the client. Anything a
//! client writes into these headers itself sits left of the first hop a
//! trusted proxy added, so it is never reached; an untrusted peer's headers
//! are not read at all.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// The client's address as far as the trusted proxies vouch for it; `None`
/// without a peer address (a request that did not come over a socket).
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let mut current = peer?.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&ip));
    if !is_trusted(current) {
        return Some(current);
    }
    for hop in forwarded_hops(headers).into_iter().rev() {
        if !is_trusted(current) {
            break;
        }
        match hop {
            Some(ip) => current = ip.to_canonical(),
            // An obfuscated or unknown hop: the proxy that wrote it is as
            // far as anyone vouches.
            None => break,
        }
    }
    Some(current)
}

/// The text a client is counted under: an IPv4 address, or an IPv6
/// address's /64 (the smallest block a subscriber is usually given, so one
/// client cannot rotate through addresses of its own).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => IpNet::V6(
            ipnet::Ipv6Net::new(v6, 64)
                .map_or_else(|_| ipnet::Ipv6Net::from(v6), |net| net.trunc()),
        )
        .to_string(),
    }
}

/// The forwarded-for hops, left (the original client) to right (the last
/// proxy's peer), from `Forwarded` if present, else `X-Forwarded-For`,
/// every header line in order. `None` for a hop that is not an address.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let lines = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    let forwarded = lines("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|line| line.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| parse_node(value.trim().trim_matches('"')))
            })
            .collect();
    }
    lines("x-forwarded-for")
        .iter()
        .flat_map(|line| line.split(','))
        .map(|hop| parse_node(hop.trim()))
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]:8080`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    fn trusted() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap()]
    }

    #[test]
    fn an_untrusted_peers_forwarding_headers_are_ignored() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            client_address(Some(ip("203.0.113.9")), &h, &trusted()),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_hops_are_skipped() {
        // The client wrote 6.6.6.6 itself; the edge proxy appended its peer.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.2.3")]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, &trusted()),
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_takes_ports_and_brackets() {
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            (
                "forwarded",
                "for=192.0.2.60;proto=https, for=\"[2001:db8:cafe::17]:4711\"",
            ),
        ]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, &trusted()),
            Some(ip("2001:db8:cafe::17"))
        );
        let h = headers(&[("forwarded", "for=\"192.0.2.60:8080\"")]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, &trusted()),
            Some(ip("192.0.2.60"))
        );
    }

    #[test]
    fn an_unknown_hop_stops_at_the_proxy_that_wrote_it() {
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, &trusted()),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn mapped_ipv4_peers_are_matched_as_ipv4() {
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            client_address(Some(ip("::ffff:10.0.0.1")), &h, &trusted()),
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(address_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(address_key(ip("192.0.2.1")), "192.0.2.1");
    }
}
