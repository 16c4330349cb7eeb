//! Several `opsgate serve` replicas on one PostgreSQL database: start-up work happens once and
//! concurrent reviews through different replicas change state exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_proto::v1 as pb;
use opsgate_store::{ConnectOptions, Store};
use opsgate_tests::{TestDb, TestServer, review, status_of, submit};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_migrate_and_register_once_and_review_exactly_once() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped: set OPSGATE_TEST_POSTGRES_URL to run the replica tests");
        return;
    };
    // Both replicas start together on an empty database: migrations and workflow loading race.
    let (a, b) = tokio::join!(TestServer::start(&db), TestServer::start(&db));
    let mut ca = a.clients().await;
    let mut cb = b.clients().await;

    for c in [&mut ca, &mut cb] {
        let listed = c
            .workflows
            .list_workflows(pb::ListWorkflowsRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.workflows.len(), 3);
        assert!(
            listed.workflows.iter().all(|w| w.latest_version == 1),
            "{listed:?}"
        );
    }

    let t = opsgate_tests::start(&mut ca, "7.0").await;
    submit(&mut cb, &t.id, "sla", "Pat").await.unwrap();

    // Twelve reviewers, alternating replicas, approve the same submission at once.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let mut c = if i % 2 == 0 { ca.clone() } else { cb.clone() };
        let id = t.id.clone();
        tasks.push(tokio::spawn(async move {
            review(
                &mut c,
                &id,
                "sla",
                pb::ReviewDecision::Approve,
                "",
                &format!("reviewer {i}"),
            )
            .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(status) => {
                assert_eq!(
                    status.code(),
                    Code::FailedPrecondition,
                    "{}",
                    status.message()
                );
                assert_eq!(
                    status.message(),
                    "deliverable 'sla' cannot be reviewed: it is approved"
                );
            }
        }
    }
    assert_eq!(won, 1);

    let now = opsgate_tests::get(&mut cb, &t.id).await;
    assert_eq!(status_of(&now, "sla"), pb::NodeStatus::Approved);
    assert_eq!(
        now.nodes
            .iter()
            .find(|n| n.id == "sla")
            .unwrap()
            .approved_by
            .len(),
        1
    );
    a.stop().await;
    b.stop().await;

    let store = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
    let approvals = store
        .events(&t.id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind.name() == "deliverable_approved")
        .count();
    assert_eq!(approvals, 1);
    store.close().await.unwrap();
}
