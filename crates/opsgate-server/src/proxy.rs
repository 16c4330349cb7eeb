//! Web sign-in behind an SSO reverse proxy: the person a trusted proxy names in its user header
//! (oauth2-proxy's `X-Forwarded-User`, or any proxy's), believed only from the proxy's own
//! addresses, with look-alike spellings of the header refused.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::{HeaderMap, HeaderName};
use opsgate_domain::{Access, Actor};

use crate::config::AuthProxySection;

/// Longest user or groups header value read.
const MAX_VALUE: usize = 4096;
/// Most groups read from the groups header.
const MAX_GROUPS: usize = 200;

/// A person the trusted proxy vouched for, with the roles the configuration gives them. It
/// travels in a request's extensions, which no client can set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProxyUser {
    pub actor: Actor,
    pub roles: Vec<Access>,
    /// The header that named them (for the log's credential).
    pub header: String,
}

/// The checked `[auth_proxy]` settings.
#[derive(Debug, Clone)]
pub(crate) struct AuthProxy {
    header: HeaderName,
    trusted: Vec<Cidr>,
    roles: Vec<Access>,
    groups_header: Option<HeaderName>,
    group_roles: Vec<(String, Vec<Access>)>,
}

/// Headers a proxy's user header must not be: opsgate reads them for other things.
const RESERVED: &[&str] = &[
    "authorization",
    "cookie",
    "host",
    "content-type",
    "content-length",
    "x-opsgate-actor",
    "x-opsgate-actor-bin",
];

impl AuthProxy {
    /// The settings of `section`, or every problem with them; `None` when no header is set.
    pub(crate) fn new(section: &AuthProxySection) -> Result<Option<Self>, Vec<String>> {
        let mut problems = Vec::new();
        let header_named = |key: &str, value: &str, problems: &mut Vec<String>| {
            let folded = fold(value.trim());
            match HeaderName::from_str(&folded) {
                Ok(name) if RESERVED.contains(&name.as_str()) => {
                    problems.push(format!(
                        "auth_proxy.{key}: '{value}' is a header opsgate reads for something else"
                    ));
                    None
                }
                Ok(name) => Some(name),
                Err(_) => {
                    problems.push(format!(
                        "auth_proxy.{key}: '{value}' is not an HTTP header name"
                    ));
                    None
                }
            }
        };
        let Some(header) = &section.header else {
            if !section.trusted.is_empty() || section.groups_header.is_some() {
                return Err(vec![
                    "auth_proxy: trusted addresses or a groups header without `header` (the user \
                     header, --auth-proxy-header) do nothing"
                        .to_owned(),
                ]);
            }
            return Ok(None);
        };
        let header = header_named("header", header, &mut problems);
        let groups_header = section
            .groups_header
            .as_deref()
            .and_then(|g| header_named("groups_header", g, &mut problems));
        if section.trusted.is_empty() {
            problems.push(
                "auth_proxy.trusted: name the proxy's addresses (--auth-proxy-trusted CIDR...): \
                 a user header believed from anywhere lets anyone sign in as anyone"
                    .to_owned(),
            );
        }
        let mut trusted = Vec::new();
        for cidr in &section.trusted {
            match cidr.parse::<Cidr>() {
                Ok(c) => trusted.push(c),
                Err(e) => problems.push(format!("auth_proxy.trusted: {e}")),
            }
        }
        let mut roles_of = |key: &str, names: &[String]| -> Vec<Access> {
            let mut roles = Vec::new();
            for name in names {
                match Access::parse(name) {
                    Ok(Access::Ci) => problems.push(format!(
                        "auth_proxy.{key}: role ci is for pipelines (CI tokens), not for people"
                    )),
                    Ok(role) if !roles.contains(&role) => roles.push(role),
                    Ok(_) => {}
                    Err(e) => problems.push(format!("auth_proxy.{key}: {e}")),
                }
            }
            roles
        };
        let roles = match &section.roles {
            Some(names) => roles_of("roles", names),
            None => vec![
                Access::ProjectManager,
                Access::Approver,
                Access::ServiceManager,
            ],
        };
        let group_roles: Vec<(String, Vec<Access>)> = section
            .group_roles
            .iter()
            .map(|(group, names)| {
                (
                    group.clone(),
                    roles_of(&format!("group_roles.{group}"), names),
                )
            })
            .collect();
        if !group_roles.is_empty() && groups_header.is_none() {
            problems.push(
                "auth_proxy.group_roles: needs groups_header, the header that lists a person's \
                 groups"
                    .to_owned(),
            );
        }
        match header {
            Some(header) if problems.is_empty() => Ok(Some(Self {
                header,
                trusted,
                roles,
                groups_header,
                group_roles,
            })),
            _ => Err(problems),
        }
    }

