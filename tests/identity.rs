//! Identity (issue 9, first slice): API tokens authenticate every call of a secure server; the
//! token's principal is who acts, whatever the metadata claims; bad, unknown, expired and
//! revoked tokens are `Unauthenticated`; only the SMO administers tokens and workflows; the
//! bootstrap token is created once, across restarts and replicas; secrets are stored hashed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_proto::metadata::{ACTOR_METADATA_KEY, AUTHORIZATION_METADATA_KEY};
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::identity_service_client::IdentityServiceClient;
use opsgate_tests::{Clients, TestDb, TestServer, call_empty, every_rpc, start_payroll};
use sea_orm::{ConnectionTrait, Statement};
use tonic::{Code, Request};

const BOOTSTRAP: &str = "og_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

use opsgate_tests::bearer as with_token;

async fn identity(server: &TestServer) -> IdentityServiceClient<tonic::transport::Channel> {
    IdentityServiceClient::connect(server.url.clone())
        .await
        .unwrap()
}

/// A token for `principal` with `roles`, made with the bootstrap token.
async fn token(server: &TestServer, principal: &str, roles: &[&str]) -> String {
    opsgate_tests::create_token(&server.url, BOOTSTRAP, principal, roles).await
}

fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> (Code, String) {
    match result {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(s) => (s.code(), s.message().to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_server_knows_who_calls_from_the_token_alone() {
    for db in TestDb::all().await {
        let server = TestServer::start_secure(&db, BOOTSTRAP).await;
        let mut c: Clients = server.clients().await;

        // No credential, or only a claimed name: nothing is allowed, reads included.
        let (code_, message) = code(
            c.transitions
                .start_transition(opsgate_tests::acting("Pat", start_payroll("1.0")))
                .await,
        );
        assert_eq!(code_, Code::Unauthenticated, "{message}");
        assert!(message.contains("Bearer og_"), "{message}");
        let (code_, _) = code(
            c.workflows
                .list_workflows(pb::ListWorkflowsRequest {})
                .await,
        );
        assert_eq!(code_, Code::Unauthenticated);

        // Malformed, unknown: Unauthenticated, each saying why.
        for (value, says) in [
            ("Basic cGF0OnNlY3JldA==", "Bearer og_"),
            ("Bearer not-a-token", "not an opsgate token"),
            (
                "Bearer og_ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "unknown token",
            ),
        ] {
            let mut request = Request::new(pb::ListWorkflowsRequest {});
            request
                .metadata_mut()
                .insert(AUTHORIZATION_METADATA_KEY, value.parse().unwrap());
            let (code_, message) = code(c.workflows.list_workflows(request).await);
            assert_eq!(code_, Code::Unauthenticated, "{value}: {message}");
            assert!(message.contains(says), "{value}: {message}");
        }

        // The SMO makes tokens; nobody else may.
        let pat = token(&server, "Pat", &["project_manager"]).await;
        let dana = token(&server, "Dana", &["approver"]).await;
        assert!(pat.starts_with("og_") && pat.len() == 67, "{pat}");
        let (code_, message) = code(
            identity(&server)
                .await
                .create_token(with_token(
                    &pat,
                    pb::CreateTokenRequest {
                        principal: "Mallory".into(),
                        roles: vec!["smo".into()],
                        ..Default::default()
                    },
                ))
                .await,
        );
        assert_eq!(code_, Code::PermissionDenied, "{message}");
        assert!(message.contains("needs role smo"), "{message}");
        let (code_, message) = code(
            identity(&server)
                .await
                .create_token(with_token(
                    BOOTSTRAP,
                    pb::CreateTokenRequest {
                        principal: "Eve".into(),
                        roles: vec!["admin".into()],
                        ..Default::default()
                    },
                ))
                .await,
        );
        assert_eq!(code_, Code::InvalidArgument, "{message}");
        let (code_, _) = code(
            c.workflows
                .register_workflow(with_token(
                    &pat,
                    pb::RegisterWorkflowRequest {
                        source: "name: x\n".into(),
                        file_name: String::new(),
                    },
                ))
                .await,
        );
        assert_eq!(code_, Code::PermissionDenied);

        // Pat's token acts as Pat: it cannot be made to act as someone else.
        let mut spoofed = with_token(&pat, start_payroll("1.0"));
        spoofed
            .metadata_mut()
            .insert(ACTOR_METADATA_KEY, "Sam".parse().unwrap());
        let (code_, message) = code(c.transitions.start_transition(spoofed).await);
        assert_eq!(code_, Code::PermissionDenied, "{message}");
        let t = c
            .transitions
            .start_transition(with_token(&pat, start_payroll("1.0")))
            .await
            .unwrap()
            .into_inner()
            .transition
            .unwrap();
        let submitted = c
            .transitions
            .submit_deliverable(with_token(
                &pat,
                pb::SubmitDeliverableRequest {
                    transition_id: t.id.clone(),
                    deliverable_id: "support-contacts".into(),
                    evidence: None,
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .transition
            .unwrap();
        let node = submitted
            .nodes
            .iter()
            .find(|n| n.id == "support-contacts")
            .unwrap();
        assert_eq!(node.submitted_by, "Pat");

        // Reading a transition needs a part in it (or role smo or auditor).
        let mallory = token(&server, "Mallory", &["approver"]).await;
        let auditor = token(&server, "Audrey", &["auditor"]).await;
        let read = |token: String| {
            let mut c = c.clone();
            let id = t.id.clone();
            async move {
                let got = c
                    .transitions
                    .get_transition(with_token(
                        &token,
                        pb::GetTransitionRequest {
                            transition_id: id.clone(),
                        },
                    ))
                    .await
                    .map(|_| ());
                let history = c
                    .transitions
                    .list_events(with_token(
                        &token,
                        pb::ListEventsRequest {
                            transition_id: id,
                            ..Default::default()
                        },
                    ))
                    .await
                    .map(|_| ());
                (got, history)
            }
        };
        let (got, history) = read(mallory.clone()).await;
        for refused in [got, history] {
            let (code_, message) = code(refused);
            assert_eq!(code_, Code::PermissionDenied, "{message}");
            assert!(
                message.contains("Mallory has no part in the transition"),
                "{message}"
            );
        }
        for allowed in [dana.clone(), auditor.clone(), pat.clone()] {
            let (got, history) = read(allowed).await;
            assert!(got.is_ok() && history.is_ok(), "{got:?} {history:?}");
        }
        // Listing shows only what the caller may read.
        for (token, expected) in [(&mallory, 0), (&dana, 1), (&auditor, 1)] {
            let listed = c
                .transitions
                .list_transitions(with_token(token, pb::ListTransitionsRequest::default()))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(listed.transitions.len(), expected, "{}", db.backend);
        }

        // Dana approves with her token; once revoked, it no longer works.
        c.transitions
            .review_deliverable(with_token(
                &dana,
                pb::ReviewDeliverableRequest {
                    transition_id: t.id.clone(),
                    deliverable_id: "support-contacts".into(),
                    decision: pb::ReviewDecision::Approve.into(),
                    comment: String::new(),
                },
            ))
            .await
            .unwrap();
        let listed = identity(&server)
            .await
            .list_tokens(with_token(BOOTSTRAP, pb::ListTokensRequest::default()))
            .await
            .unwrap()
            .into_inner();
        let dana_id = listed
            .tokens
            .iter()
            .find(|t| t.principal == "Dana")
            .unwrap()
            .id
            .clone();
        assert_eq!(
            listed.tokens.len(),
            5,
            "bootstrap, Pat, Dana, Mallory, Audrey"
        );
        identity(&server)
            .await
            .revoke_token(with_token(
                BOOTSTRAP,
                pb::RevokeTokenRequest { id: dana_id },
            ))
            .await
            .unwrap();
        let (code_, message) = code(
            c.transitions
                .get_transition(with_token(
                    &dana,
                    pb::GetTransitionRequest {
                        transition_id: t.id.clone(),
                    },
                ))
                .await,
        );
        assert_eq!(code_, Code::Unauthenticated, "{message}");
        assert!(message.contains("revoked"), "{message}");

        // An expired token is refused with when it expired.
        let (expired, _) = server
            .store()
            .create_token(
                &opsgate_store::NewToken {
                    principal: opsgate_domain::Actor::parse("Old").unwrap(),
                    roles: vec![opsgate_domain::Access::Auditor],
                    expires_at: Some(chrono::Utc::now() - chrono::Duration::hours(1)),
                    description: String::new(),
                },
                &opsgate_domain::Actor::parse("bootstrap").unwrap(),
            )
            .await
            .unwrap();
        let (code_, message) = code(
            c.workflows
                .list_workflows(with_token(&expired, pb::ListWorkflowsRequest {}))
                .await,
        );
        assert_eq!(code_, Code::Unauthenticated, "{message}");
        assert!(message.contains("expired"), "{message}");

        // Only hashes are stored: no column of any token row holds a secret.
        let rows = server
            .store()
            .connection()
            .query_all_raw(Statement::from_string(
                server.store().backend(),
                "SELECT id, hash, prefix, principal, roles, description, created_by FROM api_tokens",
            ))
            .await
            .unwrap();
        assert_eq!(rows.len(), 6);
        for row in rows {
            for col in [
                "id",
                "hash",
                "prefix",
                "principal",
                "roles",
                "description",
                "created_by",
            ] {
                let value: String = row.try_get("", col).unwrap();
                for secret in [BOOTSTRAP, pat.as_str(), dana.as_str(), expired.as_str()] {
                    assert!(!value.contains(&secret[3..]), "{col} holds a secret");
                }
            }
        }
        server.stop().await;

        // Restarting with the same bootstrap token creates nothing new.
        let server = TestServer::start_secure(&db, BOOTSTRAP).await;
        let listed = identity(&server)
            .await
            .list_tokens(with_token(
                BOOTSTRAP,
                pb::ListTokensRequest {
                    include_inactive: true,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let bootstraps = listed
            .tokens
            .iter()
            .filter(|t| t.principal == "bootstrap")
            .count();
        assert_eq!(bootstraps, 1, "{}", db.backend);
        server.stop().await;
    }
}

/// Replicas starting together on one PostgreSQL database with the same bootstrap token store it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_bootstrap_token() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (a, b) = tokio::join!(
        TestServer::start_secure(&db, BOOTSTRAP),
        TestServer::start_secure(&db, BOOTSTRAP)
    );
    let tokens = a.store().list_tokens(true).await.unwrap();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    a.stop().await;
    b.stop().await;
}

/// The RPC x role matrix, from the one table: every RPC of the contract has a row; a caller
/// without a token is refused everywhere; each role gets exactly what its row says (allowed:
/// past authorization, to the request's own validation; denied: `PermissionDenied`). The HTTP
/// routes of the same table likewise (401 without a token, 403 denied), and every unary RPC
/// called over HTTP with JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_for_every_role_follows_the_access_table() {
    use opsgate_domain::Access;
    use opsgate_server::auth::{ACCESS, Needs, needs};
    let rpcs = every_rpc();
    // RPC rows are `package.Service/Method`; HTTP rows `METHOD /path`.
    let (rpc_rows, http_rows): (Vec<_>, Vec<_>) = ACCESS
        .iter()
        .map(|(m, _)| *m)
        .partition(|m| !m.contains(' '));
    let mut tabled: Vec<String> = rpc_rows.into_iter().map(str::to_owned).collect();
    tabled.sort();
    assert_eq!(
        rpcs, tabled,
        "every RPC needs exactly one row in opsgate_server::auth::ACCESS"
    );

    let db = TestDb::sqlite();
    let server = TestServer::start_secure(&db, BOOTSTRAP).await;
    for rpc in &rpcs {
        assert_eq!(
            call_empty(&server.url, rpc, None).await,
            Code::Unauthenticated,
            "{rpc} without a token"
        );
    }
    let http = reqwest::Client::new();
    let call_http = |route: &str, token: Option<&str>| {
        let (method, path) = route.split_once(' ').unwrap();
        let mut request = http.request(
            method.parse().unwrap(),
            format!("{}{path}", server.http_url),
        );
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for route in &http_rows {
        assert_eq!(call_http(route, None).await, 401, "{route} without a token");
    }
    // Every unary RPC is also `POST /package.Service/Method` with JSON: the same table decides.
    let unary: Vec<&String> = rpcs.iter().filter(|r| !r.ends_with("/WatchGate")).collect();
    let call_json = |rpc: &str, token: Option<&str>| {
        let mut request = http
            .post(format!("{}/{rpc}", server.http_url))
            .header("content-type", "application/json")
            .body("{}");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for rpc in &unary {
        assert_eq!(
            call_json(rpc, None).await,
            401,
            "POST /{rpc} without a token"
        );
    }
    for role in Access::ALL {
        let token = token(
            &server,
            &format!("someone with role {role}"),
            &[role.as_str()],
        )
        .await;
        for rpc in &rpcs {
            let allowed = match needs(rpc).unwrap() {
                Needs::Read => true,
                Needs::OneOf(roles) => roles.contains(&role),
            };
            let got = call_empty(&server.url, rpc, Some(&token)).await;
            if allowed {
                assert!(
                    !matches!(got, Code::PermissionDenied | Code::Unauthenticated),
                    "{role} should pass {rpc}'s authorization, got {got:?}"
                );
            } else {
                assert_eq!(got, Code::PermissionDenied, "{role} calling {rpc}");
            }
        }
        for rpc in &unary {
            let allowed = match needs(rpc).unwrap() {
                Needs::Read => true,
                Needs::OneOf(roles) => roles.contains(&role),
            };
            let got = call_json(rpc, Some(&token)).await;
            if allowed {
                assert!(
                    !matches!(got, 401 | 403),
                    "{role} should pass POST /{rpc}, got {got}"
                );
            } else {
                assert_eq!(got, 403, "{role} calling POST /{rpc}");
            }
        }
        for route in &http_rows {
            let allowed = match needs(route).unwrap() {
                Needs::Read => true,
                Needs::OneOf(roles) => roles.contains(&role),
            };
            let got = call_http(route, Some(&token)).await;
            if allowed {
                assert!(
                    !matches!(got, 401 | 403),
                    "{role} should pass {route}, got {got}"
                );
            } else {
                assert_eq!(got, 403, "{role} calling {route}");
            }
        }
    }
    server.stop().await;
}

/// A workflow can name an approver in person (`approval: {any_of: [{person: Alex}]}`): Alex then
/// has a part in its transitions, so he reads the transition he must review (and reviews it);
/// someone with no part is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_named_in_person_by_the_workflow_reads_the_transition() {
    const NAMED: &str = "\
name: named-approver
deliverables:
  - {id: e, title: Security review, owner: project_manager, approval: {any_of: [{person: Alex}]}}
gate: {id: gate, title: Gate, needs: [e]}
";
    let db = TestDb::sqlite();
    let server = TestServer::start_secure(&db, BOOTSTRAP).await;
    let mut c: Clients = server.clients().await;
    c.workflows
        .register_workflow(with_token(
            BOOTSTRAP,
            pb::RegisterWorkflowRequest {
                source: NAMED.into(),
                file_name: "named-approver.yaml".into(),
            },
        ))
        .await
        .unwrap();
    let pat = token(&server, "Pat", &["project_manager"]).await;
    let alex = token(&server, "Alex", &["approver"]).await;
    let mallory = token(&server, "Mallory", &["approver"]).await;
    let t = c
        .transitions
        .start_transition(with_token(
            &pat,
            pb::StartTransitionRequest {
                workflow_name: "named-approver".into(),
                service_name: "ledger".into(),
                service_version: "1.0".into(),
                project_manager: "Pat".into(),
                service_manager: "Sam".into(),
                target_go_live: opsgate_tests::go_live(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .transition
        .unwrap();
    c.transitions
        .submit_deliverable(with_token(
            &pat,
            pb::SubmitDeliverableRequest {
                transition_id: t.id.clone(),
                deliverable_id: "e".into(),
                evidence: Some(pb::Evidence {
                    links: vec!["https://wiki.example/security".into()],
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap();
    let get = |token: &str| {
        with_token(
            token,
            pb::GetTransitionRequest {
                transition_id: t.id.clone(),
            },
        )
    };
    c.transitions.get_transition(get(&alex)).await.unwrap();
    for (who, listed) in [(&alex, 1), (&mallory, 0)] {
        let page = c
            .transitions
            .list_transitions(with_token(who, pb::ListTransitionsRequest::default()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.transitions.len(), listed);
    }
    let (code_, message) = code(c.transitions.get_transition(get(&mallory)).await);
    assert_eq!(code_, Code::PermissionDenied, "{message}");
    let reviewed = c
        .transitions
        .review_deliverable(with_token(
            &alex,
            pb::ReviewDeliverableRequest {
                transition_id: t.id.clone(),
                deliverable_id: "e".into(),
                decision: pb::ReviewDecision::Approve.into(),
                comment: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .transition
        .unwrap();
    assert_eq!(
        opsgate_tests::status_of(&reviewed, "e"),
        pb::NodeStatus::Approved
    );
    // The web page too: Alex's token as the sign-in cookie's credential.
    let page = reqwest::Client::new()
        .get(format!("{}/transitions/{}", server.http_url, t.id))
        .bearer_auth(&alex)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    server.stop().await;
}
