//! The defects found by testing opsgate from the outside (issue 8), each as the outside saw it:
//! over gRPC with raw metadata and raw bytes, on SQLite and (when configured) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_proto::metadata::{ACTOR_BIN_METADATA_KEY, ACTOR_METADATA_KEY};
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::check_gate_request::Target;
use opsgate_tests::{TestDb, TestServer, acting, get, review, start_payroll, submit};
use tonic::Code;
use tonic::metadata::{BinaryMetadataValue, MetadataValue};

fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> (Code, String) {
    match result {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(s) => (s.code(), s.message().to_owned()),
    }
}

/// An approval of `support-contacts` with the actor given by `metadata`.
fn approval(
    id: &str,
    metadata: impl FnOnce(&mut tonic::metadata::MetadataMap),
) -> tonic::Request<pb::ReviewDeliverableRequest> {
    let mut request = tonic::Request::new(pb::ReviewDeliverableRequest {
        transition_id: id.into(),
        deliverable_id: "support-contacts".into(),
        decision: pb::ReviewDecision::Approve.into(),
        comment: String::new(),
    });
    metadata(request.metadata_mut());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_names_act_in_either_metadata_form_and_two_actors_are_refused() {
    let db = TestDb::sqlite();
    let server = TestServer::start(&db).await;
    let mut c = server.clients().await;
    let mut start = start_payroll("2.0");
    start.participants[0] = pb::Participant {
        role: "service_desk_lead".into(),
        people: vec!["José Müller".into(), "Zoë Ødegaard".into()],
    };
    let t = opsgate_tests::start_with(&mut c, start).await;
    submit(&mut c, &t.id, "support-contacts", "Pat")
        .await
        .unwrap();

    // Two actors on one call: refused, nothing recorded.
    let (code_, message) = code(
        c.transitions
            .review_deliverable(approval(&t.id, |m| {
                m.append(
                    ACTOR_METADATA_KEY,
                    MetadataValue::from_static("Jos%C3%A9 M%C3%BCller"),
                );
                m.append(ACTOR_METADATA_KEY, MetadataValue::from_static("Mallory"));
            }))
            .await,
    );
    assert_eq!(code_, Code::InvalidArgument, "{message}");
    assert!(message.contains("send exactly one"), "{message}");

    // A malformed escape is refused with what to do.
    let (code_, message) = code(
        c.transitions
            .review_deliverable(approval(&t.id, |m| {
                m.insert(ACTOR_METADATA_KEY, MetadataValue::from_static("50% off"));
            }))
            .await,
    );
    assert_eq!(code_, Code::InvalidArgument, "{message}");

    // Percent-encoded text form: José approves; the decoded name is recorded.
    let approved = c
        .transitions
        .review_deliverable(approval(&t.id, |m| {
            m.insert(
                ACTOR_METADATA_KEY,
                MetadataValue::from_static("Jos%C3%A9 M%C3%BCller"),
            );
        }))
        .await
        .unwrap()
        .into_inner()
        .transition
        .unwrap();
    let node = approved
        .nodes
        .iter()
        .find(|n| n.id == "support-contacts")
        .unwrap();
    assert_eq!(node.approved_by, ["José Müller"]);

    // The binary form: Zoë approves knowledge-articles after Tess submits it.
    submit(&mut c, &t.id, "knowledge-articles", "Tess")
        .await
        .unwrap();
    let mut request = tonic::Request::new(pb::ReviewDeliverableRequest {
        transition_id: t.id.clone(),
        deliverable_id: "knowledge-articles".into(),
        decision: pb::ReviewDecision::Approve.into(),
        comment: String::new(),
    });
    request.metadata_mut().insert_bin(
        ACTOR_BIN_METADATA_KEY,
        BinaryMetadataValue::from_bytes("Zoë Ødegaard".as_bytes()),
    );
    let approved = c
        .transitions
        .review_deliverable(request)
        .await
        .unwrap()
        .into_inner()
        .transition
        .unwrap();
    let node = approved
        .nodes
        .iter()
        .find(|n| n.id == "knowledge-articles")
        .unwrap();
    assert_eq!(node.approved_by, ["Zoë Ødegaard"]);
    server.stop().await;
    opsgate_tests::assert_every_log_replays(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handover_is_the_service_managers_and_every_acting_role_is_named() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;

        // Starting without people for operations_lead and service_owner lists both.
        let mut start = start_payroll("3.0");
        start
            .participants
            .retain(|p| p.role == "service_desk_lead" || p.role == "technical_lead");
        start.participants.push(pb::Participant {
            role: "smo".into(),
            people: vec![],
        });
        let (code_, message) = code(c.transitions.start_transition(acting("Pat", start)).await);
        assert_eq!(code_, Code::InvalidArgument, "{message}");
        assert!(
            message.contains("'smo' is listed without people"),
            "{message}"
        );
        let mut start = start_payroll("3.0");
        start
            .participants
            .retain(|p| p.role == "service_desk_lead" || p.role == "technical_lead");
        let (_, message) = code(c.transitions.start_transition(acting("Pat", start)).await);
        assert!(
            message.contains("nobody is named for: operations_lead, service_owner"),
            "{message}"
        );

        // A target go-live in the past needs saying so.
        let mut start = start_payroll("3.0");
        start.target_go_live = "2020-01-01".into();
        let (code_, message) = code(
            c.transitions
                .start_transition(acting("Pat", start.clone()))
                .await,
        );
        assert_eq!(code_, Code::InvalidArgument, "{message}");
        assert!(message.contains("is in the past"), "{message}");
        start.allow_past_go_live = true;
        c.transitions
            .start_transition(acting("Pat", start))
            .await
            .unwrap();

        // Open the gate of payroll 2.0, then: Mallory and Pat may not accept or reject.
        let id = opsgate_tests::start(&mut c, "2.0").await.id;
        opsgate_tests::approve_all_before_gate(&mut c, &id).await;
        let before = get(&mut c, &id).await;
        for who in ["Mallory", "Pat"] {
            let (code_, message) = code(
                c.transitions
                    .accept_handover(acting(
                        who,
                        pb::AcceptHandoverRequest {
                            transition_id: id.clone(),
                            comment: String::new(),
                        },
                    ))
                    .await,
            );
            assert_eq!(code_, Code::PermissionDenied, "{message}");
            assert!(message.contains("only the transition's service manager, Sam, may"));
            let (code_, _) = code(
                c.transitions
                    .reject_handover(acting(
                        who,
                        pb::RejectHandoverRequest {
                            transition_id: id.clone(),
                            reasons: vec!["no".into()],
                            reopen_deliverables: vec!["runbook".into()],
                        },
                    ))
                    .await,
            );
            assert_eq!(code_, Code::PermissionDenied);
        }
        assert_eq!(get(&mut c, &id).await, before, "{}", db.backend);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_tokens_and_bytes_are_invalid_argument_on_every_backend() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;

        // Registering without an actor stores nothing.
        let source =
            std::fs::read_to_string(opsgate_tests::workflows_dir().join("standard-change.yaml"))
                .unwrap()
                .replace("Gates a change", "Gates any change");
        let (code_, _) = code(
            c.workflows
                .register_workflow(pb::RegisterWorkflowRequest {
                    source,
                    file_name: "x.yaml".into(),
                })
                .await,
        );
        assert_eq!(code_, Code::Unauthenticated);
        let listed = c
            .workflows
            .list_workflows(pb::ListWorkflowsRequest {})
            .await
            .unwrap();
        assert!(
            listed
                .into_inner()
                .workflows
                .iter()
                .all(|w| w.latest_version == 1)
        );

        // A 20,000-character id is not repeated whole (grpc-core clients could not read it).
        let long = "x".repeat(20_000);
        let (code_, message) = code(
            c.transitions
                .get_transition(pb::GetTransitionRequest {
                    transition_id: long.clone(),
                })
                .await,
        );
        assert_eq!(code_, Code::InvalidArgument);
        assert!(message.len() < 400, "{} bytes", message.len());
        assert!(message.contains('…'), "{message}");

        // NUL bytes never reach the database: the same answer on both backends.
        let (code_, message) = code(
            c.transitions
                .get_transition(pb::GetTransitionRequest {
                    transition_id: "abc\0def".into(),
                })
                .await,
        );
        assert_eq!(code_, Code::InvalidArgument, "{}: {message}", db.backend);
        let (code_, message) = code(
            c.gates
                .check_gate(pb::CheckGateRequest {
                    target: Some(Target::Service(pb::ServiceRef {
                        name: "pay\0roll".into(),
                        version: "1".into(),
                    })),
                })
                .await,
        );
        assert_eq!(code_, Code::InvalidArgument, "{}: {message}", db.backend);
        let mut start = start_payroll("\0");
        start.service_name = "pay\0roll".into();
        let (code_, message) = code(c.transitions.start_transition(acting("Pat", start)).await);
        assert_eq!(code_, Code::InvalidArgument, "{}: {message}", db.backend);

        // A page token we never gave out is not "no more transitions".
        let (code_, message) = code(
            c.transitions
                .list_transitions(pb::ListTransitionsRequest {
                    page_size: 10,
                    page_token: "garbage".into(),
                })
                .await,
        );
        assert_eq!(code_, Code::InvalidArgument, "{message}");

        // A submitted deliverable's blocker names the role it waits on.
        let id = opsgate_tests::start(&mut c, "2.0").await.id;
        submit(&mut c, &id, "sla", "Pat").await.unwrap();
        let gate = c
            .gates
            .check_gate(pb::CheckGateRequest {
                target: Some(Target::TransitionId(id.clone())),
            })
            .await
            .unwrap()
            .into_inner();
        let sla = gate.blockers.iter().find(|b| b.node_id == "sla").unwrap();
        assert_eq!(sla.waiting_on_role, "service_owner");
        assert!(sla.waiting_on_people.contains(&"Owen".to_owned()));

        // Bytes that are not UTF-8 in a string field: InvalidArgument, not Internal.
        let (code_, message) = raw_register(&server.url, b"name: caf\xe9\n").await;
        assert_eq!(code_, Code::InvalidArgument, "{message}");
        assert!(message.contains("UTF-8"), "{message}");
        server.stop().await;
    }
}

/// `RegisterWorkflowRequest` with `source` (field 1) as raw bytes, as a broken client sends it.
#[derive(Clone, PartialEq, prost::Message)]
struct RawRegister {
    #[prost(bytes = "vec", tag = "1")]
    source: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Empty {}

async fn raw_register(url: &str, source: &[u8]) -> (Code, String) {
    let channel = tonic::transport::Channel::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opsgate.v1.WorkflowService/RegisterWorkflow",
    );
    let request = acting(
        "Smo",
        RawRegister {
            source: source.to_vec(),
        },
    );
    let result: Result<tonic::Response<Empty>, _> = grpc
        .unary(request, path, tonic_prost::ProstCodec::default())
        .await;
    code(result)
}

/// Issue 14, item 1: a transition filled to its limit is still readable, and every write that
/// was stored is answered OK (before, the seventh maximal submission was stored but answered
/// `OutOfRange`, and the transition could never be read again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transition_filled_to_its_limit_is_readable_and_every_stored_write_is_answered_ok() {
    for db in TestDb::all().await {
        let server = TestServer::start_with(&db, None).await;
        let mut c = server.clients().await;
        let yaml = opsgate_tests::wide_workflow(20);
        c.workflows
            .register_workflow(acting(
                "Smo",
                pb::RegisterWorkflowRequest {
                    source: yaml,
                    file_name: "wide.yaml".into(),
                },
            ))
            .await
            .unwrap();
        let mut start = start_payroll("9.9");
        start.workflow_name = "wide".into();
        start.participants = vec![pb::Participant {
            role: "desk".into(),
            people: vec!["Dana".into()],
        }];
        let id = opsgate_tests::start_with(&mut c, start).await.id;
        let links: Vec<String> = (0..opsgate_domain::transition::MAX_LINKS)
            .map(|i| format!("https://docs.example/{i}/{}", "p".repeat(2000)))
            .collect();
        let text = "x".repeat(opsgate_domain::transition::MAX_TEXT_LEN);
        let mut stored = 0;
        let mut refused = None;
        for i in 0..20 {
            let before = get(&mut c, &id).await.event_count;
            let result = c
                .transitions
                .submit_deliverable(acting(
                    "Pat",
                    pb::SubmitDeliverableRequest {
                        transition_id: id.clone(),
                        deliverable_id: format!("d{i}"),
                        evidence: Some(pb::Evidence {
                            links: links.clone(),
                            text: text.clone(),
                            attachments: vec![],
                        }),
                    },
                ))
                .await;
            let after = get(&mut c, &id).await.event_count;
            match result {
                Ok(_) => {
                    assert!(after > before, "answered OK but nothing stored");
                    stored += 1;
                }
                Err(status) => {
                    // A refusal stored nothing: what is stored is always answered OK.
                    assert_eq!(
                        after, before,
                        "{}: stored but answered {status:?}",
                        db.backend
                    );
                    refused = Some(status);
                    break;
                }
            }
        }
        let refused = refused.expect("the content bound refuses before 20 maximal submissions");
        assert_eq!(
            refused.code(),
            Code::FailedPrecondition,
            "{}",
            refused.message()
        );
        assert!(
            refused.message().contains("link to documents instead"),
            "{}",
            refused.message()
        );
        assert!(stored >= 5, "{stored}");
        // Full, and still readable whole; reviews still work.
        let t = get(&mut c, &id).await;
        assert_eq!(
            t.nodes.iter().filter(|n| n.evidence.is_some()).count(),
            stored
        );
        review(&mut c, &id, "d0", pb::ReviewDecision::Approve, "", "Dana")
            .await
            .unwrap();
        server.stop().await;
    }
}

