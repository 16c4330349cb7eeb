//! Webhook targets are checked where the request connects: a host name is resolved by
//! [`GuardedResolver`], which drops every address the policy refuses (loopback, private,
//! link-local, unique-local, carrier-grade NAT, unspecified, multicast, broadcast,
//! documentation, and the cloud metadata addresses), and an address written in the URL is
//! checked by [`check_url`] before the request. Redirects are never followed (a 3xx is a
//! failure), so no redirect can lead anywhere unchecked; checking at connection time also
//! defeats DNS rebinding between a check and the request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Which refused ranges the configuration allows anyway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// 127.0.0.0/8 and ::1 (tests, a relay on the same host).
    pub allow_loopback: bool,
    /// RFC 1918, unique-local, link-local, CGNAT: a receiver on the internal network.
    pub allow_private: bool,
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        // AWS, GCP, Azure, OpenStack, DigitalOcean...; Alibaba Cloud.
        IpAddr::V4(v4) => {
            v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200)
        }
        // AWS's IPv6 metadata endpoint.
        IpAddr::V6(v6) => v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    }
}

/// Why `ip` is refused under `policy`, or `None` when it may be reached.
pub fn refusal(ip: IpAddr, policy: TargetPolicy) -> Option<&'static str> {
    // An IPv4 address mapped into IPv6 is judged as itself.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if is_metadata(ip) {
        return Some("a cloud metadata address");
    }
    let (loopback, private, never) = match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            (
                v4.is_loopback(),
                v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b)),
                v4.is_unspecified()
                    || v4.is_multicast()
                    || v4.is_broadcast()
                    || v4.is_documentation()
                    || a == 0
                    || a >= 240,
            )
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (
                v6.is_loopback(),
                (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80,
                v6.is_unspecified()
                    || v6.is_multicast()
                    || first == 0x2001 && v6.segments()[1] == 0x0db8,
            )
        }
    };
    if never {
        Some("an unspecified, multicast, broadcast, reserved or documentation address")
    } else if loopback && !policy.allow_loopback {
        Some("a loopback address (allow it with allow_loopback)")
    } else if private && !policy.allow_private {
        Some("a private or link-local address (allow it with allow_private)")
    } else {
        None
    }
}

/// Checks a URL before a request: http or https, and an address written in it allowed.
pub fn check_url(url: &reqwest::Url, policy: TargetPolicy) -> Result<(), Refused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused(format!("{url}: only http and https URLs")));
    }
    match url.host() {
        Some(url::Host::Ipv4(v4)) => check_ip(IpAddr::V4(v4), policy),
        Some(url::Host::Ipv6(v6)) => check_ip(IpAddr::V6(v6), policy),
        Some(url::Host::Domain(_)) => Ok(()),
        None => Err(Refused(format!("{url}: no host"))),
    }
}

fn check_ip(ip: IpAddr, policy: TargetPolicy) -> Result<(), Refused> {
    match refusal(ip, policy) {
        Some(why) => Err(Refused(format!("{ip} is {why}"))),
        None => Ok(()),
    }
}

/// A DNS resolver for reqwest that keeps only the addresses the policy allows.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: TargetPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| refusal(a.ip(), policy).is_none())
                .collect();
            if allowed.is_empty() {
                let why = found
                    .first()
                    .and_then(|a| refusal(a.ip(), policy).map(|w| format!("{} is {w}", a.ip())))
                    .unwrap_or_else(|| "no address".to_owned());
                return Err(Box::new(Refused(format!("{host}: {why}")))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An HTTP client for webhook targets: the guarded resolver, no redirects, a timeout.
pub fn client(
    policy: TargetPolicy,
    timeout: std::time::Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!("opsgate/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_and_metadata_addresses_are_refused_unless_allowed() {
        let strict = TargetPolicy::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "fd00:ec2::254",
            "100.100.100.200",
        ] {
            assert!(refusal(ip(refused), strict).is_some(), "{refused}");
        }
        for allowed in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"] {
            assert_eq!(refusal(ip(allowed), strict), None, "{allowed}");
        }
        let loopback = TargetPolicy {
            allow_loopback: true,
            allow_private: false,
        };
        assert_eq!(refusal(ip("127.0.0.1"), loopback), None);
        assert!(refusal(ip("10.0.0.1"), loopback).is_some());
        // Metadata stays refused whatever is allowed.
        let open = TargetPolicy {
            allow_loopback: true,
            allow_private: true,
        };
        assert!(refusal(ip("169.254.169.254"), open).is_some());
        assert_eq!(refusal(ip("10.0.0.1"), open), None);
    }

    #[test]
    fn urls_with_refused_literals_or_schemes_are_refused() {
        let strict = TargetPolicy::default();
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(check_url(&url("http://127.0.0.1:9/hook"), strict).is_err());
        assert!(check_url(&url("http://[::1]/hook"), strict).is_err());
        assert!(check_url(&url("ftp://example.org/hook"), strict).is_err());
        assert!(check_url(&url("https://hooks.example.org/x"), strict).is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_refused_addresses_are_refused_at_connection() {
        let client = client(TargetPolicy::default(), std::time::Duration::from_secs(5)).unwrap();
        let err = client.get("http://localhost:9/").send().await.unwrap_err();
        let text = format!("{err:?}");
        assert!(text.contains("loopback"), "{text}");
    }
}
