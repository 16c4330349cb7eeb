//! The storage contract, run against every backend: versioning, uniqueness, paging, atomicity, exactly-once reviews.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::NaiveDate;
use opsgate_domain::{
    Actor, Command, Evidence, NodeStatus, Participants, ReviewDecision, TransitionState,
};
use opsgate_store::{ConnectOptions, Error, NewTransition, Store};
use opsgate_tests::{TestDb, workflows_dir};

fn standard_source() -> String {
    std::fs::read_to_string(workflows_dir().join("standard-transition.yaml")).unwrap()
}

fn actor(name: &str) -> Actor {
    Actor::parse(name).unwrap()
}

fn new_transition(service_version: &str) -> NewTransition {
    NewTransition {
        workflow_name: "standard-transition".into(),
        workflow_version: None,
        service_name: "payroll".into(),
        service_version: service_version.into(),
        project_manager: actor("Pat"),
        service_manager: actor("Sam"),
        target_go_live: opsgate_tests::go_live().parse::<NaiveDate>().unwrap(),
        participants: opsgate_tests::payroll_participants()
            .into_iter()
            .map(|p| {
                (
                    opsgate_domain::RoleName::parse(&p.role).unwrap(),
                    p.people.iter().map(|n| actor(n)).collect(),
                )
            })
            .collect::<Participants>(),
        allow_past_go_live: false,
    }
}

fn submit(node: &str) -> Command {
    Command::Submit {
        node: node.into(),
        evidence: Evidence::parse(vec!["https://x".into()], String::new()).unwrap(),
    }
}

fn approve(node: &str) -> Command {
    Command::Review {
        node: node.into(),
        decision: ReviewDecision::Approve,
        comment: String::new(),
    }
}

/// Starts payroll 1.0 and submits its SLA as Pat; returns the transition id.
async fn start_and_submit_sla(store: &Store) -> String {
    let id = store
        .start_transition(new_transition("1.0"), actor("Pat"))
        .await
        .unwrap()
        .id;
    store
        .execute(&id, submit("sla"), actor("Pat"))
        .await
        .unwrap();
    id
}

/// [`start_and_submit_sla`], then the SLA approved by Olga; returns the transition.
async fn start_and_approve_sla(store: &Store) -> opsgate_store::TransitionView {
    let id = start_and_submit_sla(store).await;
    store
        .execute(&id, approve("sla"), actor("Olga"))
        .await
        .unwrap()
}

/// The deliverables of `view` that are open for submission, in workflow order.
fn open_deliverables(view: &opsgate_store::TransitionView) -> Vec<String> {
    view.workflow
        .workflow
        .nodes()
        .iter()
        .zip(&view.state.nodes)
        .filter(|(n, s)| {
            s.status == NodeStatus::Open
                && matches!(n.kind, opsgate_domain::NodeKind::Deliverable(_))
        })
        .map(|(n, _)| n.id.to_string())
        .collect()
}

/// The stored event log of `view`'s transition has one event per `seq` and replays to its state.
async fn assert_log_replays_to(store: &Store, view: &opsgate_store::TransitionView) {
    let events = store.events(&view.id).await.unwrap();
    assert_eq!(events.len() as u64, view.state.seq);
    assert_eq!(
        TransitionState::replay(&view.workflow.workflow, &events).unwrap(),
        view.state
    );
}

async fn store(db: &TestDb) -> Store {
    store_with(ConnectOptions::new(&db.url)).await
}