    /// The user header's name (lower case).
    pub(crate) fn header(&self) -> &str {
        self.header.as_str()
    }

    /// The person the request from `peer` with `headers` signs in as: `None` without the header,
    /// or when it did not come from a trusted proxy (ignored, and logged); an error, to answer
    /// with 400, for a look-alike spelling of the header or a value that names nobody.
    pub(crate) fn user(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
    ) -> Result<Option<ProxyUser>, String> {
        for name in headers.keys() {
            for ours in std::iter::once(&self.header).chain(self.groups_header.as_ref()) {
                if name != ours && fold(name.as_str()) == ours.as_str() {
                    return Err(format!(
                        "the request carries header '{name}', a look-alike of the sign-in header \
                         '{ours}': refused (a proxy that passes one spelling and strips the other \
                         would let a client sign in as anyone)"
                    ));
                }
            }
        }
        let mut values = headers.get_all(&self.header).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        let peer = canonical(peer);
        if !self.trusted.iter().any(|c| c.contains(peer)) {
            tracing::warn!(%peer, header = %self.header, "a sign-in header from an address that is not a trusted proxy: ignored");
            return Ok(None);
        }
        if values.next().is_some() {
            return Err(format!(
                "the request carries header '{}' more than once",
                self.header
            ));
        }
        let name = value
            .to_str()
            .ok()
            .filter(|v| v.len() <= MAX_VALUE)
            .ok_or_else(|| format!("header '{}' is not a short text", self.header))?;
        let actor = Actor::parse(name.trim())
            .map_err(|e| format!("header '{}' names nobody opsgate accepts: {e}", self.header))?;
        let mut roles = self.roles.clone();
        if let Some(groups_header) = &self.groups_header {
            let groups: Vec<&str> = headers
                .get_all(groups_header)
                .iter()
                .filter_map(|v| v.to_str().ok().filter(|v| v.len() <= MAX_VALUE))
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .take(MAX_GROUPS)
                .collect();
            for (group, more) in &self.group_roles {
                if groups.contains(&group.as_str()) {
                    for role in more {
                        if !roles.contains(role) {
                            roles.push(*role);
                        }
                    }
                }
            }
        }
        Ok(Some(ProxyUser {
            actor,
            roles,
            header: self.header.to_string(),
        }))
    }
}

/// A header name as the look-alike check compares it: lower case, `_` as `-` (CGI-style
/// servers and some proxies treat the two alike).
fn fold(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// An IPv4 address even when it arrived as IPv4-mapped IPv6 (a dual-stack listener).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An address block: `10.0.0.0/8`, `::1/128`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    net: IpAddr,
    len: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not an address block such as 10.0.0.0/8 or ::1/128");
        let (addr, len) = match text.trim().split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text.trim(), None),
        };
        let net = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(bad)?,
            None => max,
        };
        let cidr = Self { net, len };
        if !cidr.contains(net) || cidr.masked(net) != net {
            return Err(format!(
                "'{text}' has bits set past its prefix length: did you mean {}/{len}?",
                cidr.masked(net)
            ));
        }
        Ok(cidr)
    }
}

