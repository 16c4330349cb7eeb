//! CI workload identity: a pipeline authenticates with the OIDC ID token its CI platform mints
//! (GitHub Actions, GitLab CI). The token is verified against a configured issuer (signature by
//! a key of the issuer's JWKS, fetched and cached, refreshed on an unknown `kid`; issuer,
//! audience, `exp`, `nbf`, `iat` with a small leeway; asymmetric algorithms only), then mapped
//! by the first matching claim rule to a `ci` principal scoped to some services.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use opsgate_domain::{Actor, clip};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, RwLock};
use tonic::Status;

use crate::config::{ClaimRule, IssuerConfig};

/// Signature algorithms an issuer may be configured with: asymmetric ones only (an HMAC key
/// would be a shared secret, and "HS256 signed with the public key" is the classic forgery).
const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
const DEFAULT_ALGORITHMS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256];
const DEFAULT_LEEWAY: u64 = 60;
const MAX_LEEWAY: u64 = 300;
/// Largest bearer token looked at (GitHub's are about 1.2 KB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Largest discovery document or JWKS read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Keys are fetched again after this long, and at most this often on an unknown `kid`.
const KEYS_TTL: Duration = Duration::from_secs(3600);
const REFRESH_GAP: Duration = Duration::from_secs(5);
/// How long a fetch from an issuer may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Principals of pipelines start with this, so that no repository name can pass for a person.
pub(crate) const CI_PRINCIPAL_PREFIX: &str = "ci:";

/// What a verified pipeline may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub services: Vec<String>,
    pub deliverables: Vec<String>,
}

impl Scope {
    pub(crate) fn covers(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }
}

/// A pipeline whose token was verified and admitted by a rule.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub principal: Actor,
    /// `oidc ISSUER SUBJECT`, as events record it.
    pub credential: String,
    pub scope: Scope,
}

