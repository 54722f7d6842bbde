//! Who is calling, as every front door (HTTP, web pages, SIP2) and the layers
//! below them see it: recorded with audit events and sessions, and the subject
//! of per-IP rate limits. How an HTTP request's address is found is in
//! `http::client`.

use std::net::{IpAddr, Ipv6Addr};

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
