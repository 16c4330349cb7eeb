//! The service catalog (issue "What the SMO hands every transition") on SQLite and PostgreSQL:
//! a start for a service not in the catalog adds it (recorded as an event); the SMO adds and
//! changes services; a start without a workflow takes the service's default; a service lists
//! its versions with who accepted each handover; a closed catalog refuses unknown services and
//! says how to add them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_proto::v1 as pb;
use opsgate_proto::v1::catalog_service_client::CatalogServiceClient;
use opsgate_server::Config;
use opsgate_tests::{ONE, TestDb, TestServer, acting, start_one};
use sea_orm::{ConnectionTrait, Statement};
use tonic::Code;

async fn server(db: &TestDb, closed: bool) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one.yaml"), ONE).unwrap();
    let server = TestServer::start_config(
        db,
        Config {
            workflows_dir: Some(dir.path().to_owned()),
            insecure_dev: true,
            catalog: opsgate_server::config::CatalogSection { closed },
            ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        },
    )
    .await;
    (server, dir)
}

async fn catalog(url: &str) -> CatalogServiceClient<tonic::transport::Channel> {
    CatalogServiceClient::connect(url.to_owned()).await.unwrap()
}

/// The kinds and actors of service `name`'s events, in order.
async fn service_events(db: &TestDb, name: &str) -> Vec<(String, String)> {
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT kind, actor FROM service_events WHERE service = '{name}' ORDER BY id"),
        ))
        .await
        .unwrap();
    conn.close().await.unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "kind").unwrap(),
                r.try_get("", "actor").unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_grows_with_starts_and_lists_each_versions_transition() {
    for db in TestDb::all().await {
        let (server, _dir) = server(&db, false).await;
        let mut c = server.clients().await;
        let mut cat = catalog(&server.url).await;

        // A start for a service the catalog lacks adds it, with an event.
        let first = start_one(&mut c, "payroll", "1.0").await;
        let got = cat
            .get_service(acting(
                "Pat",
                pb::GetServiceRequest {
                    name: "payroll".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let entry = got.service.unwrap();
        assert_eq!(entry.default_workflow, "one", "{}", db.backend);
        assert_eq!(entry.service_manager, "Sam");
        assert_eq!(entry.created_by, "Pat");
        assert_eq!(
            service_events(&db, "payroll").await,
            [("service_added".to_owned(), "Pat".to_owned())]
        );
        // A second version adds nothing.
        start_one(&mut c, "payroll", "2.0").await;
        assert_eq!(service_events(&db, "payroll").await.len(), 1);

        // The first version goes through the gate: the service says when and by whom.
        c.transitions
            .submit_deliverable(acting(
                "Pat",
                pb::SubmitDeliverableRequest {
                    transition_id: first.id.clone(),
                    deliverable_id: "d".into(),
                    evidence: Some(pb::Evidence::default()),
                },
            ))
            .await
            .unwrap();
        c.transitions
            .review_deliverable(acting(
                "Dana",
                pb::ReviewDeliverableRequest {
                    transition_id: first.id.clone(),
                    deliverable_id: "d".into(),
                    decision: pb::ReviewDecision::Approve.into(),
                    comment: String::new(),
                },
            ))
            .await
            .unwrap();
        c.transitions
            .accept_handover(acting(
                "Sam",
                pb::AcceptHandoverRequest {
                    transition_id: first.id.clone(),
                    comment: "ours".into(),
                },
            ))
            .await
            .unwrap();
        let versions = cat
            .get_service(acting(
                "Pat",
                pb::GetServiceRequest {
                    name: "payroll".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .versions;
        let listed: Vec<(&str, &str)> = versions
            .iter()
            .map(|v| (v.version.as_str(), v.accepted_by.as_str()))
            .collect();
        assert_eq!(listed, [("2.0", ""), ("1.0", "Sam")], "newest first");
        assert!(versions[1].accepted_at.is_some() && versions[0].accepted_at.is_none());
        assert_eq!(versions[0].status, pb::TransitionStatus::Active as i32);
        // The service's page says the same.
        let page = reqwest::get(format!("{}/services/payroll", server.http_url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains(&format!("/transitions/{}\">1.0</a>", first.id)),
            "{page}"
        );
        assert!(page.contains("by Sam"), "{page}");
        let missing = reqwest::get(format!("{}/services/nothing", server.http_url))
            .await
            .unwrap();
        assert_eq!(missing.status().as_u16(), 404);

        // The SMO adds a service with a default workflow; a start naming none takes it.
        let added = cat
            .add_service(acting(
                "Smo",
                pb::AddServiceRequest {
                    name: "billing".into(),
                    owner: "Olga".into(),
                    service_manager: "Sam".into(),
                    criticality: "tier-1".into(),
                    default_workflow: "one".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .service
            .unwrap();
        assert_eq!(
            (added.criticality.as_str(), added.created_by.as_str()),
            ("tier-1", "Smo")
        );
        let again = cat
            .add_service(acting(
                "Smo",
                pb::AddServiceRequest {
                    name: "billing".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(again.code(), Code::AlreadyExists);
        let unknown = cat
            .add_service(acting(
                "Smo",
                pb::AddServiceRequest {
                    name: "ledger".into(),
                    default_workflow: "no-such-workflow".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
        let billing = c
            .transitions
            .start_transition(acting(
                "Pat",
                pb::StartTransitionRequest {
                    workflow_name: String::new(),
                    service_name: "billing".into(),
                    service_version: "1.0".into(),
                    project_manager: "Pat".into(),
                    service_manager: "Sam".into(),
                    target_go_live: opsgate_tests::go_live(),
                    participants: vec![pb::Participant {
                        role: "desk".into(),
                        people: vec!["Dana".into()],
                    }],
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .transition
            .unwrap();
        assert_eq!(billing.workflow_name, "one");
        // A service without a default: the start must name a workflow.
        let changed = cat
            .set_service(acting(
                "Smo",
                pb::SetServiceRequest {
                    name: "billing".into(),
                    default_workflow: Some(String::new()),
                    criticality: Some("tier-2".into()),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .service
            .unwrap();
        assert_eq!(
            (
                changed.criticality.as_str(),
                changed.default_workflow.as_str()
            ),
            ("tier-2", "")
        );
        let refused = c
            .transitions
            .start_transition(acting(
                "Pat",
                pb::StartTransitionRequest {
                    service_name: "billing".into(),
                    service_version: "2.0".into(),
                    project_manager: "Pat".into(),
                    service_manager: "Sam".into(),
                    target_go_live: opsgate_tests::go_live(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(
            refused.message().contains("--default-workflow"),
            "{}",
            refused.message()
        );
        assert_eq!(
            service_events(&db, "billing").await,
            [
                ("service_added".to_owned(), "Smo".to_owned()),
                ("service_changed".to_owned(), "Smo".to_owned())
            ]
        );
        let names: Vec<String> = cat
            .list_services(acting("Pat", pb::ListServicesRequest {}))
            .await
            .unwrap()
            .into_inner()
            .services
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["billing", "payroll"]);
        let missing = cat
            .get_service(acting(
                "Pat",
                pb::GetServiceRequest {
                    name: "nothing".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_catalog_starts_only_services_it_has() {
    for db in TestDb::all().await {
        let (server, _dir) = server(&db, true).await;
        let mut c = server.clients().await;
        let refused = c
            .transitions
            .start_transition(acting(
                "Pat",
                pb::StartTransitionRequest {
                    workflow_name: "one".into(),
                    service_name: "payroll".into(),
                    service_version: "1.0".into(),
                    project_manager: "Pat".into(),
                    service_manager: "Sam".into(),
                    target_go_live: opsgate_tests::go_live(),
                    participants: vec![pb::Participant {
                        role: "desk".into(),
                        people: vec!["Dana".into()],
                    }],
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition, "{}", db.backend);
        assert!(
            refused.message().contains("opsgate service add 'payroll'"),
            "{}",
            refused.message()
        );
        catalog(&server.url)
            .await
            .add_service(acting(
                "Smo",
                pb::AddServiceRequest {
                    name: "payroll".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
        start_one(&mut c, "payroll", "1.0").await;
        server.stop().await;
    }
}

/// Many versions of a new service started at once (one write batch on SQLite, concurrent
/// transactions on PostgreSQL): the service is added once, with one event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_service_started_many_times_at_once_is_added_once() {
    for db in TestDb::all().await {
        let (server, _dir) = server(&db, false).await;
        let c = server.clients().await;
        let starts: Vec<_> = (0..24)
            .map(|i| {
                let mut c = c.clone();
                tokio::spawn(async move { start_one(&mut c, "ledger", &format!("{i}.0")).await })
            })
            .collect();
        for s in starts {
            s.await.unwrap();
        }
        assert_eq!(
            service_events(&db, "ledger").await.len(),
            1,
            "{}",
            db.backend
        );
        server.stop().await;
    }
}

/// A database from before the catalog and the people index (their migrations undone, then
/// applied again): its service names become catalog entries with their latest workflow as the
/// default, and the people index is filled when the store opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_service_names_become_catalog_entries_on_upgrade() {
    for db in TestDb::all().await {
        let (server, dir) = server(&db, false).await;
        let mut c = server.clients().await;
        start_one(&mut c, "payroll", "1.0").await;
        start_one(&mut c, "billing", "1.0").await;
        server.stop().await;
        let conn = sea_orm::Database::connect(&db.url).await.unwrap();
        opsgate_tests::migrate_again_since(&conn, "m20261207_000015_transition_people").await;
        let rows = conn
            .query_all_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT name, default_workflow, created_by FROM services ORDER BY name".to_owned(),
            ))
            .await
            .unwrap();
        let services: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get("", "name").unwrap(),
                    r.try_get("", "default_workflow").unwrap(),
                    r.try_get("", "created_by").unwrap(),
                )
            })
            .collect();
        conn.close().await.unwrap();
        let expected = |name: &str| (name.to_owned(), "one".to_owned(), "migration".to_owned());
        assert_eq!(
            services,
            [expected("billing"), expected("payroll")],
            "{}",
            db.backend
        );
        assert_eq!(
            service_events(&db, "payroll").await,
            [("service_added".to_owned(), "migration".to_owned())]
        );
        // The people index is filled when the store opens the database again.
        let store = opsgate_store::Store::connect(opsgate_store::ConnectOptions::new(&db.url))
            .await
            .unwrap();
        let dana = vec![opsgate_domain::Actor::parse("Dana").unwrap()];
        assert_eq!(store.transitions_of(&dana).await.unwrap().len(), 2);
        store.close().await.unwrap();
        drop(dir);
    }
}
