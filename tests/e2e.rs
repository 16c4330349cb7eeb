//! End to end over real gRPC: `standard-transition.yaml` from start to accepted handover, on every backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_domain::TransitionState;
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::check_gate_request::Target;
use opsgate_store::{ConnectOptions, Store};
use opsgate_tests::{
    Clients, TestDb, TestServer, acting, approver_of, get, owner_of, review, status_of, submit,
};
use tonic::Code;

const DELIVERABLE: i32 = pb::NodeKind::Deliverable as i32;

async fn check_by_service(c: &mut Clients, version: &str) -> pb::CheckGateResponse {
    let request = c.read(pb::CheckGateRequest {
        target: Some(Target::Service(pb::ServiceRef {
            name: "payroll".into(),
            version: version.into(),
        })),
    });
    c.gates.check_gate(request).await.unwrap().into_inner()
}

async fn check_by_id(c: &mut Clients, id: &str) -> pb::CheckGateResponse {
    let request = c.read(pb::CheckGateRequest {
        target: Some(Target::TransitionId(id.into())),
    });
    c.gates.check_gate(request).await.unwrap().into_inner()
}

/// Every stored transition replays from its event log to exactly its stored state.
async fn assert_event_log_replays(db: &TestDb, id: &str) {
    let store = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
    let view = store.get_transition(id).await.unwrap();
    let events = store.events(id).await.unwrap();
    assert_eq!(events.len() as u64, view.state.seq);
    let replayed = TransitionState::replay(&view.workflow.workflow, &events).unwrap();
    assert_eq!(
        replayed, view.state,
        "{}: replay differs from stored state",
        db.backend
    );
    store.close().await.unwrap();
}

/// The bootstrap token of the secure run.
const BOOTSTRAP: &str = "og_5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// A secure server's clients, each participant with their own API token (made with the
/// bootstrap token), and an auditor's token for reading.
async fn with_tokens(server: &TestServer) -> Clients {
    let mut credentials = opsgate_tests::Credentials::default();
    for (person, role) in [
        ("Pat", "project_manager"),
        ("Tess", "project_manager"),
        ("Dana", "approver"),
        ("Olga", "approver"),
        ("Owen", "approver"),
        ("Sam", "service_manager"),
        ("Audrey", "auditor"),
    ] {
        let token = opsgate_tests::create_token(&server.url, BOOTSTRAP, person, &[role]).await;
        credentials.tokens.insert(person.into(), token);
    }
    credentials.reader = credentials.tokens["Audrey"].clone();
    let mut c = server.clients().await;
    c.credentials = Some(std::sync::Arc::new(credentials));
    c
}

