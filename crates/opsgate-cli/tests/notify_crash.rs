//! Notifications survive SIGKILL: `opsgate serve` is killed while its dispatcher is delivering a
//! backlog of notices to a slow webhook receiver, and restarted on the same database; every notice
//! committed before the kill reaches the receiver (at least once, with its webhook-id; a delivery
//! in flight at the kill may arrive twice, never under another id).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use opsgate_proto::v1 as pb;
use opsgate_tests::{Clients, acting};
use tokio::process::Child;

/// Deliveries answered 2xx, by webhook-id.
type Seen = Arc<Mutex<HashMap<String, u32>>>;

/// A receiver that takes 20 ms per call (so a backlog builds up) and counts webhook-ids.
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let keep = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap| {
            let keep = keep.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                *keep.lock().unwrap().entry(id).or_default() += 1;
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn serve(config: &Path) -> (Child, String) {
    opsgate_tests::spawn_serve(
        env!("CARGO_BIN_EXE_opsgate"),
        &["--config".as_ref(), config.as_os_str()],
    )
    .await
}

/// Runs one transition of `one` to an accepted handover: four notices.
async fn handover(c: &mut Clients, version: &str) {
    let t = opsgate_tests::start_one(c, "svc", version).await;
    opsgate_tests::submit(c, &t.id, "d", "Pat").await.unwrap();
    opsgate_tests::review(c, &t.id, "d", pb::ReviewDecision::Approve, "", "Dana")
        .await
        .unwrap();
    c.transitions
        .accept_handover(acting(
            "Sam",
            pb::AcceptHandoverRequest {
                transition_id: t.id,
                comment: String::new(),
            },
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_notice_is_delivered_across_a_sigkill() {
    let (hook, seen) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows).unwrap();
    std::fs::write(workflows.join("one.yaml"), opsgate_tests::ONE).unwrap();
    let config = dir.path().join("opsgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{}\"\n\
             workflows = \"workflows\"\ninsecure_dev = true\n\n\
             [notify]\nallow_loopback = true\n\n\
             [[notify.channels]]\nname = \"hooks\"\nkind = \"webhook\"\nurl = \"{hook}\"\n\
             concurrency = 2\n",
            dir.path().join("opsgate.db").display()
        ),
    )
    .unwrap();

    let (mut server, url) = serve(&config).await;
    let mut c = Clients::connect(&url).await;
    let transitions = 60;
    for n in 0..transitions {
        handover(&mut c, &format!("{n}")).await;
    }
    let expected = 4 * transitions;
    // Mid-run: some delivered, most still to go (two at a time, 20 ms each).
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill().await.unwrap();
    let before = seen.lock().unwrap().len();
    assert!(
        before < expected,
        "the kill came too late to test anything: {before} of {expected} already delivered"
    );

    let (_server, _url) = serve(&config).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        expected,
        "every committed notice delivered after the restart ({before} before the kill)"
    );
    assert!(
        !seen.contains_key(""),
        "every delivery carries a webhook-id"
    );
    // At least once: an attempt in flight at the kill may be repeated, with the same id.
    let twice = seen.values().filter(|&&n| n > 1).count();
    assert!(
        twice <= 4,
        "{twice} deliveries repeated; at most those in flight at the kill"
    );
    eprintln!("{before} delivered before the kill, {expected} after the restart, {twice} twice");
}
