//! Restarts: state survives a server restart on the same database; workflow files version on change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_proto::v1 as pb;
use opsgate_server::{Config, StartError};
use opsgate_tests::{TestDb, TestServer, get, review, status_of, submit, workflows_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_server_restart() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let id = opsgate_tests::start(&mut c, "2.0").await.id;
        submit(&mut c, &id, "support-contacts", "Pat")
            .await
            .unwrap();
        review(
            &mut c,
            &id,
            "support-contacts",
            pb::ReviewDecision::Approve,
            "complete",
            "Dana",
        )
        .await
        .unwrap();
        submit(&mut c, &id, "knowledge-articles", "Tess")
            .await
            .unwrap();
        let before = get(&mut c, &id).await;
        server.stop().await;

        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let after = get(&mut c, &id).await;
        assert_eq!(
            before, after,
            "state differs after restart on {}",
            db.backend
        );
        assert_eq!(status_of(&after, "resolver-group"), pb::NodeStatus::Open);
        // Work goes on where it stopped.
        let t = review(
            &mut c,
            &id,
            "knowledge-articles",
            pb::ReviewDecision::Approve,
            "",
            "Dana",
        )
        .await
        .unwrap();
        assert_eq!(
            status_of(&t, "knowledge-articles"),
            pb::NodeStatus::Approved
        );
        // The unchanged workflow file was a no-op at the second start.
        let listed = c
            .workflows
            .list_workflows(pb::ListWorkflowsRequest {})
            .await
            .unwrap()
            .into_inner();
        let names: Vec<&str> = listed.workflows.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "service-desk-first",
                "standard-change",
                "standard-transition"
            ]
        );
        assert!(
            listed.workflows.iter().all(|w| w.latest_version == 1),
            "{names:?}"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_workflow_file_registers_the_next_version_and_running_transitions_stay_pinned() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("standard-transition.yaml");
        let original =
            std::fs::read_to_string(workflows_dir().join("standard-transition.yaml")).unwrap();
        std::fs::write(&file, &original).unwrap();
        opsgate_tests::copy_templates(dir.path());

        let server = TestServer::start_with(&db, Some(dir.path().to_owned())).await;
        let mut c = server.clients().await;
        let old_id = opsgate_tests::start(&mut c, "1.0").await.id;
        server.stop().await;

        let changed = original.replace(
            "title: Service desk training",
            "title: Service desk training and shadowing",
        );
        assert_ne!(changed, original);
        std::fs::write(&file, &changed).unwrap();
        let server = TestServer::start_with(&db, Some(dir.path().to_owned())).await;
        let mut c = server.clients().await;

        let latest = c
            .workflows
            .get_workflow(pb::GetWorkflowRequest {
                name: "standard-transition".into(),
                version: None,
            })
            .await
            .unwrap()
            .into_inner()
            .workflow
            .unwrap();
        assert_eq!(latest.version, 2, "{}", db.backend);
        assert_eq!(latest.source, changed);
        let first = c
            .workflows
            .get_workflow(pb::GetWorkflowRequest {
                name: "standard-transition".into(),
                version: Some(1),
            })
            .await
            .unwrap()
            .into_inner()
            .workflow
            .unwrap();
        assert_eq!(first.source, original);

        let old = get(&mut c, &old_id).await;
        assert_eq!(old.workflow_version, 1);
        let training = old
            .nodes
            .iter()
            .find(|n| n.id == "service-desk-training")
            .unwrap();
        assert_eq!(training.title, "Service desk training");
        let new = opsgate_tests::start(&mut c, "1.1").await;
        assert_eq!(new.workflow_version, 2);

        // Registering the same text again over the API is a no-op.
        let again = c
            .workflows
            .register_workflow(opsgate_tests::acting(
                "Smo",
                pb::RegisterWorkflowRequest {
                    source: changed.clone(),
                    file_name: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!again.created);
        assert_eq!(again.workflow.unwrap().version, 2);
        // Each new version records who registered it; the no-op registration records nothing.
        let registrations = server
            .store()
            .workflow_registrations("standard-transition")
            .await
            .unwrap();
        let who: Vec<(u32, &str)> = registrations
            .iter()
            .map(|(v, actor, _)| (*v, actor.as_str()))
            .collect();
        assert_eq!(
            who,
            [
                (1, opsgate_server::LOADER_ACTOR),
                (2, opsgate_server::LOADER_ACTOR)
            ]
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_refuses_a_workflows_directory_with_invalid_files_and_names_every_problem() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), "name: a\n").unwrap();
    std::fs::write(dir.path().join("b.yaml"), "name: [b\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a workflow").unwrap();
    let result = opsgate_server::start(Config {
        workflows_dir: Some(dir.path().to_owned()),
        ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
    })
    .await;
    let Err(StartError::Workflows(text)) = result else {
        panic!("expected a workflows error, got {result:?}");
    };
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("a.yaml:1:1: workflow has no operations gate"),
        "{text}"
    );
    assert!(
        lines[1].contains("b.yaml:2:1: while parsing a flow sequence, expected ',' or ']'"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_files_declaring_one_name_are_refused_at_start_naming_both() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(workflows_dir().join("standard-change.yaml")).unwrap();
    std::fs::write(dir.path().join("change.yaml"), &source).unwrap();
    let copy = source.replace("Gates a change", "Gates any change");
    std::fs::write(dir.path().join("change-copy.yaml"), copy).unwrap();
    for _ in 0..2 {
        let result = opsgate_server::start(Config {
            workflows_dir: Some(dir.path().to_owned()),
            ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        })
        .await;
        let Err(StartError::Workflows(text)) = result else {
            panic!("expected a workflows error, got {result:?}");
        };
        assert!(
            text.contains("change.yaml: declares workflow 'standard-change', as ")
                && text.contains("change-copy.yaml does already"),
            "{text}"
        );
    }
    // Nothing was registered: no version churn.
    let store = opsgate_store::Store::connect(opsgate_store::ConnectOptions::new(&db.url))
        .await
        .unwrap();
    assert!(store.list_workflows().await.unwrap().is_empty());
    store.close().await.unwrap();
}

/// Acknowledged means durable only if every connection the server writes or reads through runs
/// in WAL mode with `synchronous=FULL` (the crash test cannot see this: SIGKILL keeps the page
/// cache). This fails as soon as one connection is opened otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sqlite_connection_of_the_server_is_wal_and_synchronous_full() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db).await;
    let pragmas = server.store().sqlite_pragmas().await.unwrap();
    assert!(pragmas.len() >= 2, "{pragmas:?}");
    for (journal, synchronous) in &pragmas {
        assert_eq!(journal, "wal", "{pragmas:?}");
        assert_eq!(*synchronous, 2, "synchronous must be FULL (2): {pragmas:?}");
    }
    server.stop().await;
}

/// A changed template is a new workflow version: a transition started before keeps the template
/// it started with, one started after gets the new text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_template_is_a_new_version_and_running_transitions_keep_theirs() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(workflows_dir().join("standard-transition.yaml")).unwrap();
    std::fs::write(dir.path().join("standard-transition.yaml"), &source).unwrap();
    opsgate_tests::copy_templates(dir.path());
    let template = |c: &mut opsgate_tests::Clients, id: String| {
        let mut client = c.transitions.clone();
        async move {
            client
                .get_template(opsgate_tests::acting(
                    "Pat",
                    pb::GetTemplateRequest {
                        transition_id: id,
                        deliverable_id: "knowledge-articles".into(),
                    },
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let server = TestServer::start_with(&db, Some(dir.path().to_owned())).await;
    let mut c = server.clients().await;
    let before = opsgate_tests::start(&mut c, "1.0").await;
    let first = template(&mut c, before.id.clone()).await;
    assert!(
        first.content.starts_with("# Knowledge article"),
        "{}",
        first.content
    );
    server.stop().await;

    let file = dir.path().join("templates/knowledge-article.md");
    let changed = format!("{}\n## Changelog\n\nAdded by the SMO.\n", first.content);
    std::fs::write(&file, &changed).unwrap();
    let server = TestServer::start_with(&db, Some(dir.path().to_owned())).await;
    let mut c = server.clients().await;
    let kept = template(&mut c, before.id.clone()).await;
    assert_eq!(kept.content, first.content);
    assert_eq!(kept.workflow_version, first.workflow_version);
    let after = opsgate_tests::start(&mut c, "1.1").await;
    let new = template(&mut c, after.id.clone()).await;
    assert_eq!(new.content, changed);
    assert_eq!(new.workflow_version, first.workflow_version + 1);
    assert_ne!(new.sha256, first.sha256);
    server.stop().await;
}