/// The standard transition from start to accepted handover: on a development server with
/// `x-opsgate-actor`, or (`secure`) on a secure server where every participant has a token.
async fn drive_standard_transition(db: &TestDb, secure: bool) {
    let (server, mut c) = if secure {
        let server = TestServer::start_secure(db, BOOTSTRAP).await;
        let c = with_tokens(&server).await;
        (server, c)
    } else {
        let server = TestServer::start(db).await;
        let c = server.clients().await;
        (server, c)
    };

    let request = c.read(pb::ListWorkflowsRequest {});
    let listed = c
        .workflows
        .list_workflows(request)
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed
            .workflows
            .iter()
            .any(|w| w.name == "standard-transition" && w.latest_version == 1)
    );

    let started = opsgate_tests::start(&mut c, "2.0").await;
    let id = started.id.clone();
    assert_eq!(started.workflow_version, 1);
    assert_eq!(started.status, pb::TransitionStatus::Active as i32);

    // Closed, with every blocker and who it waits on.
    let gate = check_by_service(&mut c, "2.0").await;
    assert!(!gate.open);
    assert_eq!(gate.state, pb::GateState::Closed as i32);
    assert_eq!(gate.transition_id, id);
    let blockers: Vec<&str> = gate.blockers.iter().map(|b| b.node_id.as_str()).collect();
    assert_eq!(
        blockers,
        [
            "support-contacts",
            "knowledge-articles",
            "resolver-group",
            "monitoring",
            "runbook",
            "sla",
            "service-desk-training",
            "readiness-review"
        ]
    );
    let kb = gate
        .blockers
        .iter()
        .find(|b| b.node_id == "knowledge-articles")
        .unwrap();
    assert_eq!(kb.status, pb::NodeStatus::Open as i32);
    assert_eq!(kb.waiting_on_role, "technical_lead");
    assert_eq!(kb.waiting_on_people, ["Tess"]);
    let rg = gate
        .blockers
        .iter()
        .find(|b| b.node_id == "resolver-group")
        .unwrap();
    assert_eq!(rg.status, pb::NodeStatus::Locked as i32);
    assert_eq!(rg.waiting_on_nodes, ["support-contacts"]);

    // Every deliverable in dependency order; the SLA is sent back once and resubmitted.
    let order: Vec<String> = started
        .nodes
        .iter()
        .filter(|n| n.kind == DELIVERABLE && !n.after_go_live)
        .map(|n| n.id.clone())
        .collect();
    assert_eq!(order.len(), 7);
    for deliverable in &order {
        let now = get(&mut c, &id).await;
        assert_eq!(
            status_of(&now, deliverable),
            pb::NodeStatus::Open,
            "{deliverable} should be open by now"
        );
        let t = submit(&mut c, &id, deliverable, owner_of(deliverable))
            .await
            .unwrap();
        assert_eq!(status_of(&t, deliverable), pb::NodeStatus::Submitted);
        if deliverable == "sla" {
            let t = review(
                &mut c,
                &id,
                deliverable,
                pb::ReviewDecision::RequestChanges,
                "add weekend support hours",
                approver_of(deliverable),
            )
            .await
            .unwrap();
            assert_eq!(status_of(&t, deliverable), pb::NodeStatus::ChangesRequested);
            let node = t.nodes.iter().find(|n| n.id == "sla").unwrap();
            assert_eq!(node.comment, "add weekend support hours");
            assert_eq!(node.last_actor, approver_of(deliverable));
            let gate = check_by_id(&mut c, &id).await;
            let sla = gate.blockers.iter().find(|b| b.node_id == "sla").unwrap();
            assert_eq!(sla.status, pb::NodeStatus::ChangesRequested as i32);
            assert_eq!(sla.waiting_on_role, "project_manager");
            assert_eq!(sla.waiting_on_people, ["Pat"]);
            let t = submit(&mut c, &id, deliverable, owner_of(deliverable))
                .await
                .unwrap();
            // The comment stays, marked as history of round 1 (issue 8, item 18).
            let node = t.nodes.iter().find(|n| n.id == "sla").unwrap();
            assert_eq!((node.round, node.comment_round), (2, 1));
            assert_eq!(node.comment, "add weekend support hours");
        }
        let t = review(
            &mut c,
            &id,
            deliverable,
            pb::ReviewDecision::Approve,
            "",
            approver_of(deliverable),
        )
        .await
        .unwrap();
        assert_eq!(status_of(&t, deliverable), pb::NodeStatus::Approved);
    }

    // Open, waiting on the service manager.
    let gate = check_by_service(&mut c, "2.0").await;
    assert!(gate.open);
    assert_eq!(gate.state, pb::GateState::Open as i32);
    assert!(gate.blockers.is_empty());
    assert_eq!(gate.awaiting_acceptance_by, "Sam");
    let t = get(&mut c, &id).await;
    assert_eq!(status_of(&t, "readiness-review"), pb::NodeStatus::Reached);
    assert_eq!(status_of(&t, "go-live"), pb::NodeStatus::Locked);

    let request = c.as_(
        "Sam",
        pb::AcceptHandoverRequest {
            transition_id: id.clone(),
            comment: "operations take it from here".into(),
        },
    );
    let accepted = c
        .transitions
        .accept_handover(request)
        .await
        .unwrap()
        .into_inner()
        .transition
        .unwrap();
    assert_eq!(accepted.status, pb::TransitionStatus::HandedOver as i32);
    assert_eq!(
        status_of(&accepted, "operations-gate"),
        pb::NodeStatus::Accepted
    );
    assert_eq!(status_of(&accepted, "go-live"), pb::NodeStatus::Reached);
    let gate = check_by_id(&mut c, &id).await;
    assert!(gate.open);
    assert_eq!(gate.state, pb::GateState::Accepted as i32);

    server.stop().await;
    assert_event_log_replays(db, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_transition_from_start_to_accepted_handover() {
    for db in TestDb::all().await {
        drive_standard_transition(&db, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_transition_with_a_token_per_participant() {
    for db in TestDb::all().await {
        drive_standard_transition(&db, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_handover_reopens_deliverables_and_closes_the_gate() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let id = opsgate_tests::start(&mut c, "3.1").await.id;
        opsgate_tests::approve_all_before_gate(&mut c, &id).await;
        assert!(check_by_id(&mut c, &id).await.open);

        let rejected = c
            .transitions
            .reject_handover(acting(
                "Sam",
                pb::RejectHandoverRequest {
                    transition_id: id.clone(),
                    reasons: vec!["the runbook has no restore procedure".into()],
                    reopen_deliverables: vec!["runbook".into()],
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .transition
            .unwrap();
        assert_eq!(rejected.status, pb::TransitionStatus::Active as i32);
        assert_eq!(
            status_of(&rejected, "runbook"),
            pb::NodeStatus::ChangesRequested
        );
        assert_eq!(
            status_of(&rejected, "operations-gate"),
            pb::NodeStatus::Locked
        );
        let gate = check_by_id(&mut c, &id).await;
        assert!(!gate.open, "{}", db.backend);
        let blockers: Vec<&str> = gate.blockers.iter().map(|b| b.node_id.as_str()).collect();
        assert_eq!(blockers, ["runbook", "readiness-review"]);
        assert_eq!(gate.blockers[0].waiting_on_role, "technical_lead");

        submit(&mut c, &id, "runbook", "Tess").await.unwrap();
        review(
            &mut c,
            &id,
            "runbook",
            pb::ReviewDecision::Approve,
            "restore added",
            "Olga",
        )
        .await
        .unwrap();
        assert!(check_by_id(&mut c, &id).await.open);
        server.stop().await;
        assert_event_log_replays(&db, &id).await;
    }
}

/// A standard change over gRPC: attachments as evidence, the service manager's milestone
/// sign-off (refused to others and while locked), acceptance completing a workflow without a
/// support window, and a declared `version:` that does not match refused at registration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_change_with_attachments_sign_off_and_declared_version() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let mut start = opsgate_tests::start_payroll("2.1");
        start.workflow_name = "standard-change".into();
        start.participants = [
            ("change_manager", "Carl"),
            ("service_desk_lead", "Dana"),
            ("service_owner", "Owen"),
        ]
        .into_iter()
        .map(|(role, person)| pb::Participant {
            role: role.into(),
            people: vec![person.into()],
        })
        .collect();
        let id = opsgate_tests::start_with(&mut c, start).await.id;
        let sign_off = |who: &str| {
            acting(
                who,
                pb::SignOffMilestoneRequest {
                    transition_id: id.clone(),
                    milestone_id: "service-manager-sign-off".into(),
                    comment: "ready".into(),
                },
            )
        };
        let locked = c
            .transitions
            .sign_off_milestone(sign_off("Sam"))
            .await
            .unwrap_err();
        assert_eq!(
            locked.code(),
            Code::FailedPrecondition,
            "{}",
            locked.message()
        );
        assert!(
            locked.message().contains("cannot be signed off yet"),
            "{}",
            locked.message()
        );

        // The change record, with an attachment: stored and shown with its SHA-256.
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let submitted = c
            .transitions
            .submit_deliverable(acting(
                "Pat",
                pb::SubmitDeliverableRequest {
                    transition_id: id.clone(),
                    deliverable_id: "change-record".into(),
                    evidence: Some(pb::Evidence {
                        links: vec!["https://itsm.example/CHG0042".into()],
                        text: String::new(),
                        attachments: vec![pb::Attachment {
                            uri: "s3://changes/CHG0042.pdf".into(),
                            sha256: sha.to_uppercase(),
                        }],
                    }),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .transition
            .unwrap();
        let node = submitted
            .nodes
            .iter()
            .find(|n| n.id == "change-record")
            .unwrap();
        let evidence = node.evidence.as_ref().unwrap();
        assert_eq!(evidence.attachments.len(), 1);
        assert_eq!(evidence.attachments[0].sha256, sha, "stored lowercase");
        let bad = c
            .transitions
            .submit_deliverable(acting(
                "Pat",
                pb::SubmitDeliverableRequest {
                    transition_id: id.clone(),
                    deliverable_id: "sla-impact".into(),
                    evidence: Some(pb::Evidence {
                        attachments: vec![pb::Attachment {
                            uri: "s3://changes/impact.pdf".into(),
                            sha256: "not-a-hash".into(),
                        }],
                        ..Default::default()
                    }),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);

        for (node, approvers) in [
            ("change-record", &["Carl"][..]),
            ("sla-impact", &["Owen", "Carl"][..]),
            ("updated-knowledge", &["Dana"][..]),
        ] {
            if node != "change-record" {
                submit(&mut c, &id, node, "Pat").await.unwrap();
            }
            for who in approvers {
                review(&mut c, &id, node, pb::ReviewDecision::Approve, "", who)
                    .await
                    .unwrap();
            }
        }
        let stranger = c
            .transitions
            .sign_off_milestone(sign_off("Pat"))
            .await
            .unwrap_err();
        assert_eq!(
            stranger.code(),
            Code::PermissionDenied,
            "{}",
            stranger.message()
        );
        let signed = c
            .transitions
            .sign_off_milestone(sign_off("Sam"))
            .await
            .unwrap()
            .into_inner()
            .transition
            .unwrap();
        assert_eq!(
            status_of(&signed, "service-manager-sign-off"),
            pb::NodeStatus::Reached
        );
        let accepted = c
            .transitions
            .accept_handover(acting(
                "Sam",
                pb::AcceptHandoverRequest {
                    transition_id: id.clone(),
                    comment: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .transition
            .unwrap();
        assert_eq!(accepted.status, pb::TransitionStatus::Completed as i32);

        // standard-change.yaml declares `version: 1`; a changed source still saying 1 is refused.
        let source =
            std::fs::read_to_string(opsgate_tests::workflows_dir().join("standard-change.yaml"))
                .unwrap()
                .replace("Gates a change", "Gates any change");
        let refused = c
            .workflows
            .register_workflow(acting(
                "Smo",
                pb::RegisterWorkflowRequest {
                    source: source.clone(),
                    file_name: "standard-change.yaml".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition);
        assert!(
            refused
                .message()
                .contains("declares version 1, but registering this source makes it version 2"),
            "{}",
            refused.message()
        );
        let bumped = source.replace("version: 1", "version: 2");
        let registered = c
            .workflows
            .register_workflow(acting(
                "Smo",
                pb::RegisterWorkflowRequest {
                    source: bumped,
                    file_name: "standard-change.yaml".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(registered.workflow.unwrap().version, 2);
        server.stop().await;
        assert_event_log_replays(&db, &id).await;
    }
}

/// 64 approvals of one deliverable at once, each from a different eligible person: exactly one
/// approval event, and every other caller is told plainly that it was approved already.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_approvals_give_exactly_one() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let id = opsgate_tests::start(&mut c, "6.4").await.id;
        submit(&mut c, &id, "sla", "Pat").await.unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let mut c = c.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    review(
                        &mut c,
                        &id,
                        "sla",
                        pb::ReviewDecision::Approve,
                        "",
                        &format!("reviewer {i}"),
                    )
                    .await
                })
            })
            .collect();
        let (mut won, mut lost) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => won += 1,
                Err(status) => {
                    assert_eq!(
                        status.code(),
                        Code::FailedPrecondition,
                        "{}",
                        status.message()
                    );
                    assert!(
                        status
                            .message()
                            .contains("cannot be reviewed: it is approved"),
                        "{}",
                        status.message()
                    );
                    lost += 1;
                }
            }
        }
        assert_eq!((won, lost), (1, 63), "{}", db.backend);
        server.stop().await;
        let store = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
        let approvals = store
            .events(&id)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind.name() == "deliverable_approved")
            .count();
        assert_eq!(approvals, 1, "{}", db.backend);
        store.close().await.unwrap();
        assert_event_log_replays(&db, &id).await;
    }
}

/// A transition's history pages through its events in order, each with who, when and what.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_pages_through_every_event() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let id = opsgate_tests::start(&mut c, "7.0").await.id;
        submit(&mut c, &id, "sla", "Pat").await.unwrap();
        review(
            &mut c,
            &id,
            "sla",
            pb::ReviewDecision::RequestChanges,
            "weekends?",
            "Owen",
        )
        .await
        .unwrap();
        let stored = server.store().events(&id).await.unwrap();
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = c
                .transitions
                .list_events(pb::ListEventsRequest {
                    transition_id: id.clone(),
                    page_size: 3,
                    page_token: token.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            assert!(page.events.len() <= 3);
            seen.extend(page.events);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
        let expected: Vec<u64> = stored.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, expected, "{}", db.backend);
        let changes = seen.iter().find(|e| e.kind == "changes_requested").unwrap();
        assert_eq!(
            (
                changes.actor.as_str(),
                changes.node_id.as_str(),
                changes.comment.as_str()
            ),
            ("Owen", "sla", "weekends?")
        );
        assert!(
            seen[0].detail_json.contains("\"participants\""),
            "{}",
            seen[0].detail_json
        );
        let bad = c
            .transitions
            .list_events(pb::ListEventsRequest {
                transition_id: id.clone(),
                page_size: 3,
                page_token: "soon".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        let missing = c
            .transitions
            .list_events(pb::ListEventsRequest {
                transition_id: "01900000-0000-7000-8000-000000000000".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);
        server.stop().await;
    }
}

/// A retried mutation with the same `idempotency-key` gets the first answer and writes nothing;
/// the key used for another request is refused; keys are per principal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_writes_nothing() {
    use opsgate_proto::metadata::IDEMPOTENCY_KEY_METADATA_KEY;
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let id = opsgate_tests::start(&mut c, "8.0").await.id;
        let keyed = |who: &str, deliverable: &str, key: &str| {
            let mut request = acting(
                who,
                pb::SubmitDeliverableRequest {
                    transition_id: id.clone(),
                    deliverable_id: deliverable.into(),
                    evidence: Some(pb::Evidence {
                        links: vec!["https://ci.example/run/42".into()],
                        ..Default::default()
                    }),
                },
            );
            request
                .metadata_mut()
                .insert(IDEMPOTENCY_KEY_METADATA_KEY, key.parse().unwrap());
            request
        };
        let first = c
            .transitions
            .submit_deliverable(keyed("Pat", "sla", "run-42"))
            .await
            .unwrap()
            .into_inner();
        let again = c
            .transitions
            .submit_deliverable(keyed("Pat", "sla", "run-42"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(first, again, "{}", db.backend);
        let events = server.store().events(&id).await.unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|e| e.kind.name() == "deliverable_submitted")
                .count(),
            1
        );
        // Without the key, the same submission is refused: it is submitted already.
        let plain = submit(&mut c, &id, "sla", "Pat").await.unwrap_err();
        assert_eq!(plain.code(), Code::FailedPrecondition);
        // The key for another request is refused, and writes nothing.
        let other = c
            .transitions
            .submit_deliverable(keyed("Pat", "support-contacts", "run-42"))
            .await
            .unwrap_err();
        assert_eq!(other.code(), Code::FailedPrecondition);
        assert!(
            other.message().contains("was used for a different request"),
            "{}",
            other.message()
        );
        assert_eq!(
            server.store().events(&id).await.unwrap().len(),
            events.len()
        );
        // Keys are per principal: Tess's run-42 is her own.
        c.transitions
            .submit_deliverable(keyed("Tess", "knowledge-articles", "run-42"))
            .await
            .unwrap();
        server.stop().await;
    }
}

/// The SMO replaces a role's people on a running transition: recorded as an event, stored with
/// the transition (a fresh store reads it), and the old holder no longer acts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smo_changes_the_participants_of_a_running_transition() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let id = opsgate_tests::start(&mut c, "9.0").await.id;
        submit(&mut c, &id, "support-contacts", "Pat")
            .await
            .unwrap();
        let changed = c
            .transitions
            .change_participants(acting(
                "Smo",
                pb::ChangeParticipantsRequest {
                    transition_id: id.clone(),
                    role: "service_desk_lead".into(),
                    people: vec!["Lee".into()],
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .transition
            .unwrap();
        let desk = changed
            .participants
            .iter()
            .find(|p| p.role == "service_desk_lead")
            .unwrap();
        assert_eq!(desk.people, ["Lee"]);
        let refused = review(
            &mut c,
            &id,
            "support-contacts",
            pb::ReviewDecision::Approve,
            "",
            "Dana",
        )
        .await
        .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied);
        review(
            &mut c,
            &id,
            "support-contacts",
            pb::ReviewDecision::Approve,
            "",
            "Lee",
        )
        .await
        .unwrap();
        let bad = c
            .transitions
            .change_participants(acting(
                "Smo",
                pb::ChangeParticipantsRequest {
                    transition_id: id.clone(),
                    role: "service_manager".into(),
                    people: vec!["A".into(), "B".into()],
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        server.stop().await;
        let store = Store::connect(ConnectOptions::new(&db.url)).await.unwrap();
        let view = store.get_transition(&id).await.unwrap();
        let lee = opsgate_domain::Actor::parse("Lee").unwrap();
        assert_eq!(
            view.state.meta.participants
                [&opsgate_domain::RoleName::parse("service_desk_lead").unwrap()],
            [lee]
        );
        let events = store.events(&id).await.unwrap();
        let change = events
            .iter()
            .find(|e| e.kind.name() == "participants_changed")
            .unwrap();
        assert_eq!(change.actor.as_str(), "Smo");
        store.close().await.unwrap();
        assert_event_log_replays(&db, &id).await;
    }
}
