//! Who is calling: client IP and user agent.
//!
//! The client IP is the socket peer. Only when the peer is a configured
//! trusted proxy is one forwarding header believed: the one named by
//! `CARREL_CLIENT_IP_HEADER` (`X-Forwarded-For` by default, `Forwarded` or
//! `X-Real-IP`); every other forwarding header is ignored, so a client cannot
//! pick its address by sending the one the proxy does not overwrite. Of that
//! header the right-most address that is not itself a trusted proxy is the
//! client (addresses further left were written by the client and could be
//! anything). Rate limits key IPv6 clients by their /64, the block one
//! subscriber usually holds.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use super::context::RequestContext;
use crate::config::ClientIpHeader;
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
        rate_key(self.ip)
    }
}

/// The rate-limit subject of a client address: `ip:<IPv4>`, or `ip:<prefix>/64`
/// for IPv6 (an IPv4-mapped IPv6 address counts as its IPv4 address).
pub fn rate_key(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        None => "ip:unknown".to_owned(),
        Some(IpAddr::V4(v4)) => format!("ip:{v4}"),
        Some(IpAddr::V6(v6)) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("ip:{}/64", Ipv6Addr::from(prefix))
        }
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

/// The hops listed by the believed header, left (client side) to right.
fn hops(headers: &HeaderMap, header: ClientIpHeader) -> Vec<String> {
    let values = headers
        .get_all(header.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok());
    match header {
        ClientIpHeader::Forwarded => values
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| forwarded_node(value))
                })
            })
            .collect(),
        ClientIpHeader::XForwardedFor | ClientIpHeader::XRealIp => values
            .flat_map(|v| v.split(','))
            .map(|hop| hop.trim().to_owned())
            .collect(),
    }
}

/// The client address for a peer and its headers.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ClientIpHeader,
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| {
        let ip = ip.to_canonical();
        trusted.iter().any(|net| net.contains(&ip))
    };
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in hops(headers, header).iter().rev() {
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

/// The client address of a request (`None` without connection info).
pub fn request_client_ip(
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    state: &AppState,
) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| {
            client_ip(
                peer.ip(),
                headers,
                &state.config.trusted_proxies,
                state.config.client_ip_header,
            )
        })
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = request_client_ip(&parts.extensions, &parts.headers, state);
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

    const XFF: ClientIpHeader = ClientIpHeader::XForwardedFor;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap()]
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let peer = ip("203.0.113.7");
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(client_ip(peer, &h, &[], XFF), peer);
        assert_eq!(client_ip(peer, &h, &proxies(), XFF), peer);
    }

    #[test]
    fn trusted_proxies_yield_the_rightmost_untrusted_hop() {
        let peer = ip("10.0.0.2");
        // The client claims 6.6.6.6; the proxy appended the real client 198.51.100.4.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.4, 10.0.0.9")]);
        assert_eq!(client_ip(peer, &h, &proxies(), XFF), ip("198.51.100.4"));
        let h = headers(&[("x-forwarded-for", "garbage, 198.51.100.4")]);
        assert_eq!(client_ip(peer, &h, &proxies(), XFF), ip("198.51.100.4"));
        // Several header lines form one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.4"),
        ]);
        assert_eq!(client_ip(peer, &h, &proxies(), XFF), ip("198.51.100.4"));
        assert_eq!(client_ip(peer, &HeaderMap::new(), &proxies(), XFF), peer);
    }

    #[test]
    fn only_the_configured_header_is_believed() {
        let peer = ip("10.0.0.2");
        // The proxy sets X-Forwarded-For; the client adds a Forwarded of its choosing.
        let h = headers(&[
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "7.7.7.7"),
            ("x-forwarded-for", "198.51.100.4"),
        ]);
        assert_eq!(client_ip(peer, &h, &proxies(), XFF), ip("198.51.100.4"));
        assert_eq!(
            client_ip(peer, &h, &proxies(), ClientIpHeader::Forwarded),
            ip("6.6.6.6")
        );
        assert_eq!(
            client_ip(peer, &h, &proxies(), ClientIpHeader::XRealIp),
            ip("7.7.7.7")
        );
        // The configured header missing: the proxy itself.
        let h = headers(&[("x-forwarded-for", "198.51.100.4")]);
        assert_eq!(
            client_ip(peer, &h, &proxies(), ClientIpHeader::Forwarded),
            peer
        );
    }

    #[test]
    fn the_standard_forwarded_header() {
        let peer = ip("10.0.0.2");
        let fwd = ClientIpHeader::Forwarded;
        let h = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"198.51.100.4:4711\";proto=https, for=10.0.0.9",
        )]);
        assert_eq!(client_ip(peer, &h, &proxies(), fwd), ip("198.51.100.4"));
        let h = headers(&[("forwarded", "For=\"[2001:db8::1]:443\"")]);
        assert_eq!(client_ip(peer, &h, &proxies(), fwd), ip("2001:db8::1"));
        assert_eq!(
            client_ip(ip("203.0.113.7"), &h, &proxies(), fwd),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(
            rate_key(Some(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd"))),
            "ip:2001:db8:1:2::/64"
        );
        assert_eq!(
            rate_key(Some(ip("2001:db8:1:2::1"))),
            rate_key(Some(ip("2001:db8:1:2:ffff::9")))
        );
        assert_ne!(
            rate_key(Some(ip("2001:db8:1:2::1"))),
            rate_key(Some(ip("2001:db8:1:3::1")))
        );
        assert_eq!(rate_key(Some(ip("::ffff:192.0.2.1"))), "ip:192.0.2.1");
        assert_eq!(rate_key(Some(ip("192.0.2.1"))), "ip:192.0.2.1");
        assert_eq!(rate_key(None), "ip:unknown");
    }
}
