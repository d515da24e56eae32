//! The client's address behind reverse proxies (`EAP_TRUSTED_PROXIES`).
//!
//! A `Forwarded` or `X-Forwarded-For` header is the caller's to write, so it is read only when
//! the socket peer is a proxy the operator trusts. Each proxy appends the address it received
//! the request from, so the list is read from the right: the first address that is not itself
//! a trusted proxy is the client (anything left of it was written by that client and may be
//! forged). With no trusted proxies configured the headers are never read.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

/// The configured proxies, as app data for the request-context extractor.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub std::sync::Arc<Vec<IpNet>>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request that reached us from `peer`. `Forwarded` (RFC 7239)
    /// is read when present, otherwise `X-Forwarded-For`. An entry that is not an address
    /// (`unknown`, an obfuscated `_name`) ends the walk at the nearest trusted hop, so text
    /// never chooses the address a request is counted under.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut nearest = peer;
        for hop in hops(headers).into_iter().rev() {
            match hop {
                Some(ip) if self.trusts(ip) => nearest = ip,
                Some(ip) => return ip,
                None => break,
            }
        }
        nearest
    }
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`, as a dual-stack socket reports it) is
/// the IPv4 address, so `EAP_TRUSTED_PROXIES=10.0.0.0/8` matches it.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The forwarding chain, leftmost (furthest) first; `None` for an entry that is not an address.
fn hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|line| line.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| address(v.trim().trim_matches('"')))
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(|entry| address(entry.trim()))
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn address(s: &str) -> Option<IpAddr> {
    let bracketed = s.strip_prefix('[').and_then(|rest| rest.split(']').next());
    bracketed
        .unwrap_or(s)
        .parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies(std::sync::Arc::new(
            nets.iter().map(|n| n.parse().unwrap()).collect(),
        ))
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            proxies(&[]).client_address(ip("198.51.100.1"), &h),
            ip("198.51.100.1")
        );
        assert_eq!(
            proxies(&["10.0.0.0/8"]).client_address(ip("198.51.100.1"), &h),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.5")]);
        assert_eq!(p.client_address(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        let two_lines = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9:5000"),
        ]);
        assert_eq!(
            p.client_address(ip("::ffff:10.0.0.1"), &two_lines),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_is_preferred_and_read_per_rfc_7239() {
        let p = proxies(&["10.0.0.0/8", "fd00::/8"]);
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            (
                "forwarded",
                "for=192.0.2.60;proto=http, For=\"[2001:db8:cafe::17]:4711\";by=fd00::1",
            ),
        ]);
        assert_eq!(p.client_address(ip("fd00::2"), &h), ip("2001:db8:cafe::17"));
    }

    #[test]
    fn text_that_is_not_an_address_never_chooses_the_address() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 10.0.0.7")]);
        assert_eq!(p.client_address(ip("10.0.0.1"), &h), ip("10.0.0.7"));
        let empty = headers(&[]);
        assert_eq!(p.client_address(ip("10.0.0.1"), &empty), ip("10.0.0.1"));
    }
}
