//! Bad input over gRPC: each refused with the right status and an actionable message, and nothing stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_proto::v1 as pb;
use opsgate_proto::v1::check_gate_request::Target;
use opsgate_tests::{
    Clients, TestDb, TestServer, acting, get, invalid_workflows_dir, review, start_payroll, submit,
};
use tonic::Code;
use tonic_types::StatusExt;

fn expect_code<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code) -> tonic::Status {
    match result {
        Ok(v) => panic!("expected {code:?}, got {v:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{}", status.message());
            status
        }
    }
}

fn violation_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_workflows_are_refused_with_every_problem_located_and_nothing_stored() {
    let mut files: Vec<_> = std::fs::read_dir(invalid_workflows_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "test data missing");
    for db in TestDb::all().await {
        let server = TestServer::start_with(&db, None).await;
        let mut c = server.clients().await;
        for file in &files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let expected: Vec<String> = std::fs::read_to_string(file.with_extension("expected"))
                .unwrap_or_else(|_| panic!("{name} has no .expected file"))
                .lines()
                .map(str::to_owned)
                .collect();
            let result = c
                .workflows
                .register_workflow(acting(
                    "Smo",
                    pb::RegisterWorkflowRequest {
                        source: std::fs::read_to_string(file).unwrap(),
                        file_name: name.clone(),
                    },
                ))
                .await;
            let status = expect_code(result, Code::InvalidArgument);
            let violations: Vec<String> = status
                .get_details_bad_request()
                .expect("field violations")
                .field_violations
                .into_iter()
                .map(|v| {
                    assert_eq!(v.field, "source");
                    v.description
                })
                .collect();
            assert_eq!(violations, expected, "{name} on {}", db.backend);
            for line in &expected {
                assert!(
                    status.message().contains(line.as_str()),
                    "{name}: message lacks {line}"
                );
            }
        }
        let listed = c
            .workflows
            .list_workflows(pb::ListWorkflowsRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(
            listed.workflows.is_empty(),
            "an invalid workflow was stored on {}",
            db.backend
        );
        server.stop().await;
    }
}