/// A store connected with `options`, the standard workflow registered.
async fn store_with(options: ConnectOptions) -> Store {
    let store = Store::connect(options).await.unwrap();
    store
        .register_workflow(
            "standard-transition.yaml",
            &standard_source(),
            &actor("Smo"),
        )
        .await
        .unwrap();
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_versions_workflows_by_content() {
    for db in TestDb::all().await {
        let store = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
        let source = standard_source();
        let first = store
            .register_workflow("a.yaml", &source, &actor("Smo"))
            .await
            .unwrap();
        assert!(first.created);
        assert_eq!(first.record.version, 1);
        let same = store
            .register_workflow("a.yaml", &source, &actor("Smo"))
            .await
            .unwrap();
        assert!(!same.created);
        assert_eq!(same.record.version, 1);
        let changed = format!("{source}\n# a comment is a change of source\n");
        let second = store
            .register_workflow("a.yaml", &changed, &actor("Smo"))
            .await
            .unwrap();
        assert!(second.created);
        assert_eq!(second.record.version, 2);
        // Going back to the first text is a new version too: versions only grow.
        let third = store
            .register_workflow("a.yaml", &source, &actor("Smo"))
            .await
            .unwrap();
        assert_eq!(third.record.version, 3);
        assert_eq!(
            store
                .get_workflow("standard-transition", Some(2))
                .await
                .unwrap()
                .source,
            changed
        );
        assert!(matches!(
            store.get_workflow("standard-transition", Some(9)).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            store.get_workflow("nope", None).await,
            Err(Error::NotFound(_))
        ));
        let listed = store.list_workflows().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].latest_version, 3);
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_transition_per_service_version() {
    for db in TestDb::all().await {
        let store = store(&db).await;
        store
            .start_transition(new_transition("1.0"), actor("Pat"))
            .await
            .unwrap();
        let again = store
            .start_transition(new_transition("1.0"), actor("Pat"))
            .await;
        assert!(
            matches!(again, Err(Error::AlreadyExists(_))),
            "{}: {again:?}",
            db.backend
        );
        store
            .start_transition(new_transition("1.1"), actor("Pat"))
            .await
            .unwrap();
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_page_oldest_first_without_gaps() {
    for db in TestDb::all().await {
        let store = store(&db).await;
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                store
                    .start_transition(new_transition(&format!("1.{i}")), actor("Pat"))
                    .await
                    .unwrap()
                    .id,
            );
        }
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = store.list_transitions(2, token.as_deref()).await.unwrap();
            pages += 1;
            seen.extend(page.transitions.iter().map(|t| t.id.clone()));
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, ids, "{}", db.backend);
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_writes_nothing_and_the_log_replays_to_the_state() {
    for db in TestDb::all().await {
        let store = store(&db).await;
        let id = start_and_submit_sla(&store).await;
        let before = store.get_transition(&id).await.unwrap().state;
        let events_before = store.events(&id).await.unwrap();
        let refused = store.execute(&id, submit("runbook"), actor("Pat")).await;
        assert!(matches!(refused, Err(Error::Domain(_))), "{refused:?}");
        assert_eq!(store.get_transition(&id).await.unwrap().state, before);
        assert_eq!(store.events(&id).await.unwrap(), events_before);

        let view = store
            .execute(&id, approve("sla"), actor("Olga"))
            .await
            .unwrap();
        let events = store.events(&id).await.unwrap();
        assert_eq!(events.len() as u64, view.state.seq);
        assert_eq!(events.last().unwrap().actor.as_str(), "Olga");
        let replayed = TransitionState::replay(&view.workflow.workflow, &events).unwrap();
        assert_eq!(
            replayed,
            store.get_transition(&id).await.unwrap().state,
            "{}",
            db.backend
        );
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reviews_of_one_deliverable_change_state_exactly_once() {
    for db in TestDb::all().await {
        let store = Arc::new(store(&db).await);
        let id = start_and_submit_sla(&store).await;
        let reviewers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    store
                        .execute(&id, approve("sla"), actor(&format!("reviewer {i}")))
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for r in reviewers {
            match r.await.unwrap() {
                Ok(_) => won += 1,
                Err(Error::Domain(opsgate_domain::Error::FailedPrecondition(m))) => {
                    assert_eq!(m, "deliverable 'sla' cannot be reviewed: it is approved");
                }
                Err(e) => panic!("{}: unexpected {e}", db.backend),
            }
        }
        assert_eq!(won, 1, "{}", db.backend);
        let approvals = store
            .events(&id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind.name() == "deliverable_approved")
            .count();
        assert_eq!(approvals, 1);
        let view = store.get_transition(&id).await.unwrap();
        let sla = view.workflow.workflow.position("sla").unwrap();
        assert_eq!(view.state.nodes[sla].status, NodeStatus::Approved);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_sees_what_another_store_wrote_to_the_same_database() {
    for db in TestDb::all().await {
        let a = store(&db).await;
        let b = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
        let id = a
            .start_transition(new_transition("1.0"), actor("Pat"))
            .await
            .unwrap()
            .id;
        // `a` has the started state cached; `b` moves the transition on behind its back.
        let cached = a.get_transition(&id).await.unwrap();
        b.execute(&id, submit("sla"), actor("Pat")).await.unwrap();
        let seen = a.get_transition(&id).await.unwrap();
        assert_eq!(seen.state.seq, cached.state.seq + 1, "{}", db.backend);
        // A decision by `a` starts from the stored state: approving needs b's submission.
        let view = a.execute(&id, approve("sla"), actor("Olga")).await.unwrap();
        assert_log_replays_to(&a, &view).await;
        b.close().await.unwrap();
        a.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusive_sqlite_store_keeps_a_second_one_out_and_its_writes_are_guarded() {
    let db = TestDb::sqlite();
    let mut options = ConnectOptions::new(&db.url);
    options.exclusive = true;
    let owner = Store::connect(options.clone()).await.unwrap();
    owner
        .register_workflow(
            "standard-transition.yaml",
            &standard_source(),
            &actor("Smo"),
        )
        .await
        .unwrap();
    options.busy_timeout = std::time::Duration::from_millis(200);
    let second = Store::connect(options).await;
    let Err(Error::Unavailable(message)) = second else {
        panic!("a second exclusive store opened: {second:?}");
    };
    assert!(
        message.contains("is in use by another opsgate server"),
        "{message}"
    );

    // A non-exclusive writer behind the owner's back (never done by opsgate itself): the owner's
    // cached state is stale, its guarded write notices, and it decides again on the stored state.
    let id = owner
        .start_transition(new_transition("1.0"), actor("Pat"))
        .await
        .unwrap()
        .id;
    let intruder = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
    intruder
        .execute(&id, submit("sla"), actor("Pat"))
        .await
        .unwrap();
    let view = owner
        .execute(&id, approve("sla"), actor("Olga"))
        .await
        .unwrap();
    assert_log_replays_to(&owner, &view).await;

    // Again, but the owner's decision on its stale state succeeds: the write's seq guard finds the
    // row moved on, and the owner decides again on the stored state.
    let open = open_deliverables(&view);
    assert!(open.len() >= 2, "{open:?}");
    intruder
        .execute(
            &id,
            submit(&open[0]),
            actor(opsgate_tests::owner_of(&open[0])),
        )
        .await
        .unwrap();
    let view = owner
        .execute(
            &id,
            submit(&open[1]),
            actor(opsgate_tests::owner_of(&open[1])),
        )
        .await
        .unwrap();
    assert_eq!(
        open_deliverables(&view),
        open[2..].to_vec(),
        "both submissions are in the state"
    );
    assert_log_replays_to(&owner, &view).await;
    intruder.close().await.unwrap();
    owner.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_writers_on_many_transitions_all_commit_in_order() {
    for db in TestDb::all().await {
        let store = Arc::new(store(&db).await);
        let writers: Vec<_> = (0..24)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let id = store
                        .start_transition(new_transition(&format!("1.{i}")), actor("Pat"))
                        .await?
                        .id;
                    store.execute(&id, submit("sla"), actor("Pat")).await?;
                    // Refused (already submitted and not yet reviewed): must not disturb the others.
                    let refused = store.execute(&id, submit("sla"), actor("Pat")).await;
                    assert!(matches!(refused, Err(Error::Domain(_))), "{refused:?}");
                    store.execute(&id, approve("sla"), actor("Olga")).await?;
                    Ok::<_, Error>(id)
                })
            })
            .collect();
        for w in writers {
            let id = w.await.unwrap().unwrap();
            let view = store.get_transition(&id).await.unwrap();
            assert_log_replays_to(&store, &view).await;
            let sla = view.workflow.workflow.position("sla").unwrap();
            assert_eq!(view.state.nodes[sla].status, NodeStatus::Approved);
        }
        let reopened = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
        assert_eq!(
            reopened
                .list_transitions(100, None)
                .await
                .unwrap()
                .transitions
                .len(),
            24
        );
        reopened.close().await.unwrap();
    }
}

/// The rows of `node_states` of transition `id`: `(node, status, state JSON, updated_at)`, by
/// node.
async fn node_state_rows(
    conn: &impl sea_orm::ConnectionTrait,
    id: &str,
) -> Vec<(String, String, String, chrono::DateTime<chrono::Utc>)> {
    use opsgate_store::entities::node_states;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    node_states::Entity::find()
        .filter(node_states::Column::TransitionId.eq(id))
        .order_by_asc(node_states::Column::NodeId)
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.node_id, r.status, r.detail, r.updated_at))
        .collect()
}

/// A node state light enough for the row's snapshot is written there and nowhere else (no
/// `node_states` row: one page a write less); a row from before the snapshot (no `nodes`, every
/// node in `node_states`) reads from `node_states`, and its next write gives it a snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_node_states_live_in_the_row_snapshot_and_old_rows_read_from_node_states() {
    use opsgate_store::entities::node_states;
    use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
    for db in TestDb::all().await {
        let store = store(&db).await;
        let view = start_and_approve_sla(&store).await;
        let id = view.id.clone();
        assert_eq!(
            node_state_rows(store.connection(), &id).await,
            vec![],
            "{}",
            db.backend
        );

        // The row as a version before the snapshot left it.
        let rows = view
            .workflow
            .workflow
            .nodes()
            .iter()
            .zip(&view.state.nodes)
            .map(|(node, state)| node_states::ActiveModel {
                transition_id: Set(id.clone()),
                node_id: Set(node.id.to_string()),
                status: Set(state.status.as_str().to_owned()),
                detail: Set(serde_json::to_string(state).unwrap()),
                updated_at: Set(state.updated_at),
            });
        node_states::Entity::insert_many(rows)
            .exec(store.connection())
            .await
            .unwrap();
        store
            .connection()
            .execute_unprepared(&format!(
                "UPDATE transitions SET nodes = NULL WHERE id = '{id}'"
            ))
            .await
            .unwrap();
        store.close().await.unwrap();
        let old = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
        assert_eq!(
            old.get_transition(&id).await.unwrap().state,
            view.state,
            "{}",
            db.backend
        );

        // Its next write gives it a snapshot, which every store reads.
        let open = open_deliverables(&view);
        let next = old
            .execute(&id, submit(&open[0]), actor("Pat"))
            .await
            .unwrap();
        let reopened = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
        let row = reopened
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                reopened.backend(),
                format!("SELECT nodes FROM transitions WHERE id = '{id}'"),
            ))
            .await
            .unwrap()
            .unwrap();
        let nodes: Option<String> = row.try_get("", "nodes").unwrap();
        let snapshot: Vec<Option<serde_json::Value>> =
            serde_json::from_str(&nodes.unwrap()).unwrap();
        assert!(snapshot.iter().all(Option::is_some), "{snapshot:?}");
        assert_eq!(
            reopened.get_transition(&id).await.unwrap().state,
            next.state
        );
        for s in [old, reopened] {
            s.close().await.unwrap();
        }
    }
}

