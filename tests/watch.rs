//! `GateService.WatchGate`: a waiting pipeline hears of the gate opening within a second, on
//! SQLite and PostgreSQL, and through another replica on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use opsgate_proto::v1 as pb;
use opsgate_tests::{Clients, TestDb, TestServer, all_but_the_last_approval, approver_of, review};
use tonic::Code;

fn watch_request(id: &str, until_accepted: bool) -> pb::WatchGateRequest {
    pb::WatchGateRequest {
        target: Some(pb::watch_gate_request::Target::TransitionId(id.to_owned())),
        until_accepted,
    }
}

/// The next decision of `stream`, within `limit`.
async fn next(
    stream: &mut tonic::Streaming<pb::CheckGateResponse>,
    limit: Duration,
) -> Option<pb::CheckGateResponse> {
    tokio::time::timeout(limit, stream.message())
        .await
        .expect("a decision in time")
        .unwrap()
}

/// The last approval made through `acting`, watched through `watching`: the open decision
/// arrives within a second, then the stream ends.
async fn open_reaches_the_watcher(watching: &mut Clients, acting: &mut Clients, version: &str) {
    let t = opsgate_tests::start(acting, version).await;
    let last = all_but_the_last_approval(acting, &t.id).await;

    let mut stream = watching
        .gates
        .watch_gate(watch_request(&t.id, false))
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut stream, Duration::from_secs(5)).await.unwrap();
    assert!(!first.open, "{first:?}");
    // The last deliverable, and the readiness review that follows it on its own.
    assert_eq!(first.blockers[0].node_id, last, "{first:?}");
    assert_eq!(first.blockers.len(), 2, "{first:?}");

    // Some time passes with nothing to tell: nothing is sent.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.message())
            .await
            .is_err(),
        "a decision sent without a change"
    );

    let approved = Instant::now();
    review(
        acting,
        &t.id,
        &last,
        pb::ReviewDecision::Approve,
        "",
        approver_of(&last),
    )
    .await
    .unwrap();
    let open = next(&mut stream, Duration::from_secs(5)).await.unwrap();
    let took = approved.elapsed();
    assert!(open.open, "{open:?}");
    assert_eq!(open.state, pb::GateState::Open as i32);
    assert!(open.blockers.is_empty());
    assert!(
        took < Duration::from_secs(1),
        "the open gate reached the watcher {took:?} after the approval"
    );
    // Open is what was waited for: the stream ends.
    assert!(next(&mut stream, Duration::from_secs(5)).await.is_none());

    // Waiting for the acceptance: open now, then accepted when the service manager accepts.
    let mut stream = watching
        .gates
        .watch_gate(watch_request(&t.id, true))
        .await
        .unwrap()
        .into_inner();
    let now = next(&mut stream, Duration::from_secs(5)).await.unwrap();
    assert_eq!(now.state, pb::GateState::Open as i32);
    acting
        .transitions
        .accept_handover(acting.as_(
            "Sam",
            pb::AcceptHandoverRequest {
                transition_id: t.id.clone(),
                comment: String::new(),
            },
        ))
        .await
        .unwrap();
    let accepted = next(&mut stream, Duration::from_secs(1)).await.unwrap();
    assert_eq!(accepted.state, pb::GateState::Accepted as i32);
    assert!(next(&mut stream, Duration::from_secs(5)).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_hears_the_gate_open_within_a_second() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let mut w = server.clients().await;
        open_reaches_the_watcher(&mut w, &mut c, "9.0").await;

        // By service and version, an open gate answers once and ends.
        let mut stream = w
            .gates
            .watch_gate(pb::WatchGateRequest {
                target: Some(pb::watch_gate_request::Target::Service(pb::ServiceRef {
                    name: "payroll".into(),
                    version: "9.0".into(),
                })),
                until_accepted: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            next(&mut stream, Duration::from_secs(5))
                .await
                .unwrap()
                .open
        );
        assert!(next(&mut stream, Duration::from_secs(5)).await.is_none());

        // Bad targets are refused before any stream.
        let err = w
            .gates
            .watch_gate(pb::WatchGateRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        let err = w
            .gates
            .watch_gate(watch_request("01900000-0000-7000-8000-000000000000", false))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_on_one_replica_hears_an_approval_made_through_another() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped: set OPSGATE_TEST_POSTGRES_URL to run the replica tests");
        return;
    };
    let a = TestServer::start(&db).await;
    let b = TestServer::start(&db).await;
    let mut ca = a.clients().await;
    let mut cb = b.clients().await;
    open_reaches_the_watcher(&mut ca, &mut cb, "9.1").await;
    a.stop().await;
    b.stop().await;
}