/// The problems of one issuer's configuration (empty when it is usable).
pub(crate) fn check_issuer(c: &IssuerConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if !secure_url(&c.issuer) {
        problems.push(format!(
            "issuer '{}' must be an https:// URL (http:// only on loopback)",
            clip(&c.issuer)
        ));
    }
    if let Some(url) = &c.jwks_url
        && !secure_url(url)
    {
        problems.push(format!(
            "jwks_url '{}' must be an https:// URL (http:// only on loopback)",
            clip(url)
        ));
    }
    if c.audience.trim().is_empty() {
        problems
            .push("audience is required: tokens minted for another audience must not pass".into());
    }
    if c.principal_claim.trim().is_empty() {
        problems.push("principal_claim must name a claim".into());
    }
    for name in &c.algorithms {
        match Algorithm::from_str(name) {
            Ok(alg) if ASYMMETRIC.contains(&alg) => {}
            _ => problems.push(format!(
                "algorithm '{}' is not accepted: use asymmetric ones ({})",
                clip(name),
                ASYMMETRIC
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    if c.leeway_seconds.is_some_and(|l| l > MAX_LEEWAY) {
        problems.push(format!("leeway_seconds is at most {MAX_LEEWAY}"));
    }
    if c.rules.is_empty() {
        problems.push(
            "no rules: add [[oidc.issuers.rules]] saying which tokens may act, on which services"
                .into(),
        );
    }
    for (i, rule) in c.rules.iter().enumerate() {
        if rule.claims.is_empty() {
            problems.push(format!(
                "rules[{i}]: claims must bind at least one claim (such as repository), or every \
                 pipeline of the issuer would match"
            ));
        }
        if rule.services.is_empty() {
            problems.push(format!(
                "rules[{i}]: services must name at least one service"
            ));
        }
    }
    problems
}

fn secure_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    if url.starts_with("https://") {
        return !rest.is_empty();
    }
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// One trusted issuer and its cached keys.
struct Issuer {
    config: IssuerConfig,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    keys: RwLock<Keys>,
    /// One fetch at a time.
    refreshing: Mutex<()>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    /// Keys without a `kid` (used only when the JWKS holds exactly one key).
    anonymous: Vec<DecodingKey>,
    fetched: Option<Instant>,
}

/// The configured issuers.
pub(crate) struct Oidc {
    issuers: Vec<Issuer>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field(
                "issuers",
                &self
                    .issuers
                    .iter()
                    .map(|i| i.config.issuer.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Oidc {
    /// Issuers from the configuration (checked again here: a `Config` may be built in code).
    pub(crate) fn new(configs: &[IssuerConfig]) -> Result<Self, String> {
        let mut issuers = Vec::with_capacity(configs.len());
        for (i, c) in configs.iter().enumerate() {
            let problems = check_issuer(c);
            if !problems.is_empty() {
                return Err(format!("oidc.issuers[{i}]: {}", problems.join("; ")));
            }
            let algorithms = if c.algorithms.is_empty() {
                DEFAULT_ALGORITHMS.to_vec()
            } else {
                c.algorithms
                    .iter()
                    .filter_map(|a| Algorithm::from_str(a).ok())
                    .collect()
            };
            issuers.push(Issuer {
                config: c.clone(),
                algorithms,
                leeway: c.leeway_seconds.unwrap_or(DEFAULT_LEEWAY),
                keys: RwLock::new(Keys::default()),
                refreshing: Mutex::new(()),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| format!("cannot build the HTTP client for OIDC: {e}"))?;
        Ok(Self { issuers, http })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Verifies `token` and maps it to a pipeline principal. `Unauthenticated` for a token that
    /// is not valid; `PermissionDenied` for a valid one that no rule admits.
    pub(crate) async fn verify(&self, token: &str) -> Result<Verified, Status> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(unauthenticated(
                "the token is too large to be an OIDC ID token",
            ));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| unauthenticated(&format!("not a JWT: {e}")))?;
        // Read `iss` before verifying, only to choose the issuer whose keys verify it.
        let unverified = jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(token)
            .map_err(|e| unauthenticated(&format!("not a JWT: {e}")))?;
        let iss = unverified
            .claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| unauthenticated("the token has no iss claim"))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.issuer == iss)
            .ok_or_else(|| {
                unauthenticated(&format!(
                    "tokens of issuer '{}' are not trusted here (see [[oidc.issuers]])",
                    clip(iss)
                ))
            })?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(unauthenticated(&format!(
                "algorithm {:?} is not accepted for issuer {} (accepted: {:?})",
                header.alg, issuer.config.issuer, issuer.algorithms
            )));
        }
        let key = self.key(issuer, header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&issuer.config.issuer]);
        validation.set_audience(&[&issuer.config.audience]);
        validation.leeway = issuer.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| unauthenticated(&refusal(e.kind())))?;
        let claims = data.claims;
        let now = jsonwebtoken::get_current_timestamp();
        match claims.get("iat").and_then(Value::as_u64) {
            Some(iat) if iat <= now.saturating_add(issuer.leeway) => {}
            Some(_) => return Err(unauthenticated("the token was issued in the future (iat)")),
            None => return Err(unauthenticated("the token's iat is not a number")),
        }
        let rule = issuer
            .config
            .rules
            .iter()
            .find(|r| matches(r, &claims))
            .ok_or_else(|| {
                let shown: Vec<String> = issuer
                    .config
                    .rules
                    .iter()
                    .flat_map(|r| r.claims.keys())
                    .filter_map(|name| {
                        claims
                            .get(name)
                            .and_then(text)
                            .map(|v| format!("{name}={}", clip(&v)))
                    })
                    .collect();
                Status::permission_denied(format!(
                    "a valid token of {}, but no rule admits it ({}): see [[oidc.issuers.rules]]",
                    issuer.config.issuer,
                    if shown.is_empty() {
                        "none of the claims the rules bind".to_owned()
                    } else {
                        shown.join(", ")
                    }
                ))
            })?;
        let name = claims
            .get(&issuer.config.principal_claim)
            .and_then(text)
            .ok_or_else(|| {
                unauthenticated(&format!(
                    "the token has no {} claim to name the pipeline by",
                    issuer.config.principal_claim
                ))
            })?;
        let principal = Actor::parse(format!("{CI_PRINCIPAL_PREFIX}{name}"))
            .map_err(|e| unauthenticated(&format!("the principal claim is unusable: {e}")))?;
        let subject = claims.get("sub").and_then(text).unwrap_or_default();
        Ok(Verified {
            principal,
            credential: format!("oidc {} {}", issuer.config.issuer, clip(&subject)),
            scope: Scope {
                services: rule.services.clone(),
                deliverables: rule.deliverables.clone(),
            },
        })
    }

    /// The issuer's key for `kid`, fetching the JWKS when it is stale or the `kid` unknown.
    async fn key(&self, issuer: &Issuer, kid: Option<&str>) -> Result<DecodingKey, Status> {
        let fresh = |keys: &Keys| keys.fetched.is_some_and(|f| f.elapsed() < KEYS_TTL);
        {
            let keys = issuer.keys.read().await;
            if fresh(&keys)
                && let Some(key) = pick(&keys, kid)
            {
                return Ok(key);
            }
        }
        let _turn = issuer.refreshing.lock().await;
        {
            // Another request may have fetched while this one waited.
            let keys = issuer.keys.read().await;
            if let Some(key) = pick(&keys, kid)
                && fresh(&keys)
            {
                return Ok(key);
            }
            if keys.fetched.is_some_and(|f| f.elapsed() < REFRESH_GAP) {
                return pick(&keys, kid).ok_or_else(|| unknown_key(kid));
            }
        }
        match self.fetch(issuer).await {
            Ok(fetched) => {
                let mut keys = issuer.keys.write().await;
                *keys = fetched;
                pick(&keys, kid).ok_or_else(|| unknown_key(kid))
            }
            Err(e) => {
                tracing::warn!(issuer = %issuer.config.issuer, error = %e, "cannot fetch the issuer's keys");
                let mut keys = issuer.keys.write().await;
                // Keep serving with the keys known so far; try again after the gap.
                keys.fetched = Some(Instant::now());
                pick(&keys, kid).ok_or_else(|| {
                    Status::unavailable(format!(
                        "cannot fetch the signing keys of {}: {e}",
                        issuer.config.issuer
                    ))
                })
            }
        }
    }

    async fn fetch(&self, issuer: &Issuer) -> Result<Keys, String> {
        let jwks_url = match &issuer.config.jwks_url {
            Some(url) => url.clone(),
            None => {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.config.issuer.trim_end_matches('/')
                );
                let doc: Value = self.get_json(&discovery).await?;
                let url = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{discovery} names no jwks_uri"))?;
                if !secure_url(url) {
                    return Err(format!("{discovery} names an insecure jwks_uri"));
                }
                url.to_owned()
            }
        };
        let set: JwkSet = serde_json::from_value(self.get_json(&jwks_url).await?)
            .map_err(|e| format!("{jwks_url} is not a JWKS: {e}"))?;
        let mut keys = Keys {
            fetched: Some(Instant::now()),
            ..Keys::default()
        };
        for jwk in &set.keys {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            match &jwk.common.key_id {
                Some(kid) => {
                    keys.by_kid.insert(kid.clone(), key);
                }
                None => keys.anonymous.push(key),
            }
        }
        tracing::info!(issuer = %issuer.config.issuer, keys = keys.by_kid.len() + keys.anonymous.len(), "issuer keys fetched");
        Ok(keys)
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{url} is larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))
    }
}

