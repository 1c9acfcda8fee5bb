//! Who the client is, behind a reverse proxy or not.
//!
//! `X-Forwarded-For` and `X-Forwarded-Proto` are believed only from the addresses in
//! `--trusted-proxies` (`DUET_TRUSTED_PROXIES`, a CIDR list, default none); from anyone else they
//! are ignored, so a client cannot pick its own address for login throttling, nor claim HTTPS.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::state::AppState;

/// One entry of `--trusted-proxies`: a CIDR block or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy(IpNet);

impl FromStr for TrustedProxy {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if let Ok(net) = raw.parse::<IpNet>() {
            return Ok(Self(net.trunc()));
        }
        raw.parse::<IpAddr>()
            .map(|ip| Self(IpNet::from(ip)))
            .map_err(|_| format!("not a CIDR block or an address: {raw:?}"))
    }
}

impl TrustedProxy {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:1.2.3.4`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client as Duet believes it to be; put in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The address login throttling counts against.
    pub ip: IpAddr,
    /// Whether the browser reached us over HTTPS (directly, or via a trusted proxy).
    pub https: bool,
}

impl Client {
    /// From the TCP peer, the headers, the trusted proxies, and whether we serve TLS ourselves.
    pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[TrustedProxy], tls: bool) -> Self {
        let peer = canonical(peer);
        let is_trusted = |ip: IpAddr| trusted.iter().any(|t| t.contains(ip));
        if !is_trusted(peer) {
            return Self {
                ip: peer,
                https: tls,
            };
        }
        // Each proxy appends the address it heard from: walk from the right past our own
        // proxies; the first address they did not add themselves is the client.
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|part| part.trim().parse::<IpAddr>().ok())
            .map(canonical)
            .collect();
        let ip = forwarded
            .iter()
            .rev()
            .copied()
            .find(|ip| !is_trusted(*ip))
            .or_else(|| forwarded.first().copied())
            .unwrap_or(peer);
        // The proxy nearest to us writes the last value.
        let proto = headers
            .get_all("x-forwarded-proto")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
            .last()
            .copied();
        let https = match proto {
            Some(proto) => proto.eq_ignore_ascii_case("https"),
            None => tls,
        };
        Self { ip, https }
    }
}

/// Middleware: works out the [`Client`] of each request.
pub async fn identify(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let client = Client::resolve(
        peer,
        request.headers(),
        &state.settings.trusted_proxies,
        state.settings.serves_tls(),
    );
    request.extensions_mut().insert(client);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_headers_from_strangers_are_ignored() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let forged = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
        ]);
        let client = Client::resolve(ip("203.0.113.9"), &forged, &trusted, false);
        assert_eq!(
            client,
            Client {
                ip: ip("203.0.113.9"),
                https: false
            }
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        let trusted: Vec<TrustedProxy> =
            vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
        // The client prepended a forged address; our proxy appended the real one.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("x-forwarded-proto", "https"),
        ]);
        let client = Client::resolve(ip("10.1.2.3"), &h, &trusted, false);
        assert_eq!(
            client,
            Client {
                ip: ip("198.51.100.7"),
                https: true
            }
        );
        // Two proxies of ours in a row.
        let h = headers(&[("x-forwarded-for", "198.51.100.7, 10.9.9.9")]);
        let client = Client::resolve(ip("::ffff:10.1.2.3"), &h, &trusted, true);
        assert_eq!(
            client,
            Client {
                ip: ip("198.51.100.7"),
                https: true
            }
        );
    }

    #[test]
    fn cidrs_and_plain_addresses_parse() {
        assert!(
            "127.0.0.1"
                .parse::<TrustedProxy>()
                .unwrap()
                .contains(ip("127.0.0.1"))
        );
        assert!(
            "192.168.1.0/24"
                .parse::<TrustedProxy>()
                .unwrap()
                .contains(ip("192.168.1.77"))
        );
        assert!(
            !"192.168.1.0/24"
                .parse::<TrustedProxy>()
                .unwrap()
                .contains(ip("192.168.2.1"))
        );
        assert!(
            "fd00::/8"
                .parse::<TrustedProxy>()
                .unwrap()
                .contains(ip("fd12::1"))
        );
        assert!("nonsense".parse::<TrustedProxy>().is_err());
    }
}
