//! Who is calling: client IP and user agent.
//!
//! The client IP is the socket peer. `X-Forwarded-For` is believed only when
//! the peer is a configured trusted proxy; then the right-most address that is
//! not itself a trusted proxy is the client (addresses further left were
//! written by the client and could be anything).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use super::context::RequestContext;
use crate::state::AppState;

/// Request metadata recorded with audit events and sessions.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    /// At most 256 characters.
    pub user_agent: Option<String>,
    pub request_id: String,
}

impl ClientInfo {
    pub fn ip_string(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }

    /// The rate-limit subject for per-IP limits.
    pub fn ip_key(&self) -> String {
        self.ip
            .map_or_else(|| "ip:unknown".to_owned(), |ip| format!("ip:{ip}"))
    }
}

/// The node of a `Forwarded` `for=` value, unquoted. `ip:port` and `[v6]:port`
/// are left for the socket-address parse below; a bare `[v6]` loses its brackets.
fn forwarded_node(value: &str) -> String {
    let node = value.trim().trim_matches('"');
    match node.strip_prefix('[').and_then(|v6| v6.strip_suffix(']')) {
        Some(bare) => bare.to_owned(),
        None => node.to_owned(),
    }
}

/// The client address for a peer and its headers.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // RFC 7239 `Forwarded: for=…` when present, else `X-Forwarded-For`.
    let standard: Vec<String> = headers
        .get_all(axum::http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.eq_ignore_ascii_case("for")
                    .then(|| forwarded_node(value))
            })
        })
        .collect();
    let legacy: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| hop.trim().to_owned())
        .collect();
    let forwarded = if standard.is_empty() {
        legacy
    } else {
        standard
    };
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        match hop
            .parse::<IpAddr>()
            .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // An unparseable hop ends the trustworthy part of the chain.
            Err(_) => break,
        }
    }
    client
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| {
                client_ip(peer.ip(), &parts.headers, &state.config.trusted_proxies)
            });
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect());
        let request_id = parts
            .extensions
            .get::<RequestContext>()
            .map(|c| c.request_id.to_string())
            .unwrap_or_default();
        Ok(ClientInfo {
            ip,
            user_agent,
            request_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let peer: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(client_ip(peer, &headers("1.2.3.4"), &[]), peer);
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        assert_eq!(client_ip(peer, &headers("1.2.3.4"), &trusted), peer);
    }

    #[test]
    fn the_standard_forwarded_header_is_honoured_too() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "forwarded",
            "for=6.6.6.6, for=\"198.51.100.4:4711\";proto=https, for=10.0.0.9"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            client_ip(peer, &h, &trusted),
            "198.51.100.4".parse::<IpAddr>().unwrap()
        );
        let mut h = HeaderMap::new();
        h.insert("forwarded", "for=\"[2001:db8::1]:443\"".parse().unwrap());
        assert_eq!(
            client_ip(peer, &h, &trusted),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        // Untrusted peers change nothing.
        assert_eq!(
            client_ip("203.0.113.7".parse().unwrap(), &h, &trusted),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn trusted_proxies_yield_the_rightmost_untrusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        // The client claims 6.6.6.6; the proxy appended the real client 198.51.100.4.
        assert_eq!(
            client_ip(peer, &headers("6.6.6.6, 198.51.100.4, 10.0.0.9"), &trusted),
            "198.51.100.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(peer, &headers("garbage, 198.51.100.4"), &trusted),
            "198.51.100.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer);
    }
}
