//! CI workload identity end to end: the test is the CI platform. It serves its own OIDC
//! discovery document and JWKS on loopback, mints ID tokens with its own keys, and a server
//! configured to trust it admits exactly the tokens it should, scoped by the claim rule.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use opsgate_proto::v1 as pb;
use opsgate_server::Config;
use opsgate_server::config::{ClaimRule, IssuerConfig};
use opsgate_tests::{TestDb, TestServer, bearer, create_token, start_payroll, workflows_dir};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

const BOOTSTRAP: &str = "og_7777777777777777777777777777777777777777777777777777777777777777";

/// A signing key of the test's CI platform, with its `kid`.
struct Key {
    kid: String,
    signing: SigningKey,
}

impl Key {
    fn new(kid: &str, seed: u8) -> Self {
        Self {
            kid: kid.to_owned(),
            signing: SigningKey::from_slice(&[seed; 32]).unwrap(),
        }
    }

    fn jwk(&self) -> serde_json::Value {
        let public = p256::PublicKey::from(self.signing.verifying_key());
        let mut jwk: serde_json::Value = serde_json::from_str(&public.to_jwk_string()).unwrap();
        jwk["kid"] = self.kid.clone().into();
        jwk["alg"] = "ES256".into();
        jwk["use"] = "sig".into();
        jwk
    }

    fn pem(&self) -> String {
        self.signing
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap()
            .to_string()
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_ec_pem(self.pem().as_bytes()).unwrap(),
        )
        .unwrap()
    }
}

/// The test's CI platform: discovery document and JWKS over HTTP on loopback.
struct Platform {
    issuer: String,
    keys: Arc<Mutex<Vec<serde_json::Value>>>,
    jwks_fetches: Arc<Mutex<u32>>,
}

impl Platform {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let keys: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let jwks_fetches: Arc<Mutex<u32>> = Arc::default();
        let (served, fetches, iss) = (keys.clone(), jwks_fetches.clone(), issuer.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (served, fetches, iss) = (served.clone(), fetches.clone(), iss.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut len = 0;
                    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf[len..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => len += n,
                        }
                    }
                    let request = String::from_utf8_lossy(&buf[..len]);
                    let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let (status, body) = match path.as_str() {
                        "/.well-known/openid-configuration" => (
                            "200 OK",
                            serde_json::json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks")})
                                .to_string(),
                        ),
                        "/jwks" => {
                            *fetches.lock().unwrap() += 1;
                            let keys = served.lock().unwrap().clone();
                            ("200 OK", serde_json::json!({ "keys": keys }).to_string())
                        }
                        _ => ("404 Not Found", "{}".to_owned()),
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Self {
            issuer,
            keys,
            jwks_fetches,
        }
    }

    fn publish(&self, key: &Key) {
        self.keys.lock().unwrap().push(key.jwk());
    }

    fn fetches(&self) -> u32 {
        *self.jwks_fetches.lock().unwrap()
    }

    /// The claims a GitHub Actions job of `repository` gets, valid now.
    fn claims(&self, repository: &str) -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        serde_json::json!({
            "iss": self.issuer,
            "aud": "opsgate",
            "sub": format!("repo:{repository}:ref:refs/heads/main"),
            "repository": repository,
            "repository_owner_id": "1234",
            "ref": "refs/heads/main",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": uuid::Uuid::now_v7().to_string(),
        })
    }

    fn config(&self) -> IssuerConfig {
        IssuerConfig {
            issuer: self.issuer.clone(),
            audience: "opsgate".into(),
            jwks_url: None,
            principal_claim: "repository".into(),
            algorithms: vec![],
            leeway_seconds: Some(30),
            rules: vec![ClaimRule {
                claims: [
                    ("repository".to_owned(), "acme/payroll".to_owned()),
                    ("repository_owner_id".to_owned(), "1234".to_owned()),
                ]
                .into(),
                services: vec!["payroll".into()],
                deliverables: vec!["sla".into()],
            }],
        }
    }
}

/// A secure server on `db` that trusts `platform`'s tokens.
async fn trusting(platform: &Platform, db: &TestDb) -> TestServer {
    TestServer::start_config(
        db,
        Config {
            workflows_dir: Some(workflows_dir()),
            bootstrap_token: Some(BOOTSTRAP.into()),
            oidc: vec![platform.config()],
            ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        },
    )
    .await
}

/// [`trusting`], with Pat's transition of payroll 2.0 started.
async fn trusting_with_payroll(
    platform: &Platform,
    db: &TestDb,
) -> (TestServer, opsgate_tests::Clients) {
    let server = trusting(platform, db).await;
    let c = server.clients().await;
    let pat = create_token(&server.url, BOOTSTRAP, "Pat", &["project_manager"]).await;
    c.transitions
        .clone()
        .start_transition(bearer(&pat, start_payroll("2.0")))
        .await
        .unwrap();
    (server, c)
}

