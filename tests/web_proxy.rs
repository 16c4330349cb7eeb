//! Web sign-in behind an SSO reverse proxy, over real HTTP: the person a trusted proxy names in
//! its user header reads and acts on the pages (with a CSRF secret of their own), groups add
//! roles, the header from an untrusted address is ignored, a look-alike spelling is refused,
//! and a server told of a header without trusted addresses does not start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_proto::v1 as pb;
use opsgate_tests::{ONE, TestDb, TestServer, create_token};

const BOOTSTRAP: &str = "og_6b6b0c1b2a3948576a6b5c4d3e2f10011223344556677889900aabbccddeef12";

fn proxied(trusted: &[&str]) -> opsgate_server::config::AuthProxySection {
    opsgate_server::config::AuthProxySection {
        header: Some("X-Forwarded-User".into()),
        trusted: trusted.iter().map(|t| (*t).to_owned()).collect(),
        roles: None,
        groups_header: Some("X-Forwarded-Groups".into()),
        group_roles: [("transition-office".to_owned(), vec!["smo".to_owned()])].into(),
    }
}

async fn server(db: &TestDb, trusted: &[&str]) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one.yaml"), ONE).unwrap();
    let server = TestServer::start_config(
        db,
        opsgate_server::Config {
            workflows_dir: Some(dir.path().to_owned()),
            bootstrap_token: Some(BOOTSTRAP.to_owned()),
            auth_proxy: proxied(trusted),
            ..opsgate_server::Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        },
    )
    .await;
    (server, dir)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `value` of the `name=value` cookie among a response's `Set-Cookie` headers.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

fn csrf(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_person_a_trusted_proxy_names_reads_and_acts_on_the_pages() {
    let db = TestDb::sqlite();
    let (server, _dir) = server(&db, &["127.0.0.1/32", "::1/128"]).await;
    let pat_token = create_token(&server.url, BOOTSTRAP, "Pat", &["project_manager"]).await;
    let mut c = server.clients().await;
    let t = opsgate_tests::start_one_by(&mut c, &pat_token, "payroll", "7.0").await;
    let base = &server.http_url;
    let page = format!("{base}/transitions/{}", t.id);
    let web = http();

    // The proxy's person reads the board as themselves.
    let board = web
        .get(format!("{base}/"))
        .header("X-Forwarded-User", "Pat")
        .send()
        .await
        .unwrap();
    assert_eq!(board.status().as_u16(), 200);
    assert!(board.text().await.unwrap().contains("Pat"));

    // The transition page gives them a form secret cookie and a token derived from it.
    let shown = web
        .get(&page)
        .header("X-Forwarded-User", "Pat")
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status().as_u16(), 200);
    let form_cookie = set_cookie(&shown, "opsgate_form").expect("a form secret cookie");
    let html = shown.text().await.unwrap();
    assert!(html.contains("Submit 'D'"), "{html}");
    let token = csrf(&html);
    let fields = |token: &str| {
        vec![
            ("node".to_owned(), "d".to_owned()),
            ("links".to_owned(), "https://wiki.example/d".to_owned()),
            ("csrf".to_owned(), token.to_owned()),
        ]
    };
    // Without the cookie (a post from another site: SameSite=Strict keeps it home) the token
    // cannot be checked: refused, nothing stored.
    let forged = web
        .post(format!("{page}/submit"))
        .header("X-Forwarded-User", "Pat")
        .form(&fields(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    let other_secret = web
        .post(format!("{page}/submit"))
        .header("X-Forwarded-User", "Pat")
        .header("cookie", "opsgate_form=00112233445566778899aabbccddeeff")
        .form(&fields(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(other_secret.status().as_u16(), 403);
    let submitted = web
        .post(format!("{page}/submit"))
        .header("X-Forwarded-User", "Pat")
        .header("cookie", &form_cookie)
        .form(&fields(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status().as_u16(), 303);
    let events = c
        .transitions
        .list_events(opsgate_tests::bearer(
            &pat_token,
            pb::ListEventsRequest {
                transition_id: t.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    let last = events.last().unwrap();
    assert_eq!(last.actor, "Pat");
    assert_eq!(last.credential, "sso proxy (x-forwarded-user)");

    // Dana has no SMO group: the SMO-only audit through the JSON bridge is refused; with the
    // group mapped to smo it is served.
    let stalled = |groups: Option<&'static str>| {
        let mut request = web
            .post(format!("{base}/opsgate.v1.AuditService/ListStalled"))
            .header("X-Forwarded-User", "Dana")
            .header("content-type", "application/json")
            .body("{}");
        if let Some(groups) = groups {
            request = request.header("X-Forwarded-Groups", groups);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(stalled(None).await, 403);
    assert_eq!(stalled(Some("staff, transition-office")).await, 200);

    // A look-alike spelling of the header is refused outright.
    let look_alike = web
        .get(format!("{base}/"))
        .header("X_Forwarded_User", "Sam")
        .send()
        .await
        .unwrap();
    assert_eq!(look_alike.status().as_u16(), 400);
    assert!(look_alike.text().await.unwrap().contains("look-alike"));
    // An API token still wins over the header (pipelines behind the same proxy).
    let by_token = web
        .get(format!("{base}/me"))
        .header("X-Forwarded-User", "Sam")
        .bearer_auth(&pat_token)
        .send()
        .await
        .unwrap();
    assert!(by_token.text().await.unwrap().contains("Pat"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_header_from_an_untrusted_address_is_ignored() {
    let db = TestDb::sqlite();
    let (server, _dir) = server(&db, &["10.0.0.5/32"]).await;
    let response = http()
        .get(format!("{}/me", server.http_url))
        .header("X-Forwarded-User", "Pat")
        .send()
        .await
        .unwrap();
    // Nobody signed in: the page asks for sign-in.
    assert_eq!(response.status().as_u16(), 401);
    let gate = http()
        .get(format!("{}/api/v1/gates/payroll/1.0", server.http_url))
        .header("X-Forwarded-User", "bootstrap")
        .send()
        .await
        .unwrap();
    assert_eq!(gate.status().as_u16(), 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_header_without_trusted_addresses_keeps_the_server_from_starting() {
    let db = TestDb::sqlite();
    let refused = opsgate_server::start(opsgate_server::Config {
        http: Some("127.0.0.1:0".parse().unwrap()),
        auth_proxy: proxied(&[]),
        ..opsgate_server::Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(refused.contains("auth_proxy.trusted"), "{refused}");
}
