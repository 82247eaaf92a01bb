//! Who may use the dashboard: every client that can reach the listen address, or only the
//! addresses and networks in `[web] allow` (the HA add-on: only the Supervisor's ingress proxy).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

/// The clients the web server answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Empty: everyone who can connect.
    allow: Vec<IpNet>,
}

impl Access {
    /// Everyone who can reach the listen address (the default).
    pub fn anyone() -> Self {
        Self::default()
    }

    /// Only clients inside one of these networks (a single address is a /32 or /128 network).
    pub fn only(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// Parses one `[web] allow` entry: `172.30.32.2`, `192.168.1.0/24`, `::1`, `fd00::/8`.
    pub fn parse_entry(text: &str) -> Result<IpNet, String> {
        let text = text.trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(IpNet::from(ip));
        }
        text.parse::<IpNet>().map_err(|_| {
            format!("{text:?} is neither an IP address (\"172.30.32.2\") nor a network (\"192.168.1.0/24\")")
        })
    }

    /// Whether a client at `ip` may be answered. An IPv4 client on an IPv6 socket
    /// (`::ffff:a.b.c.d`) counts as its IPv4 address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&ip))
    }

    /// Whether every client is answered.
    pub fn is_open(&self) -> bool {
        self.allow.is_empty()
    }
}

/// Refuses clients outside [`Access`] with 403 before any route runs.
pub(crate) async fn guard(
    State(access): State<Access>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if access.allows(peer.ip()) {
        return next.run(request).await;
    }
    tracing::debug!(client = %peer.ip(), "web: client not in [web] allow, refused");
    (
        StatusCode::FORBIDDEN,
        format!(
            "{} may not use this dashboard: add it to [web] allow in the kamstrup config\n",
            peer.ip()
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_addresses_or_networks() {
        assert_eq!(
            Access::parse_entry("172.30.32.2").unwrap().to_string(),
            "172.30.32.2/32"
        );
        assert_eq!(
            Access::parse_entry(" 192.168.1.0/24 ").unwrap().to_string(),
            "192.168.1.0/24"
        );
        assert_eq!(Access::parse_entry("::1").unwrap().to_string(), "::1/128");
        let err = Access::parse_entry("172.30.32.300").unwrap_err();
        assert!(err.contains("neither an IP address"), "{err}");
        assert!(Access::parse_entry("localhost").is_err());
    }

    #[test]
    fn only_listed_clients_are_allowed() {
        let ingress = Access::only(vec![Access::parse_entry("172.30.32.2").unwrap()]);
        assert!(ingress.allows("172.30.32.2".parse().unwrap()));
        assert!(ingress.allows("::ffff:172.30.32.2".parse().unwrap()));
        assert!(!ingress.allows("172.30.32.1".parse().unwrap()));
        assert!(!ingress.allows("127.0.0.1".parse().unwrap()));
        let lan = Access::only(vec![Access::parse_entry("192.168.1.0/24").unwrap()]);
        assert!(lan.allows("192.168.1.77".parse().unwrap()));
        assert!(!lan.allows("192.168.2.1".parse().unwrap()));
        assert!(Access::anyone().allows("203.0.113.9".parse().unwrap()));
    }
}