fn pick(keys: &Keys, kid: Option<&str>) -> Option<DecodingKey> {
    match kid {
        Some(kid) => keys.by_kid.get(kid).cloned(),
        None if keys.by_kid.len() + keys.anonymous.len() == 1 => keys
            .by_kid
            .values()
            .next()
            .or(keys.anonymous.first())
            .cloned(),
        None => None,
    }
}

fn unknown_key(kid: Option<&str>) -> Status {
    unauthenticated(&match kid {
        Some(kid) => format!(
            "signed by key '{}', which the issuer does not publish",
            clip(kid)
        ),
        None => "the token names no key (kid) and the issuer publishes several".to_owned(),
    })
}

/// Whether every claim the rule binds has exactly the value it requires.
fn matches(rule: &ClaimRule, claims: &Map<String, Value>) -> bool {
    rule.claims
        .iter()
        .all(|(name, want)| claims.get(name).and_then(text).is_some_and(|v| &v == want))
}

/// A claim value as text: strings as they are, numbers and booleans as written.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn refusal(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "the token was minted for another audience".into(),
        ErrorKind::InvalidIssuer => "the token's issuer does not match".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        ErrorKind::InvalidAlgorithm => "the token's algorithm does not fit the key".into(),
        other => format!("the token is not valid: {other:?}"),
    }
}

fn unauthenticated(why: &str) -> Status {
    Status::unauthenticated(format!("OIDC token refused: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(algorithms: &[&str]) -> IssuerConfig {
        IssuerConfig {
            issuer: "https://token.actions.githubusercontent.com".into(),
            audience: "opsgate".into(),
            jwks_url: None,
            principal_claim: "repository".into(),
            algorithms: algorithms.iter().map(|a| (*a).to_owned()).collect(),
            leeway_seconds: None,
            rules: vec![ClaimRule {
                claims: [("repository".to_owned(), "acme/payroll".to_owned())].into(),
                services: vec!["payroll".into()],
                deliverables: vec![],
            }],
        }
    }

    #[test]
    fn only_asymmetric_algorithms_and_secure_urls_are_accepted() {
        assert!(check_issuer(&issuer(&["RS256", "ES256"])).is_empty());
        let problems = check_issuer(&issuer(&["HS256", "none"]));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("algorithm 'HS256' is not accepted"));
        let mut plain = issuer(&[]);
        plain.issuer = "http://ci.example.com".into();
        assert!(check_issuer(&plain)[0].contains("must be an https:// URL"));
        plain.issuer = "http://127.0.0.1:8080/".into();
        assert!(check_issuer(&plain).is_empty());
    }

    #[test]
    fn a_rule_must_bind_claims_and_name_services() {
        let mut c = issuer(&[]);
        c.rules[0].claims.clear();
        c.rules[0].services.clear();
        let problems = check_issuer(&c);
        assert_eq!(problems.len(), 2, "{problems:?}");
        c.rules.clear();
        assert!(check_issuer(&c)[0].starts_with("no rules"));
    }

    #[test]
    fn claims_match_as_text() {
        let rule = ClaimRule {
            claims: [
                ("repository".to_owned(), "acme/payroll".to_owned()),
                ("repository_owner_id".to_owned(), "1234".to_owned()),
            ]
            .into(),
            services: vec!["payroll".into()],
            deliverables: vec![],
        };
        let claims = |owner: Value| {
            serde_json::json!({"repository": "acme/payroll", "repository_owner_id": owner})
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        assert!(matches(&rule, &claims(serde_json::json!(1234))));
        assert!(matches(&rule, &claims(serde_json::json!("1234"))));
        assert!(!matches(&rule, &claims(serde_json::json!(12345))));
        assert!(!matches(&rule, &claims(serde_json::json!(["1234"]))));
    }
}
