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

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use super::context::RequestContext;
// Who is calling is needed below the HTTP layer (audit, sessions, use cases, SIP2).
pub use crate::client::{ClientInfo, rate_key};
use crate::config::ClientIpHeader;
use crate::state::AppState;

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
    use std::net::Ipv6Addr;

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

    mod properties {
        use super::*;
        use axum::http::HeaderValue;
        use proptest::prelude::*;

        const HEADERS: [ClientIpHeader; 3] = [
            ClientIpHeader::XForwardedFor,
            ClientIpHeader::Forwarded,
            ClientIpHeader::XRealIp,
        ];

        /// Trusted proxies: 10.0.0.0/8 and fd00::/8.
        fn trusted() -> Vec<IpNet> {
            vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()]
        }

        fn any_ip() -> impl Strategy<Value = IpAddr> {
            prop_oneof![
                any::<[u8; 4]>().prop_map(IpAddr::from),
                any::<[u8; 16]>().prop_map(IpAddr::from),
            ]
        }

        fn trusted_ip() -> impl Strategy<Value = IpAddr> {
            prop_oneof![
                any::<[u8; 3]>().prop_map(|[a, b, c]| IpAddr::from([10, a, b, c])),
                any::<[u8; 15]>().prop_map(|rest| {
                    let mut octets = [0xfd; 16];
                    octets[1..].copy_from_slice(&rest);
                    IpAddr::from(octets)
                }),
            ]
        }

        /// An address outside both trusted ranges (IPv4-mapped forms of 10/8 included).
        fn untrusted_ip() -> impl Strategy<Value = IpAddr> {
            any_ip().prop_filter("outside the trusted ranges", |ip| {
                let ip = ip.to_canonical();
                !trusted().iter().any(|net| net.contains(&ip))
            })
        }

        /// Header text: arbitrary visible bytes, or lists built of address-like pieces.
        fn header_text() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                any_ip().prop_map(|ip| ip.to_string()),
                (any_ip(), any::<u16>())
                    .prop_map(|(ip, port)| SocketAddr::new(ip, port).to_string()),
                any_ip().prop_map(|ip| format!("for={ip}")),
                any_ip().prop_map(|ip| format!("for=\"[{ip}]\";proto=https")),
                "[ -~]{0,24}",
            ];
            prop_oneof![
                "[ -~]{0,256}",
                prop::collection::vec(piece, 0..12).prop_map(|p| p.join(", ")),
            ]
        }

        /// One hop as a proxy writes it into the configured header, in any of the
        /// spellings the grammar allows (port, quotes, brackets, spaces, key case).
        fn spelled(ip: IpAddr, header: ClientIpHeader, style: u8, port: u16) -> String {
            match header {
                ClientIpHeader::Forwarded => {
                    let key = if style & 1 == 0 { "for" } else { "For" };
                    let node = match (ip, style % 3) {
                        (IpAddr::V4(v4), 0) => v4.to_string(),
                        (IpAddr::V4(v4), _) => format!("\"{v4}:{port}\""),
                        (IpAddr::V6(v6), 0) => format!("\"[{v6}]\""),
                        (IpAddr::V6(v6), _) => format!("\"[{v6}]:{port}\""),
                    };
                    let extra = if style & 4 == 0 {
                        ""
                    } else {
                        ";proto=https;by=_hidden"
                    };
                    format!("{key}={node}{extra}")
                }
                _ => match (ip, style % 2) {
                    (ip, 0) => ip.to_string(),
                    (ip, _) => SocketAddr::new(ip, port).to_string(),
                },
            }
        }

        fn with(header: ClientIpHeader, value: &str) -> Option<HeaderMap> {
            let mut h = HeaderMap::new();
            h.insert(header.as_str(), HeaderValue::from_str(value).ok()?);
            Some(h)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// A peer that is not a trusted proxy is the client, whatever it sends.
            #[test]
            fn untrusted_peers_are_the_client(peer in untrusted_ip(), text in header_text(), h in 0..3usize) {
                for header in HEADERS {
                    if let Some(map) = with(header, &text) {
                        prop_assert_eq!(client_ip(peer, &map, &trusted(), HEADERS[h]), peer);
                        prop_assert_eq!(client_ip(peer, &map, &trusted(), header), peer);
                    }
                }
            }

            /// Any header text behind a trusted proxy gives an answer without a panic, and
            /// that answer is the peer or an address the header itself names.
            #[test]
            fn any_text_names_the_peer_or_a_listed_hop(peer in trusted_ip(), text in header_text()) {
                for header in HEADERS {
                    let Some(map) = with(header, &text) else { continue };
                    let client = client_ip(peer, &map, &trusted(), header);
                    if client != peer {
                        let listed = hops(&map, header).iter().any(|hop| {
                            hop.parse::<IpAddr>().ok() == Some(client)
                                || hop.parse::<SocketAddr>().ok().map(|s| s.ip()) == Some(client)
                        });
                        prop_assert!(listed, "{client} is not in {text:?}");
                    }
                }
            }

            /// Behind a chain of trusted proxies, the client is the right-most untrusted
            /// hop, whatever the client wrote further left and however the proxies spell it.
            #[test]
            fn the_rightmost_untrusted_hop_is_the_client(
                spoofed in prop::collection::vec(any_ip(), 0..4),
                real in untrusted_ip(),
                proxies in prop::collection::vec(trusted_ip(), 0..4),
                peer in trusted_ip(),
                styles in prop::collection::vec((any::<u8>(), 1..u16::MAX), 9),
                split in any::<bool>(),
            ) {
                for header in HEADERS {
                    let chain: Vec<String> = spoofed
                        .iter()
                        .chain(std::iter::once(&real))
                        .chain(&proxies)
                        .zip(&styles)
                        .map(|(ip, (style, port))| spelled(*ip, header, *style, *port))
                        .collect();
                    let mut map = HeaderMap::new();
                    if split {
                        // One header line per hop: the lines form one list, in order.
                        for hop in &chain {
                            map.append(header.as_str(), HeaderValue::from_str(hop).unwrap());
                        }
                    } else {
                        map.insert(header.as_str(), HeaderValue::from_str(&chain.join(" , ")).unwrap());
                    }
                    prop_assert_eq!(client_ip(peer, &map, &trusted(), header), real, "{:?}", chain);
                }
            }

            /// Every address of one IPv6 /64 shares one rate-limit key; another /64 does not,
            /// and an IPv4-mapped address counts as its IPv4 address.
            #[test]
            fn rate_keys_group_by_64(prefix in any::<u64>(), a in any::<u64>(), b in any::<u64>(), other in any::<u64>(), v4 in any::<[u8; 4]>()) {
                // Prefix 0 holds the IPv4-mapped block, which counts as IPv4 on purpose.
                prop_assume!(prefix != 0);
                let in_prefix = |p: u64, host: u64| Some(IpAddr::V6(Ipv6Addr::from((u128::from(p) << 64) | u128::from(host))));
                prop_assert_eq!(rate_key(in_prefix(prefix, a)), rate_key(in_prefix(prefix, b)));
                if other != prefix {
                    prop_assert_ne!(rate_key(in_prefix(prefix, a)), rate_key(in_prefix(other, a)));
                }
                let v4 = std::net::Ipv4Addr::from(v4);
                prop_assert_eq!(rate_key(Some(IpAddr::V6(v4.to_ipv6_mapped()))), rate_key(Some(IpAddr::V4(v4))));
            }
        }
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