/// A node holding a lot of evidence is left out of the row's snapshot (`null` there) and read
/// from `node_states`: writes to a transition full of evidence stay small, and every store reads
/// the same state, equal to the replay of the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_node_states_stay_out_of_the_row_snapshot_and_read_back_whole() {
    use sea_orm::{ConnectionTrait, Statement};
    for db in TestDb::all().await {
        let store = store(&db).await;
        let id = store
            .start_transition(new_transition("1.0"), actor("Pat"))
            .await
            .unwrap()
            .id;
        let heavy = Command::Submit {
            node: "sla".into(),
            evidence: Evidence::parse(vec![], "x".repeat(60_000)).unwrap(),
        };
        store.execute(&id, heavy, actor("Pat")).await.unwrap();
        let view = store
            .execute(&id, submit("support-contacts"), actor("Pat"))
            .await
            .unwrap();
        let row = store
            .connection()
            .query_one_raw(Statement::from_string(
                store.backend(),
                format!("SELECT nodes FROM transitions WHERE id = '{id}'"),
            ))
            .await
            .unwrap()
            .unwrap();
        let snapshot: String = row.try_get("", "nodes").unwrap();
        assert!(
            snapshot.len() < 8_000,
            "{} bytes in the row",
            snapshot.len()
        );
        assert!(snapshot.contains("null"), "{snapshot}");
        let fresh = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
        let read = fresh.get_transition(&id).await.unwrap();
        assert_eq!(read.state, view.state, "{}", db.backend);
        let events = fresh.events(&id).await.unwrap();
        let replayed =
            opsgate_domain::TransitionState::replay(&read.workflow.workflow, &events).unwrap();
        assert_eq!(replayed, read.state);
        for s in [store, fresh] {
            s.close().await.unwrap();
        }
    }
}

