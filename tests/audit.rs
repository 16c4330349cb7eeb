//! The tamper-evident log: events edited, removed, inserted, reordered or cut off behind the
//! server's back, directly in the database (SQLite and PostgreSQL), are each named by
//! `VerifyLog` at the first broken event; an untouched log verifies; the migration that chains
//! an existing database computes exactly the chains the server writes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_proto::v1 as pb;
use opsgate_proto::v1::audit_service_client::AuditServiceClient;
use opsgate_tests::{Clients, TestDb, TestServer, acting, review, start, submit};
use sea_orm::{ConnectionTrait, Database};

/// A transition with a few events: started, two deliverables submitted and approved.
async fn busy_transition(c: &mut Clients, version: &str) -> String {
    let id = start(c, version).await.id;
    for (d, approver) in [("sla", "Owen"), ("support-contacts", "Dana")] {
        submit(c, &id, d, "Pat").await.unwrap();
        review(c, &id, d, pb::ReviewDecision::Approve, "ok", approver)
            .await
            .unwrap();
    }
    id
}

async fn verify(url: &str, only: &str) -> pb::VerifyLogResponse {
    AuditServiceClient::connect(url.to_owned())
        .await
        .unwrap()
        .verify_log(acting(
            "auditor",
            pb::VerifyLogRequest {
                transition_id: only.to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_tampering_is_named_at_its_first_broken_event() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let mut ids = Vec::new();
        for v in ["1", "2", "3", "4", "5", "6", "7"] {
            ids.push(busy_transition(&mut c, v).await);
        }
        let whole = verify(&server.url, "").await;
        assert!(whole.breaks.is_empty(), "{:?}", whole.breaks);
        assert_eq!(whole.transitions_checked, 7);
        let per = whole.events_checked / 7;
        assert!(per >= 8, "{per} events a transition");

        let conn = Database::connect(&db.url).await.unwrap();
        let sql = |s: String| {
            let conn = &conn;
            async move {
                conn.execute_unprepared(&s)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        };
        // Edited: a comment changed in place.
        sql(format!(
            "UPDATE events SET payload = replace(payload, '\"ok\"', '\"fine\"') \
             WHERE transition_id = '{}' AND kind = 'deliverable_approved' AND payload LIKE '%sla%'",
            ids[0]
        ))
        .await;
        // Edited: who acted.
        sql(format!(
            "UPDATE events SET actor = 'Mallory' WHERE transition_id = '{}' AND seq = 1",
            ids[1]
        ))
        .await;
        // Removed from the middle.
        sql(format!(
            "DELETE FROM events WHERE transition_id = '{}' AND seq = 4",
            ids[2]
        ))
        .await;
        // Inserted in the middle: later events shifted up to make room, a copy of event 2 at 3.
        let t = &ids[3];
        sql(format!(
            "UPDATE events SET seq = seq + 1000 WHERE transition_id = '{t}' AND seq >= 3"
        ))
        .await;
        sql(format!(
            "UPDATE events SET seq = seq - 999 WHERE transition_id = '{t}' AND seq >= 1000"
        ))
        .await;
        sql(format!(
            "INSERT INTO events (transition_id, seq, kind, actor, at, payload, attribution, hash) \
             SELECT transition_id, 3, kind, actor, at, payload, attribution, hash FROM events \
             WHERE transition_id = '{t}' AND seq = 2"
        ))
        .await;
        sql(format!(
            "UPDATE transitions SET seq = seq + 1 WHERE id = '{t}'"
        ))
        .await;
        // Reordered: events 5 and 6 swapped.
        let t = &ids[4];
        sql(format!(
            "UPDATE events SET seq = -5 WHERE transition_id = '{t}' AND seq = 5"
        ))
        .await;
        sql(format!(
            "UPDATE events SET seq = 5 WHERE transition_id = '{t}' AND seq = 6"
        ))
        .await;
        sql(format!(
            "UPDATE events SET seq = 6 WHERE transition_id = '{t}' AND seq = -5"
        ))
        .await;
        // Cut off: the last event removed.
        sql(format!(
            "DELETE FROM events WHERE transition_id = '{0}' AND seq = (SELECT MAX(seq) FROM events WHERE transition_id = '{0}')",
            ids[5]
        ))
        .await;
        conn.close().await.ok();

        let report = verify(&server.url, "").await;
        let found: Vec<(usize, u64, &str)> = report
            .breaks
            .iter()
            .map(|b| {
                let which = ids.iter().position(|id| id == &b.transition_id).unwrap();
                (which, b.seq, b.kind.as_str())
            })
            .collect();
        let edited_at = {
            // The SLA's approval: the event after its submission.
            let export = AuditServiceClient::connect(server.url.clone())
                .await
                .unwrap()
                .export_events(acting(
                    "auditor",
                    pb::ExportEventsRequest {
                        transition_id: ids[6].clone(),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .events;
            export
                .iter()
                .find(|e| e.kind == "deliverable_approved" && e.payload_json.contains("sla"))
                .unwrap()
                .seq
        };
        assert_eq!(
            found,
            vec![
                (0, edited_at, "edited"),
                (1, 1, "edited"),
                (2, 4, "removed"),
                (3, 3, "inserted_or_reordered"),
                (4, 5, "inserted_or_reordered"),
                (5, per, "truncated"),
            ],
            "{} {:#?}",
            db.backend,
            report.breaks
        );
        // One transition at a time, and an untouched one is whole.
        assert!(verify(&server.url, &ids[6]).await.breaks.is_empty());
        let one = verify(&server.url, &ids[2]).await;
        assert_eq!(one.breaks.len(), 1);
        assert!(
            one.breaks[0].message.contains("event 4 is missing"),
            "{}",
            one.breaks[0].message
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_chains_an_existing_log_exactly_as_the_server_does() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let id = busy_transition(&mut c, "1").await;
        server.stop().await;

        let conn = Database::connect(&db.url).await.unwrap();
        let hashes = |conn: sea_orm::DatabaseConnection| async move {
            let rows = conn
                .query_all_raw(sea_orm::Statement::from_string(
                    conn.get_database_backend(),
                    "SELECT hash FROM events ORDER BY transition_id, seq".to_owned(),
                ))
                .await
                .unwrap();
            let out: Vec<String> = rows
                .iter()
                .map(|r| r.try_get("", "hash").unwrap())
                .collect();
            (conn, out)
        };
        let (conn, written) = hashes(conn).await;
        // A database from before the chain: the chain's migration (and the stall index after
        // it) undone, then applied again.
        opsgate_tests::migrate_again_since(&conn, "m20261124_000007_event_chain").await;
        let (conn, migrated) = hashes(conn).await;
        conn.close().await.ok();
        assert_eq!(written, migrated, "{}", db.backend);

        let server = TestServer::start(&db).await;
        let report = verify(&server.url, &id).await;
        assert!(report.breaks.is_empty(), "{:?}", report.breaks);
        server.stop().await;
    }
}

/// The stalled list over gRPC on a clock the test moves: an idle transition names the people its
/// open work waits on, an overdue deliverable its owner, an unreviewed one its approver and the
/// deputy standing in; filters by person and service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stalled_list_names_who_must_act() {
    for db in TestDb::all().await {
        let time = opsgate_tests::MovingClock::default();
        let server = TestServer::start_config(
            &db,
            opsgate_server::Config {
                workflows_dir: Some(opsgate_tests::workflows_dir()),
                insecure_dev: true,
                clock: time.clock(),
                ..opsgate_server::Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
            },
        )
        .await;
        let mut c = server.clients().await;
        let id = start(&mut c, "1.0").await.id;
        let stalled = |request: pb::ListStalledRequest| {
            let url = server.url.clone();
            async move {
                AuditServiceClient::connect(url)
                    .await
                    .unwrap()
                    .list_stalled(acting("smo", request))
                    .await
                    .unwrap()
                    .into_inner()
            }
        };
        assert!(
            stalled(pb::ListStalledRequest::default())
                .await
                .items
                .is_empty()
        );

        // Dana goes on leave; Dee stands in. The service desk lead's deliverable is submitted.
        c.identity
            .add_delegation(acting(
                "Dana",
                pb::AddDelegationRequest {
                    to: "Dee".into(),
                    starts_at: Some(prost_types::Timestamp {
                        seconds: chrono::Utc::now().timestamp() - 60,
                        nanos: 0,
                    }),
                    ends_at: Some(prost_types::Timestamp {
                        seconds: chrono::Utc::now().timestamp() + 30 * 86_400,
                        nanos: 0,
                    }),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
        submit(&mut c, &id, "support-contacts", "Pat")
            .await
            .unwrap();
        // Eight days later, nothing has happened.
        time.set_days(8);
        let list = stalled(pb::ListStalledRequest::default()).await;
        let kinds: Vec<(&str, &str)> = list
            .items
            .iter()
            .map(|i| (i.kind.as_str(), i.node_id.as_str()))
            .collect();
        assert!(kinds.contains(&("idle", "")), "{kinds:?}");
        let waiting = list
            .items
            .iter()
            .find(|i| i.kind == "awaiting_review")
            .unwrap_or_else(|| panic!("{kinds:?}"));
        assert_eq!(waiting.node_id, "support-contacts");
        assert_eq!(waiting.must_act, ["Dana", "Dee"]);
        assert_eq!(waiting.days_late, 8);
        let idle = list.items.iter().find(|i| i.kind == "idle").unwrap();
        assert!(
            idle.must_act.contains(&"Pat".to_owned()),
            "{:?}",
            idle.must_act
        );

        // Seventy-five days in, the SLA (due 20 days before go-live, 90 days out) is overdue.
        time.set_days(75);
        let list = stalled(pb::ListStalledRequest {
            person: "Pat".into(),
            ..Default::default()
        })
        .await;
        let sla = list
            .items
            .iter()
            .find(|i| i.kind == "overdue" && i.node_id == "sla")
            .unwrap_or_else(|| panic!("{:#?}", list.items));
        assert_eq!(sla.must_act, ["Pat"]);
        assert!(
            list.items
                .iter()
                .all(|i| i.must_act.contains(&"Pat".to_owned()))
        );
        let none = stalled(pb::ListStalledRequest {
            service: "billing".into(),
            ..Default::default()
        })
        .await;
        assert!(none.items.is_empty());

        // Not idle (Dee approves today for Dana), yet the SLA is overdue: the transition is
        // found by its stall index, not by idleness.
        review(
            &mut c,
            &id,
            "support-contacts",
            pb::ReviewDecision::Approve,
            "",
            "Dee",
        )
        .await
        .unwrap_err(); // Dee's delegation ended at day 30
        review(
            &mut c,
            &id,
            "support-contacts",
            pb::ReviewDecision::Approve,
            "",
            "Dana",
        )
        .await
        .unwrap();
        let list = stalled(pb::ListStalledRequest::default()).await;
        assert!(
            list.items.iter().all(|i| i.kind == "overdue"),
            "{:#?}",
            list.items
        );
        assert!(
            list.items.iter().any(|i| i.node_id == "sla"),
            "{:#?}",
            list.items
        );
        // The SLA submitted at day 75 and not reviewed by day 81: found by its submission time.
        submit(&mut c, &id, "sla", "Pat").await.unwrap();
        time.set_days(81);
        let list = stalled(pb::ListStalledRequest::default()).await;
        let kinds: Vec<(&str, &str)> = list
            .items
            .iter()
            .map(|i| (i.kind.as_str(), i.node_id.as_str()))
            .collect();
        assert!(kinds.contains(&("awaiting_review", "sla")), "{kinds:?}");
        assert!(!kinds.iter().any(|(k, _)| *k == "idle"), "{kinds:?}");
        assert_eq!(list.transitions_checked, 1);
        server.stop().await;
    }
}