impl Cidr {
    /// Whether `ip` is inside the block.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.net.is_ipv4() && self.masked(ip) == self.net
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxy(trusted: &[&str]) -> AuthProxy {
        let section = AuthProxySection {
            header: Some("X-Forwarded-User".to_owned()),
            trusted: trusted.iter().map(|t| (*t).to_owned()).collect(),
            roles: None,
            groups_header: Some("X-Forwarded-Groups".to_owned()),
            group_roles: [("transition-office".to_owned(), vec!["smo".to_owned()])].into(),
        };
        match AuthProxy::new(&section) {
            Ok(Some(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn address_blocks_contain_what_their_prefix_covers() {
        let block: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(block.contains("10.1.200.3".parse().unwrap()));
        assert!(!block.contains("10.2.0.1".parse().unwrap()));
        assert!(block.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("127.0.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        assert!(
            "10.1.2.3/8"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("10.0.0.0/8")
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("example.org/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let p = proxy(&["10.0.0.5/32"]);
        let h = headers(&[("x-forwarded-user", "Pat")]);
        let user = p.user("10.0.0.5".parse().unwrap(), &h).unwrap().unwrap();
        assert_eq!(user.actor.to_string(), "Pat");
        assert_eq!(
            user.roles,
            vec![
                Access::ProjectManager,
                Access::Approver,
                Access::ServiceManager
            ]
        );
        assert_eq!(p.user("10.0.0.6".parse().unwrap(), &h).unwrap(), None);
        assert_eq!(
            p.user("10.0.0.5".parse().unwrap(), &HeaderMap::new())
                .unwrap(),
            None
        );
    }

    #[test]
    fn look_alike_and_repeated_headers_are_refused() {
        let p = proxy(&["10.0.0.5/32"]);
        let peer = "10.0.0.5".parse().unwrap();
        for spelled in ["x_forwarded_user", "x-forwarded_user", "x_forwarded-groups"] {
            let mut h = HeaderMap::new();
            h.insert(
                HeaderName::from_bytes(spelled.as_bytes()).unwrap(),
                HeaderValue::from_static("Mallory"),
            );
            let refused = p.user(peer, &h).unwrap_err();
            assert!(refused.contains("look-alike"), "{refused}");
        }
        let twice = headers(&[("x-forwarded-user", "Pat"), ("x-forwarded-user", "Sam")]);
        assert!(p.user(peer, &twice).unwrap_err().contains("more than once"));
        let nobody = headers(&[("x-forwarded-user", "  ")]);
        assert!(p.user(peer, &nobody).is_err());
    }

    #[test]
    fn groups_add_the_roles_mapped_to_them() {
        let p = proxy(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-user", "Sam"),
            ("x-forwarded-groups", "staff, transition-office"),
        ]);
        let user = p.user("10.9.9.9".parse().unwrap(), &h).unwrap().unwrap();
        assert!(user.roles.contains(&Access::Smo));
        let h = headers(&[("x-forwarded-user", "Sam"), ("x-forwarded-groups", "staff")]);
        let user = p.user("10.9.9.9".parse().unwrap(), &h).unwrap().unwrap();
        assert!(!user.roles.contains(&Access::Smo));
    }

    #[test]
    fn settings_are_checked_all_at_once() {
        let section = AuthProxySection {
            header: Some("Authorization".to_owned()),
            trusted: vec!["nowhere".to_owned()],
            roles: Some(vec!["ci".to_owned(), "boss".to_owned()]),
            groups_header: None,
            group_roles: [("x".to_owned(), vec!["smo".to_owned()])].into(),
        };
        let problems = AuthProxy::new(&section).unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        let none = AuthProxySection {
            header: Some("X-User".to_owned()),
            ..AuthProxySection::default()
        };
        assert!(AuthProxy::new(&none).unwrap_err()[0].contains("trusted"));
        assert!(
            AuthProxy::new(&AuthProxySection::default())
                .unwrap()
                .is_none()
        );
    }
}