/// Parsed workflow versions are cached, but not without bound: a registry with more versions
/// than the cache holds keeps at most `WORKFLOW_CACHE` of them, and still reads every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parsed_workflow_cache_is_bounded() {
    let db = TestDb::sqlite();
    let store = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
    let source = std::fs::read_to_string(workflows_dir().join("service-desk-first.yaml")).unwrap();
    let versions = opsgate_store::WORKFLOW_CACHE + 20;
    for v in 0..versions {
        let changed = format!("{source}\n# revision {v}\n");
        store
            .register_workflow("desk.yaml", &changed, &actor("Smo"))
            .await
            .unwrap();
    }
    assert!(
        store.cached_workflow_versions() <= opsgate_store::WORKFLOW_CACHE,
        "{} cached",
        store.cached_workflow_versions()
    );
    let first = store
        .get_workflow("service-desk-first", Some(1))
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    store.close().await.unwrap();
}

/// Uploaded files: stored once per transition and content (the same bytes again are not new),
/// read back whole, binary-safe, and removed on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_kept_per_transition_by_content() {
    for db in TestDb::all().await {
        let store = store(&db).await;
        let id = start_and_submit_sla(&store).await;
        let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let file = opsgate_store::NewAttachment {
            name: "dump.bin",
            content_type: "application/octet-stream",
            content: &bytes,
        };
        let (sha, new) = store
            .put_attachment(&id, &file, &actor("Pat"))
            .await
            .unwrap();
        assert!(new, "{}", db.backend);
        assert_eq!(sha, opsgate_store::sha256_hex(&bytes));
        let (again, new) = store
            .put_attachment(&id, &file, &actor("Sam"))
            .await
            .unwrap();
        assert_eq!(again, sha);
        assert!(!new, "{}", db.backend);
        let read = store.attachment(&id, &sha).await.unwrap().unwrap();
        assert_eq!(read.content, bytes);
        assert_eq!(read.uploaded_by, "Pat");
        assert!(store.attachment("other", &sha).await.unwrap().is_none());
        store.remove_attachment(&id, &sha).await.unwrap();
        assert!(store.attachment(&id, &sha).await.unwrap().is_none());
        let too_big = vec![0u8; opsgate_store::MAX_ATTACHMENT_BYTES + 1];
        let refused = store
            .put_attachment(
                &id,
                &opsgate_store::NewAttachment {
                    content: &too_big,
                    ..file
                },
                &actor("Pat"),
            )
            .await;
        assert!(refused.is_err());
        store.close().await.unwrap();
    }
}