/// Item 16: racing starts of one service version: one wins, and every loser is told which
/// transition exists, on PostgreSQL (where the race reaches the unique index) as on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_duplicate_starts_name_the_existing_transition() {
    for db in TestDb::all().await {
        let server = TestServer::start(&db).await;
        let c = server.clients().await;
        for round in 0..6 {
            let version = format!("race.{round}");
            let tasks: Vec<_> = (0..12)
                .map(|_| {
                    let mut c = c.clone();
                    let version = version.clone();
                    tokio::spawn(async move {
                        c.transitions
                            .start_transition(acting("Pat", start_payroll(&version)))
                            .await
                    })
                })
                .collect();
            let mut winners = Vec::new();
            let mut losers = Vec::new();
            for t in tasks {
                match t.await.unwrap() {
                    Ok(r) => winners.push(r.into_inner().transition.unwrap().id),
                    Err(s) => losers.push(s),
                }
            }
            assert_eq!(winners.len(), 1, "{}: {losers:?}", db.backend);
            let expected = format!(
                "a transition for service 'payroll' version '{version}' already exists: {}",
                winners[0]
            );
            for s in &losers {
                assert_eq!(s.code(), Code::AlreadyExists, "{}: {s:?}", db.backend);
                assert_eq!(s.message(), expected, "{}", db.backend);
            }
        }
        server.stop().await;
    }
}