/// Refused commands against one transition; the transition is unchanged after all of them.
async fn refused_commands(c: &mut Clients, id: &str) {
    let locked = expect_code(
        submit(c, id, "resolver-group", "Pat").await,
        Code::FailedPrecondition,
    );
    assert_eq!(
        locked.message(),
        "deliverable 'resolver-group' is locked and cannot be submitted: it waits on 'support-contacts' (open)"
    );

    let unsubmitted = expect_code(
        review(c, id, "sla", pb::ReviewDecision::Approve, "", "Olga").await,
        Code::FailedPrecondition,
    );
    assert_eq!(
        unsubmitted.message(),
        "deliverable 'sla' cannot be reviewed: it is open: it has not been submitted"
    );

    let unknown = expect_code(submit(c, id, "coffee-machine", "Pat").await, Code::NotFound);
    assert_eq!(
        unknown.message(),
        "deliverable 'coffee-machine' not found in workflow 'standard-transition'"
    );

    let closed = c
        .transitions
        .accept_handover(acting(
            "Sam",
            pb::AcceptHandoverRequest {
                transition_id: id.into(),
                comment: String::new(),
            },
        ))
        .await;
    let closed = expect_code(closed, Code::FailedPrecondition);
    assert!(
        closed
            .message()
            .contains("gate 'operations-gate' is closed"),
        "{}",
        closed.message()
    );

    let no_actor = c
        .transitions
        .submit_deliverable(pb::SubmitDeliverableRequest {
            transition_id: id.into(),
            deliverable_id: "sla".into(),
            evidence: Some(pb::Evidence {
                links: vec!["https://x".into()],
                ..Default::default()
            }),
        })
        .await;
    let no_actor = expect_code(no_actor, Code::Unauthenticated);
    assert!(no_actor.message().contains("x-opsgate-actor"));

    // A script is no evidence (issue 8, item 15).
    let script = c
        .transitions
        .submit_deliverable(acting(
            "Pat",
            pb::SubmitDeliverableRequest {
                transition_id: id.into(),
                deliverable_id: "sla".into(),
                evidence: Some(pb::Evidence {
                    links: vec!["javascript:alert(document.cookie)".into()],
                    ..Default::default()
                }),
            },
        ))
        .await;
    let script = expect_code(script, Code::InvalidArgument);
    assert_eq!(violation_fields(&script), ["evidence"]);
    assert!(
        script.message().contains("http:// or https://"),
        "{}",
        script.message()
    );

    // Only people named for the owner role submit (item 2).
    let stranger = expect_code(
        submit(c, id, "knowledge-articles", "Mallory").await,
        Code::PermissionDenied,
    );
    assert_eq!(
        stranger.message(),
        "Mallory may not submit deliverable 'knowledge-articles': it is owned by role technical_lead (Tess)"
    );
    // A name nobody was named for never acts for a role (item 3).
    let nobody = expect_code(
        submit(c, id, "support-contacts", "Dana").await,
        Code::PermissionDenied,
    );
    assert!(
        nobody
            .message()
            .contains("owned by role project_manager (Pat)"),
        "{}",
        nobody.message()
    );

    let no_decision = c
        .transitions
        .review_deliverable(acting(
            "Olga",
            pb::ReviewDeliverableRequest {
                transition_id: id.into(),
                deliverable_id: "sla".into(),
                decision: 0,
                comment: String::new(),
            },
        ))
        .await;
    assert_eq!(
        violation_fields(&expect_code(no_decision, Code::InvalidArgument)),
        ["decision"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_commands_leave_the_transition_unchanged() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let id = opsgate_tests::start(&mut c, "2.0").await.id;
        let before = get(&mut c, &id).await;
        refused_commands(&mut c, &id).await;
        let after = get(&mut c, &id).await;
        assert_eq!(before, after, "state changed on {}", db.backend);

        // Request changes without saying what must change is refused after a real submission too.
        submit(&mut c, &id, "sla", "Pat").await.unwrap();
        let before = get(&mut c, &id).await;
        let silent = review(
            &mut c,
            &id,
            "sla",
            pb::ReviewDecision::RequestChanges,
            "  ",
            "Olga",
        )
        .await;
        assert_eq!(
            violation_fields(&expect_code(silent, Code::InvalidArgument)),
            ["comment"]
        );
        assert_eq!(before, get(&mut c, &id).await);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_transition_ids_are_not_found() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let missing = "01900000-0000-7000-8000-000000000000";
        let got = c
            .transitions
            .get_transition(pb::GetTransitionRequest {
                transition_id: missing.into(),
            })
            .await;
        assert_eq!(
            expect_code(got, Code::NotFound).message(),
            format!("transition '{missing}' not found")
        );
        expect_code(submit(&mut c, missing, "sla", "Pat").await, Code::NotFound);
        let gate = c
            .gates
            .check_gate(pb::CheckGateRequest {
                target: Some(Target::TransitionId(missing.into())),
            })
            .await;
        expect_code(gate, Code::NotFound);
        let by_service = c
            .gates
            .check_gate(pb::CheckGateRequest {
                target: Some(Target::Service(pb::ServiceRef {
                    name: "payroll".into(),
                    version: "9".into(),
                })),
            })
            .await;
        assert_eq!(
            expect_code(by_service, Code::NotFound).message(),
            "no transition for service 'payroll' version '9'"
        );
        let empty = c
            .gates
            .check_gate(pb::CheckGateRequest { target: None })
            .await;
        assert_eq!(
            violation_fields(&expect_code(empty, Code::InvalidArgument)),
            ["target"]
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_start_requests_are_refused_and_store_nothing() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;

        let mut bad_date = start_payroll("2.0");
        bad_date.target_go_live = "01/12/2026".into();
        let status = expect_code(
            c.transitions
                .start_transition(acting("Pat", bad_date))
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violation_fields(&status), ["target_go_live"]);

        let mut bad_role = start_payroll("2.0");
        bad_role.participants.push(pb::Participant {
            role: "astronaut".into(),
            people: vec!["Neil".into()],
        });
        let status = expect_code(
            c.transitions
                .start_transition(acting("Pat", bad_role))
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violation_fields(&status), ["participants"]);

        let mut no_sm = start_payroll("2.0");
        no_sm.service_manager = " ".into();
        let status = expect_code(
            c.transitions.start_transition(acting("Pat", no_sm)).await,
            Code::InvalidArgument,
        );
        assert_eq!(violation_fields(&status), ["service_manager"]);

        let mut unknown_wf = start_payroll("2.0");
        unknown_wf.workflow_name = "nope".into();
        let status = expect_code(
            c.transitions
                .start_transition(acting("Pat", unknown_wf))
                .await,
            Code::NotFound,
        );
        assert_eq!(status.message(), "workflow 'nope' not found");

        let mut unknown_version = start_payroll("2.0");
        unknown_version.workflow_version = Some(7);
        expect_code(
            c.transitions
                .start_transition(acting("Pat", unknown_version))
                .await,
            Code::NotFound,
        );

        let page = c
            .transitions
            .list_transitions(pb::ListTransitionsRequest {
                page_size: 10,
                page_token: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            page.transitions.is_empty(),
            "a refused start stored a transition on {}",
            db.backend
        );

        opsgate_tests::start(&mut c, "2.0").await;
        let again = c
            .transitions
            .start_transition(acting("Pat", start_payroll("2.0")))
            .await;
        let status = expect_code(again, Code::AlreadyExists);
        assert!(
            status
                .message()
                .starts_with("a transition for service 'payroll' version '2.0' already exists: ")
        );

        let too_big = c
            .transitions
            .list_transitions(pb::ListTransitionsRequest {
                page_size: 501,
                page_token: String::new(),
            })
            .await;
        assert_eq!(
            violation_fields(&expect_code(too_big, Code::InvalidArgument)),
            ["page_size"]
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused() {
    let db = TestDb::sqlite();
    let server = TestServer::start_with(&db, None).await;
    let mut c = server.clients().await;
    let huge = "#".repeat(opsgate_server::MAX_MESSAGE_BYTES + 1);
    let result = c
        .workflows
        .register_workflow(acting(
            "Smo",
            pb::RegisterWorkflowRequest {
                source: huge,
                file_name: "huge.yaml".into(),
            },
        ))
        .await;
    expect_code(result, Code::OutOfRange);
    // Under the message limit but over the workflow limit: refused by validation.
    let big = format!(
        "name: x\n#{}\n",
        "x".repeat(opsgate_domain::workflow::MAX_SOURCE_BYTES)
    );
    let result = c
        .workflows
        .register_workflow(acting(
            "Smo",
            pb::RegisterWorkflowRequest {
                source: big,
                file_name: "big.yaml".into(),
            },
        ))
        .await;
    let status = expect_code(result, Code::InvalidArgument);
    assert!(
        status.message().contains("the limit is 1048576"),
        "{}",
        status.message()
    );
    server.stop().await;
}