/// The people index and the board's order: a start records everyone with a part, a change of
/// people replaces them, a person's unfinished transitions come from it, the board pages run in
/// order of the earliest open due date, and transitions stored without rows (from before the
/// index) get them when the database is opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_takes_part_where_and_the_board_in_order_of_lateness() {
    const DATED: &str = "\
name: dated
roles: {desk: {description: reviews}}
deliverables:
  - {id: d, title: D, owner: project_manager, approver: desk, due: go_live - 10d}
  - {id: e, title: E, owner: project_manager, approval: {any_of: [{person: Alex}]}}
gate: {id: gate, title: Gate, needs: [d, e]}
";
    for db in TestDb::all().await {
        let store = store(&db).await;
        store
            .register_workflow("dated.yaml", DATED, &actor("Smo"))
            .await
            .unwrap();
        let go_live = opsgate_tests::go_live().parse::<NaiveDate>().unwrap();
        let start = |version: &'static str, days_later: i64, desk: &'static str| {
            let store = store.clone();
            async move {
                store
                    .start_transition(
                        NewTransition {
                            workflow_name: "dated".into(),
                            workflow_version: None,
                            service_name: "payroll".into(),
                            service_version: version.into(),
                            project_manager: actor("Pat"),
                            service_manager: actor("Sam"),
                            target_go_live: go_live + chrono::Days::new(days_later as u64),
                            participants: [(
                                opsgate_domain::RoleName::parse("desk").unwrap(),
                                vec![actor(desk)],
                            )]
                            .into_iter()
                            .collect(),
                            allow_past_go_live: false,
                        },
                        actor("Pat"),
                    )
                    .await
                    .unwrap()
                    .id
            }
        };
        // Started in an order other than their due dates.
        let late = start("3.0", 20, "Dana").await;
        let early = start("1.0", 0, "Dana").await;
        let middle = start("2.0", 10, "Dora").await;
        let sorted = |mut ids: Vec<String>| {
            ids.sort();
            ids
        };
        let of = |names: &[&str]| {
            let store = store.clone();
            let people: Vec<Actor> = names.iter().map(|n| actor(n)).collect();
            async move { sorted(store.transitions_of(&people).await.unwrap()) }
        };
        assert_eq!(
            of(&["Dana"]).await,
            sorted(vec![late.clone(), early.clone()])
        );
        assert_eq!(of(&["Dora"]).await, vec![middle.clone()]);
        // Named by the workflow itself (an approver person), and the managers: every one.
        assert_eq!(of(&["Alex"]).await.len(), 3, "{}", db.backend);
        assert_eq!(of(&["Sam"]).await.len(), 3);
        assert!(of(&["Nobody"]).await.is_empty());
        // The SMO replaces Dana by Dora on the late one.
        store
            .execute(
                &late,
                Command::ChangeParticipants {
                    role: "desk".into(),
                    people: vec!["Dora".into()],
                },
                actor("Smo"),
            )
            .await
            .unwrap();
        assert_eq!(of(&["Dana"]).await, vec![early.clone()]);
        assert_eq!(
            of(&["Dora"]).await,
            sorted(vec![late.clone(), middle.clone()])
        );
        assert_eq!(of(&["Dana", "Dora"]).await.len(), 3, "each transition once");

        // The board: the earliest due first, a page at a time.
        let everyone = opsgate_store::BoardQuery::default();
        let (all, next) = store.board_page(&everyone, None, 10).await.unwrap();
        assert_eq!(all, vec![early.clone(), middle.clone(), late.clone()]);
        assert!(next.is_none());
        let (first, next) = store.board_page(&everyone, None, 2).await.unwrap();
        assert_eq!(first, vec![early.clone(), middle.clone()]);
        let next = next.unwrap();
        assert_eq!(next.id, middle);
        let (second, last) = store.board_page(&everyone, Some(&next), 2).await.unwrap();
        assert_eq!(second, vec![late.clone()]);
        assert!(last.is_none());
        // The cursor survives its trip through a page's address.
        let parsed = opsgate_store::BoardCursor::parse(&next.to_text()).unwrap();
        assert_eq!(parsed, next);
        assert!(opsgate_store::BoardCursor::parse("2027-01-01~<script>").is_none());
        let dora = opsgate_store::BoardQuery {
            people: Some(vec![actor("Dora")]),
            ..Default::default()
        };
        assert_eq!(
            store.board_page(&dora, None, 10).await.unwrap().0,
            vec![middle.clone(), late.clone()]
        );
        let other = opsgate_store::BoardQuery {
            workflow: Some("standard-transition".into()),
            ..Default::default()
        };
        assert!(
            store
                .board_page(&other, None, 10)
                .await
                .unwrap()
                .0
                .is_empty()
        );
        store.close().await.unwrap();

        // Rows lost (a database from before the index): filled again on the next open.
        {
            use sea_orm::ConnectionTrait;
            let conn = sea_orm::Database::connect(&db.url).await.unwrap();
            conn.execute_unprepared("DELETE FROM transition_people")
                .await
                .unwrap();
            // As the migration marks a database that had transitions before the index.
            conn.execute_unprepared(
                "INSERT INTO pending_backfills (name) VALUES ('transition_people')",
            )
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
        let reopened = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
        let people = vec![actor("Dora")];
        assert_eq!(
            sorted(reopened.transitions_of(&people).await.unwrap()),
            sorted(vec![late.clone(), middle.clone()])
        );
        reopened.close().await.unwrap();
    }
}