fn gate_of(service: &str, version: &str) -> pb::CheckGateRequest {
    pb::CheckGateRequest {
        target: Some(pb::check_gate_request::Target::Service(pb::ServiceRef {
            name: service.into(),
            version: version.into(),
        })),
    }
}

async fn check(
    c: &opsgate_tests::Clients,
    token: &str,
    service: &str,
) -> Result<pb::CheckGateResponse, tonic::Status> {
    c.gates
        .clone()
        .check_gate(bearer(token, gate_of(service, "2.0")))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_with_its_ci_token_checks_its_own_gate_and_nothing_more() {
    let platform = Platform::start().await;
    let key = Key::new("k1", 7);
    platform.publish(&key);
    let db = TestDb::sqlite();
    let server = trusting(&platform, &db).await;
    let c = server.clients().await;
    let pat = create_token(&server.url, BOOTSTRAP, "Pat", &["project_manager"]).await;
    for (service, version) in [("payroll", "2.0"), ("billing", "2.0")] {
        let mut request = start_payroll(version);
        request.service_name = service.into();
        c.transitions
            .clone()
            .start_transition(bearer(&pat, request))
            .await
            .unwrap();
    }

    let ci = key.sign(&platform.claims("acme/payroll"));
    let gate = check(&c, &ci, "payroll").await.unwrap();
    assert!(!gate.open, "a fresh transition's gate is closed");
    assert_eq!(platform.fetches(), 1, "keys fetched once through discovery");
    check(&c, &ci, "payroll").await.unwrap();
    assert_eq!(platform.fetches(), 1, "keys are cached");

    // Another service's gate, approvals and waivers are not the pipeline's.
    let other = check(&c, &ci, "billing").await.unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied, "{other:?}");
    assert!(
        other.message().contains("may act on service payroll only"),
        "{}",
        other.message()
    );
    let payroll = c
        .gates
        .clone()
        .check_gate(bearer(&pat, gate_of("payroll", "2.0")))
        .await
        .unwrap()
        .into_inner()
        .transition_id;
    let approve = c
        .transitions
        .clone()
        .review_deliverable(bearer(
            &ci,
            pb::ReviewDeliverableRequest {
                transition_id: payroll.clone(),
                deliverable_id: "sla".into(),
                decision: pb::ReviewDecision::Approve.into(),
                comment: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(approve.code(), Code::PermissionDenied);

    // Evidence for the deliverable its rule names, recorded as the pipeline through OIDC...
    let submitted = c
        .transitions
        .clone()
        .submit_deliverable(bearer(
            &ci,
            pb::SubmitDeliverableRequest {
                transition_id: payroll.clone(),
                deliverable_id: "sla".into(),
                evidence: Some(pb::Evidence {
                    links: vec!["https://ci.example/acme/payroll/runs/42".into()],
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .transition
        .unwrap();
    let sla = submitted.nodes.iter().find(|n| n.id == "sla").unwrap();
    assert_eq!(sla.submitted_by, "ci:acme/payroll");
    let events = c
        .transitions
        .clone()
        .list_events(bearer(
            &ci,
            pb::ListEventsRequest {
                transition_id: payroll.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    let last = events.last().unwrap();
    assert_eq!(last.kind, "deliverable_submitted");
    assert_eq!(last.access_role, "ci");
    assert_eq!(
        last.credential,
        format!(
            "oidc {} repo:acme/payroll:ref:refs/heads/main",
            platform.issuer
        )
    );
    // ...but not for one it does not.
    let refused = c
        .transitions
        .clone()
        .submit_deliverable(bearer(
            &ci,
            pb::SubmitDeliverableRequest {
                transition_id: payroll,
                deliverable_id: "knowledge-articles".into(),
                evidence: Some(pb::Evidence {
                    links: vec!["https://ci.example/x".into()],
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("rule does not grant it"),
        "{}",
        refused.message()
    );

    // A valid token that no rule admits (another repository) is refused.
    let stranger = key.sign(&platform.claims("acme/billing"));
    let err = check(&c, &stranger, "billing").await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("no rule admits it"),
        "{}",
        err.message()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_misdirected_tokens_are_unauthenticated() {
    let platform = Platform::start().await;
    let key = Key::new("k1", 7);
    platform.publish(&key);
    let db = TestDb::sqlite();
    let (server, c) = trusting_with_payroll(&platform, &db).await;
    let good = platform.claims("acme/payroll");
    check(&c, &key.sign(&good), "payroll").await.unwrap();

    let now = chrono::Utc::now().timestamp();
    let with = |field: &str, value: serde_json::Value| {
        let mut claims = good.clone();
        claims[field] = value;
        claims
    };
    let stranger = Key::new("k1", 9); // same kid, another key: a forgery
    let unknown = Key::new("k-unknown", 11);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong audience",
            key.sign(&with("aud", "someone-else".into())),
            "another audience",
        ),
        (
            "wrong issuer",
            key.sign(&with("iss", "https://evil.example".into())),
            "not trusted here",
        ),
        (
            "expired",
            key.sign(&with("exp", (now - 3600).into())),
            "expired",
        ),
        (
            "not yet valid",
            key.sign(&with("nbf", (now + 3600).into())),
            "not valid yet",
        ),
        (
            "issued in the future",
            key.sign(&with("iat", (now + 3600).into())),
            "in the future",
        ),
        (
            "nbf of the wrong type (CVE-2026-25537)",
            key.sign(&with("nbf", "tomorrow".into())),
            "",
        ),
        (
            "exp of the wrong type (CVE-2026-25537)",
            key.sign(&with("exp", "never".into())),
            "",
        ),
        (
            "forged with another key",
            stranger.sign(&good),
            "does not verify",
        ),
        (
            "signed by an unknown key",
            unknown.sign(&good),
            "does not publish",
        ),
        ("alg none", unsigned(&good), "not a JWT"),
        (
            "HS256 with the public key as secret",
            hs256_with_public_key(&key, &good),
            "not accepted",
        ),
        ("garbage", "eyJ.eyJ.sig".to_owned(), "not a JWT"),
    ];
    for (what, token, says) in cases {
        let err = check(&c, &token, "payroll").await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{what}: {err:?}");
        assert!(err.message().contains(says), "{what}: {}", err.message());
    }
    server.stop().await;
}

/// A token with `alg: none` and no signature.
fn unsigned(claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

/// The classic forgery: HS256, keyed with the issuer's public key.
fn hs256_with_public_key(key: &Key, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    let public = key.jwk().to_string();
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_refreshes_the_keys_once() {
    let platform = Platform::start().await;
    let old = Key::new("2026-10", 7);
    platform.publish(&old);
    let db = TestDb::sqlite();
    let (server, c) = trusting_with_payroll(&platform, &db).await;
    check(&c, &old.sign(&platform.claims("acme/payroll")), "payroll")
        .await
        .unwrap();
    assert_eq!(platform.fetches(), 1);
    // The platform rotates its key: the first token with the new kid fetches the keys again
    // (at most once per 5 s per issuer, so that made-up kids cannot hammer the platform).
    let new = Key::new("2026-11", 8);
    platform.publish(&new);
    let early = check(&c, &new.sign(&platform.claims("acme/payroll")), "payroll")
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::Unauthenticated);
    assert_eq!(platform.fetches(), 1, "no refetch within 5 s of the last");
    tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
    check(&c, &new.sign(&platform.claims("acme/payroll")), "payroll")
        .await
        .unwrap();
    assert_eq!(platform.fetches(), 2);
    check(&c, &new.sign(&platform.claims("acme/payroll")), "payroll")
        .await
        .unwrap();
    assert_eq!(platform.fetches(), 2, "known keys are not fetched again");
    server.stop().await;
}

/// The RPC matrix for a pipeline's OIDC token: it passes authorization exactly where the access
/// table admits role `ci`, and is `PermissionDenied` everywhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ci_token_gets_exactly_what_the_table_gives_role_ci() {
    use opsgate_domain::Access;
    use opsgate_server::auth::{Needs, needs};
    let platform = Platform::start().await;
    let key = Key::new("k1", 7);
    platform.publish(&key);
    let db = TestDb::sqlite();
    let server = trusting(&platform, &db).await;
    let ci = key.sign(&platform.claims("acme/payroll"));
    for rpc in opsgate_tests::every_rpc() {
        let allowed = match needs(&rpc).unwrap() {
            Needs::Read => true,
            Needs::OneOf(roles) => roles.contains(&Access::Ci),
        };
        let got = opsgate_tests::call_empty(&server.url, &rpc, Some(&ci)).await;
        if allowed {
            assert!(
                !matches!(got, Code::PermissionDenied | Code::Unauthenticated),
                "a pipeline should pass {rpc}'s authorization, got {got:?}"
            );
        } else {
            assert_eq!(got, Code::PermissionDenied, "a pipeline calling {rpc}");
        }
    }
    server.stop().await;
}
