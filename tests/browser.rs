//! The web pages in a real browser: `tests/browser/handover.py` drives headless Chromium over
//! the DevTools protocol through a whole handover against this server (three people, each with
//! their own cookies: submit, request changes seen live on the other's open page, resubmit,
//! approve, accept; the board and /me at each step; an uploaded file downloaded by its hash;
//! escaping, a missing button, a forged POST and an untrusted proxy header refused). Runs when `OPSGATE_TEST_CHROMIUM` names a Chromium (`.ci/run` installs
//! Debian's and sets it); `OPSGATE_SCREENSHOTS=DIR` also saves screenshots there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_tests::{ONE, TestDb, TestServer, create_token};

const BOOTSTRAP: &str = "og_b00c0c1b2a3948576a6b5c4d3e2f10011223344556677889900aabbccddeef12";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_through_the_pages_in_chromium() {
    let Ok(chromium) = std::env::var("OPSGATE_TEST_CHROMIUM") else {
        eprintln!("OPSGATE_TEST_CHROMIUM is not set: the browser test is skipped");
        return;
    };
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one.yaml"), ONE).unwrap();
    let server = TestServer::start_config(
        &db,
        opsgate_server::Config {
            workflows_dir: Some(dir.path().to_owned()),
            bootstrap_token: Some(BOOTSTRAP.to_owned()),
            // Signing in through a proxy at a documentation address: the test's own requests,
            // from loopback, must not be believed.
            auth_proxy: opsgate_server::config::AuthProxySection {
                header: Some("X-Forwarded-User".to_owned()),
                trusted: vec!["192.0.2.0/24".to_owned()],
                ..Default::default()
            },
            ..opsgate_server::Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        },
    )
    .await;
    let pat = create_token(&server.url, BOOTSTRAP, "Pat", &["project_manager"]).await;
    let dana = create_token(&server.url, BOOTSTRAP, "Dana", &["approver"]).await;
    let sam = create_token(&server.url, BOOTSTRAP, "Sam", &["service_manager"]).await;
    let mut c = server.clients().await;
    let t = opsgate_tests::start_one_by(&mut c, &pat, "payroll", "7.0").await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/handover.py");
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(script)
        .args(["--chromium", &chromium, "--base", &server.http_url])
        .args([
            "--transition",
            &t.id,
            "--pat",
            &pat,
            "--dana",
            &dana,
            "--sam",
            &sam,
        ]);
    if let Ok(dir) = std::env::var("OPSGATE_SCREENSHOTS") {
        command.args(["--screenshots", &dir]);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(180), command.output())
        .await
        .expect("the browser test took over three minutes")
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "the browser test failed:\n{report}");
    server.stop().await;
}