/// With the dispatcher's routes installed, a write stores the deliveries of notices that go only
/// to channels itself (claimed, with the notice; no outbox row) and hands them over after its
/// commit; a notice of a kind routed to people goes to the outbox. Queued outcomes are stored by
/// the next write batch on SQLite and by `settle_queued` on PostgreSQL.
#[tokio::test]
async fn writes_store_channel_deliveries_and_settle_queued_outcomes() {
    use opsgate_domain::notice::NoticeKind;
    use opsgate_store::{Delivery, Settle, WriteRoutes};
    for db in TestDb::all().await {
        let mut options = ConnectOptions::new(&db.url);
        options.notifications = true;
        let store = store_with(options).await;
        let handed: Arc<std::sync::Mutex<Vec<Delivery>>> = Arc::default();
        let keep = handed.clone();
        store.route_in_writes(Some(WriteRoutes {
            // Submissions reach people (the outbox); everything else goes to `hook` only.
            channels_for: Box::new(|kind| {
                (kind != NoticeKind::DeliverableSubmitted).then(|| vec!["hook".to_owned()])
            }),
            sink: Box::new(move |made| keep.lock().unwrap().extend(made)),
            lease: chrono::Duration::seconds(60),
        }));
        let id = start_and_submit_sla(&store).await;
        let made = handed.lock().unwrap().clone();
        assert!(!made.is_empty(), "{}: the start's notices", db.backend);
        assert!(made.iter().all(|d| d.channel == "hook"
            && d.notice.transition_id == id
            && d.notice.kind != NoticeKind::DeliverableSubmitted
            && d.webhook_id.starts_with("msg_")));
        let backlog = store.outbox_backlog().await.unwrap();
        assert_eq!(
            backlog.notices, 1,
            "{}: the submission went to the outbox",
            db.backend
        );
        assert_eq!(backlog.pending, made.len() as u64, "{}", db.backend);
        // Claimed by this process: no claim hands them out again while the lease runs.
        let again = store
            .claim_deliveries("hook", 100, chrono::Duration::seconds(60))
            .await
            .unwrap();
        assert!(again.is_empty(), "{}: {again:?}", db.backend);

        store.queue_settlements(
            made.iter()
                .map(|d| (d.webhook_id.clone(), Settle::Delivered)),
        );
        if store.settles_in_writes() {
            // The next write batch's transaction stores them, even one whose only write is
            // refused (the SLA is submitted already).
            store
                .execute(&id, submit("sla"), actor("Pat"))
                .await
                .unwrap_err();
        } else {
            store.settle_queued().await.unwrap();
        }
        let backlog = store.outbox_backlog().await.unwrap();
        assert_eq!(
            backlog.pending, 0,
            "{}: the queued outcomes are stored",
            db.backend
        );
        // A delivered delivery leaves no row (nor the notice's JSON it carried).
        let rows = {
            use sea_orm::{ConnectionTrait, Statement};
            store
                .connection()
                .query_one_raw(Statement::from_string(
                    store.backend(),
                    "SELECT COUNT(*) AS n FROM deliveries",
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap()
        };
        assert_eq!(rows, 0, "{}: delivered rows removed", db.backend);
        // Nothing is left for the dispatcher's own transaction.
        store.settle_queued().await.unwrap();
        store.route_in_writes(None);
    }
}

/// Databases from before delivered deliveries were removed at once lose their `delivered` rows
/// (each kept its notice's JSON, for nothing) to a migration; pending and failed ones stay.
#[tokio::test]
async fn the_migration_removes_delivered_rows_and_keeps_the_rest() {
    use sea_orm::{ConnectionTrait, Statement};
    for db in TestDb::all().await {
        store(&db).await.close().await.unwrap();
        let conn = sea_orm::Database::connect(&db.url).await.unwrap();
        let backend = conn.get_database_backend();
        for (id, status) in [
            ("msg_a", "delivered"),
            ("msg_b", "pending"),
            ("msg_c", "failed"),
        ] {
            conn.execute_raw(Statement::from_string(
                backend,
                format!(
                    "INSERT INTO deliveries (outbox_id, channel, recipient, webhook_id, status, \
                     attempts, next_attempt_at, created_at) VALUES (0, 'hook', '', '{id}', \
                     '{status}', 1, '2026-12-01 00:00:00+00:00', '2026-12-01 00:00:00+00:00')"
                ),
            ))
            .await
            .unwrap();
        }
        opsgate_tests::migrate_again_since(&conn, "m20261209_000020_delivered_rows").await;
        let left: Vec<String> = conn
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT webhook_id FROM deliveries ORDER BY webhook_id",
            ))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get("", "webhook_id").unwrap())
            .collect();
        assert_eq!(left, ["msg_b", "msg_c"], "{}", db.backend);
        conn.close().await.unwrap();
    }
}

/// After every write the row's stall columns (which the stalled list, the board and the timers
/// seek by), its status and the day of its last change (the idle transitions' index) hold what
/// the state says: also on a row from before the stall index (filled when the
/// database opens), and when a write changes some of them and leaves the others as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stall_columns_follow_every_write() {
    use opsgate_domain::stalled::StallIndex;
    use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
    for db in TestDb::all().await {
        let store = store(&db).await;
        let backend = store.backend();
        let check = async |view: &opsgate_store::TransitionView, what: &str| {
            let index = StallIndex::of(&view.workflow.workflow, &view.state);
            let sql = if backend == DbBackend::Postgres {
                "SELECT COUNT(*) AS n FROM transitions WHERE id = $1 \
                 AND next_due IS NOT DISTINCT FROM $2 AND oldest_submission IS NOT DISTINCT FROM $3 \
                 AND most_bounces = $4 AND gate_open_since IS NOT DISTINCT FROM $5 \
                 AND status = $6 AND updated_day = $7"
            } else {
                "SELECT COUNT(*) AS n FROM transitions WHERE id = ? \
                 AND next_due IS ? AND oldest_submission IS ? \
                 AND most_bounces = ? AND gate_open_since IS ? \
                 AND status = ? AND updated_day = ?"
            };
            let values: Vec<Value> = vec![
                view.id.clone().into(),
                index.next_due.into(),
                index.oldest_submission.into(),
                i32::try_from(index.most_bounces).unwrap().into(),
                index.gate_open_since.into(),
                view.state.status.as_str().into(),
                view.state.updated_at.date_naive().into(),
            ];
            let row = store
                .connection()
                .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
                .await
                .unwrap()
                .unwrap();
            let n: i64 = row.try_get("", "n").unwrap();
            assert_eq!(n, 1, "{}: after {what} the row holds {index:?}", db.backend);
        };
        // One write, then the check.
        let act = async |view: &opsgate_store::TransitionView,
                         command: Command,
                         who: &str,
                         what: String| {
            let next = store.execute(&view.id, command, actor(who)).await.unwrap();
            check(&next, &what).await;
            next
        };
        let mut view = store
            .start_transition(new_transition("1.0"), actor("Pat"))
            .await
            .unwrap();
        check(&view, "the start").await;
        // A row from before the stall index (its columns NULL, `most_bounces` too) is filled
        // when the database is next opened, before any write (writes set only the columns they
        // change).
        store
            .connection()
            .execute_unprepared(&format!(
                "UPDATE transitions SET next_due = NULL, oldest_submission = NULL, \
                 most_bounces = NULL, gate_open_since = NULL WHERE id = '{}'",
                view.id
            ))
            .await
            .unwrap();
        let reopened = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
        check(&view, "opening the database again").await;
        reopened.close().await.unwrap();
        // Sent back twice: the waiting submission comes and goes, the bounces go up, the due
        // date stays.
        for round in 0..2 {
            view = act(&view, submit("sla"), "Pat", format!("submission {round}")).await;
            let send_back = Command::Review {
                node: "sla".into(),
                decision: ReviewDecision::RequestChanges,
                comment: "more".into(),
            };
            let approver = opsgate_tests::approver_of("sla");
            view = act(&view, send_back, approver, format!("sending back {round}")).await;
        }
        assert_eq!(
            StallIndex::of(&view.workflow.workflow, &view.state).most_bounces,
            2
        );
        // Then every deliverable through: due dates and submissions move, bounces stay.
        for _ in 0..20 {
            let open = open_deliverables(&view);
            if open.is_empty() {
                break;
            }
            for node in &open {
                let owner = opsgate_tests::owner_of(node);
                view = act(&view, submit(node), owner, format!("submitting {node}")).await;
                let approver = opsgate_tests::approver_of(node);
                view = act(&view, approve(node), approver, format!("approving {node}")).await;
            }
        }
        assert!(open_deliverables(&view).is_empty());
    }
}

/// The idle transitions are sought by the day of their last change (an index on the exact time
/// would be rewritten by every write): a write on a later day moves the day, and a transition is
/// idle exactly from `idle` after its last change, not from the start of that day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_transitions_are_found_by_the_day_and_the_time_of_their_last_change() {
    use opsgate_domain::stalled::StallRules;
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    for db in TestDb::all().await {
        let time = opsgate_tests::MovingClock::default();
        let start = "2026-03-02T15:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap();
        time.pin(start);
        let mut options = ConnectOptions::new(&db.url);
        options.clock = time.clock();
        let store = store_with(options).await;
        let view = store
            .start_transition(new_transition("1.0"), actor("Pat"))
            .await
            .unwrap();
        // Two days later, in the afternoon: the last change moves to that day.
        let changed = start + chrono::Duration::days(2) + chrono::Duration::hours(3);
        time.pin(changed);
        store
            .execute(&view.id, submit("sla"), actor("Pat"))
            .await
            .unwrap();
        let day = store
            .connection()
            .query_one_raw(Statement::from_sql_and_values(
                store.backend(),
                if store.backend() == DbBackend::Postgres {
                    "SELECT COUNT(*) AS n FROM transitions WHERE id = $1 AND updated_day = $2"
                } else {
                    "SELECT COUNT(*) AS n FROM transitions WHERE id = ? AND updated_day = ?"
                },
                [view.id.clone().into(), changed.date_naive().into()],
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(day.try_get::<i64>("", "n").unwrap(), 1, "{}", db.backend);
        // Idle exactly from seven days after the change: not an hour before (though its day is
        // past), and an hour after.
        // The submission waits for review all along: only idleness is asked about here.
        let rules = StallRules {
            review: chrono::Duration::days(3650),
            ..StallRules::default()
        };
        let idle = |at| {
            let store = store.clone();
            let id = view.id.clone();
            async move {
                let ids = store
                    .stall_candidates(at, &rules, None, None)
                    .await
                    .unwrap();
                ids.contains(&id)
            }
        };
        // Nothing else makes it a candidate: nothing is due before the go-live's months.
        let week = changed + rules.idle;
        assert!(
            !idle(week - chrono::Duration::hours(1)).await,
            "{}",
            db.backend
        );
        assert!(
            idle(week + chrono::Duration::hours(1)).await,
            "{}",
            db.backend
        );
    }
}

/// The SQLite rebuild of `node_states` (clustered by transition, `WITHOUT ROWID`) keeps every
/// row: after undoing and redoing it on a database with a transition, the state read back from
/// `node_states` alone (the row's snapshot removed) is the one written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_node_states_keeps_every_node() {
    use opsgate_migration::MigratorTrait;
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    for db in TestDb::all().await {
        let store = store(&db).await;
        // Heavy node states are the ones `node_states` holds.
        let id = store
            .start_transition(new_transition("1.0"), actor("Pat"))
            .await
            .unwrap()
            .id;
        for node in ["sla", "support-contacts"] {
            let heavy = Command::Submit {
                node: node.into(),
                evidence: Evidence::parse(vec![], format!("{node} ").repeat(2_000)).unwrap(),
            };
            store.execute(&id, heavy, actor("Pat")).await.unwrap();
        }
        let before = node_state_rows(store.connection(), &id).await;
        assert_eq!(before.len(), 2, "{}", db.backend);
        let view = store.get_transition(&id).await.unwrap();
        store.close().await.unwrap();
        let conn = sea_orm::Database::connect(&db.url).await.unwrap();
        let definition = async |conn: &sea_orm::DatabaseConnection| {
            let row = conn
                .query_one_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    "SELECT sql FROM sqlite_master WHERE name = 'node_states'",
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<String>(0).unwrap()
        };
        if conn.get_database_backend() == DbBackend::Sqlite {
            assert!(definition(&conn).await.ends_with("WITHOUT ROWID"));
        }
        opsgate_tests::undo_migrations_since(&conn, "m20261208_000019_node_states_clustered").await;
        if conn.get_database_backend() == DbBackend::Sqlite {
            assert!(!definition(&conn).await.contains("WITHOUT ROWID"));
        }
        assert_eq!(node_state_rows(&conn, &id).await, before, "{}", db.backend);
        opsgate_migration::Migrator::up(&conn, None).await.unwrap();
        assert_eq!(node_state_rows(&conn, &id).await, before, "{}", db.backend);
        let reopened = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
        assert_eq!(
            reopened.get_transition(&id).await.unwrap().state,
            view.state
        );
        reopened.close().await.unwrap();
    }
}
