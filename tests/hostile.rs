//! Hostile requests, as properties against a real server: random bytes as the body of every RPC,
//! and random valid-shaped messages built from awkward values. No panic, no internal error, the
//! server keeps serving, and nothing half-written is stored.
//!
//! `OPSGATE_HOSTILE_CASES` sets the cases per property (default 128; `make soak` runs 2,000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{Buf, BufMut};
use opsgate_proto::v1 as pb;
use opsgate_tests::{Clients, TestDb, TestServer, assert_every_log_replays, start};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

fn cases() -> u32 {
    std::env::var("OPSGATE_HOSTILE_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(128)
}

/// Sends and receives message bodies as raw bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

const METHODS: [&str; 39] = [
    "/opsgate.v1.WorkflowService/RegisterWorkflow",
    "/opsgate.v1.WorkflowService/GetWorkflow",
    "/opsgate.v1.WorkflowService/ListWorkflows",
    "/opsgate.v1.TransitionService/StartTransition",
    "/opsgate.v1.TransitionService/GetTransition",
    "/opsgate.v1.TransitionService/ListTransitions",
    "/opsgate.v1.TransitionService/SubmitDeliverable",
    "/opsgate.v1.TransitionService/ReviewDeliverable",
    "/opsgate.v1.TransitionService/AcceptHandover",
    "/opsgate.v1.TransitionService/RejectHandover",
    "/opsgate.v1.TransitionService/SignOffMilestone",
    "/opsgate.v1.TransitionService/ListEvents",
    "/opsgate.v1.TransitionService/ChangeParticipants",
    "/opsgate.v1.TransitionService/WaiveDeliverable",
    "/opsgate.v1.TransitionService/GetTemplate",
    "/opsgate.v1.TransitionService/GetPlan",
    "/opsgate.v1.CatalogService/AddService",
    "/opsgate.v1.CatalogService/SetService",
    "/opsgate.v1.CatalogService/GetService",
    "/opsgate.v1.CatalogService/ListServices",
    "/opsgate.v1.TransitionService/GetCalendar",
    "/opsgate.v1.TransitionService/RescheduleTransition",
    "/opsgate.v1.GateService/CheckGate",
    "/opsgate.v1.GateService/WatchGate",
    "/opsgate.v1.IdentityService/CreateToken",
    "/opsgate.v1.IdentityService/ListTokens",
    "/opsgate.v1.IdentityService/RevokeToken",
    "/opsgate.v1.IdentityService/AddDelegation",
    "/opsgate.v1.IdentityService/ListDelegations",
    "/opsgate.v1.IdentityService/RevokeDelegation",
    "/opsgate.v1.IdentityService/SetPerson",
    "/opsgate.v1.IdentityService/ListPeople",
    "/opsgate.v1.AuditService/VerifyLog",
    "/opsgate.v1.AuditService/ExportEvents",
    "/opsgate.v1.AuditService/ListStalled",
    "/opsgate.v1.AuditService/GetForecast",
    "/opsgate.v1.AuditService/GetKpis",
    "/opsgate.v1.NotificationService/ListFailedDeliveries",
    "/opsgate.v1.NotificationService/RetryDelivery",
];

/// Every method of the published contract is in [`METHODS`] (a new RPC gets hostile bytes too).
#[test]
fn every_published_method_gets_random_bytes() {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(opsgate_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut published: Vec<String> = set
        .file
        .iter()
        .filter(|f| f.package() == "opsgate.v1")
        .flat_map(|f| {
            f.service.iter().flat_map(|s| {
                s.method
                    .iter()
                    .map(move |m| format!("/opsgate.v1.{}/{}", s.name(), m.name()))
            })
        })
        .collect();
    published.sort();
    let mut listed: Vec<String> = METHODS.iter().map(|m| (*m).to_owned()).collect();
    listed.sort();
    assert_eq!(published, listed);
}

/// Codes a request can never earn: they would mean a bug (or a panic) on the server.
fn assert_no_server_fault(status: &tonic::Status, what: &str) {
    assert!(
        !matches!(
            status.code(),
            Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable
        ),
        "{what}: {status:?}"
    );
}

async fn still_serving(channel: &Channel) {
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("the server stopped answering");
}

#[test]
fn random_bytes_as_any_request_get_a_status_and_the_server_keeps_serving() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = TestDb::sqlite();
    let (server, channel) = rt.block_on(async {
        let server = TestServer::start(&db).await;
        let channel = Channel::from_shared(server.url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        (server, channel)
    });
    let mut runner = TestRunner::new(Config::with_cases(cases()));
    let strategy = (
        0..METHODS.len(),
        proptest::collection::vec(any::<u8>(), 0..512),
    );
    runner
        .run(&strategy, |(method, body)| {
            rt.block_on(async {
                let mut grpc = tonic::client::Grpc::new(channel.clone());
                grpc.ready().await.unwrap();
                let path = PathAndQuery::from_static(METHODS[method]);
                // Bytes that happen to decode are a valid request; the rest must be refused as
                // undecodable. Either way a status, never a dropped connection.
                if let Err(status) = grpc.unary(tonic::Request::new(body), path, Raw).await {
                    assert!(
                        status.code() != Code::Unknown && status.code() != Code::Unavailable,
                        "{}: {status:?}",
                        METHODS[method]
                    );
                }
            });
            Ok(())
        })
        .unwrap();
    rt.block_on(async {
        still_serving(&channel).await;
        server.stop().await;
        assert_every_log_replays(&db.url).await;
    });
}

/// Awkward values for string fields; `$ID` is replaced by a real transition id.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("   ".to_owned()),
        Just("$ID".to_owned()),
        Just("sla".to_owned()),
        Just("runbook".to_owned()),
        Just("go-live".to_owned()),
        Just("standard-transition".to_owned()),
        Just("payroll".to_owned()),
        Just("2026-12-01".to_owned()),
        Just("2026-02-30".to_owned()),
        Just("Pat".to_owned()),
        Just("Sam".to_owned()),
        Just("x".repeat(70_000)),
        Just("name: x\ngate: {id: g}\n".to_owned()),
        "\\PC{0,24}",
        any::<String>(),
    ]
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(text(), 0..4)
}

fn version() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![
        Just(None),
        Just(Some(0)),
        Just(Some(1)),
        any::<u32>().prop_map(Some)
    ]
}

fn evidence() -> impl Strategy<Value = Option<pb::Evidence>> {
    let attachment = (text(), text()).prop_map(|(uri, sha256)| pb::Attachment { uri, sha256 });
    proptest::option::of(
        (texts(), text(), proptest::collection::vec(attachment, 0..3)).prop_map(
            |(links, text, attachments)| pb::Evidence {
                links,
                text,
                attachments,
            },
        ),
    )
}

/// One request to one RPC, with the actor it is made as.
#[derive(Debug, Clone)]
enum Call {
    Register(pb::RegisterWorkflowRequest),
    GetWorkflow(pb::GetWorkflowRequest),
    Start(pb::StartTransitionRequest),
    Get(pb::GetTransitionRequest),
    List(pb::ListTransitionsRequest),
    Submit(pb::SubmitDeliverableRequest),
    Review(pb::ReviewDeliverableRequest),
    Accept(pb::AcceptHandoverRequest),
    Reject(pb::RejectHandoverRequest),
    SignOff(pb::SignOffMilestoneRequest),
    Gate(pb::CheckGateRequest),
    Waive(pb::WaiveDeliverableRequest),
    Delegate(pb::AddDelegationRequest),
}

/// Timestamps: unset, around now, and at the ends of what the type holds.
fn moment() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    let now = chrono::Utc::now().timestamp();
    prop_oneof![
        Just(None),
        (now - 86_400..now + 30 * 86_400, 0..1_000_000_000i32)
            .prop_map(|(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos })),
        (any::<i64>(), any::<i32>())
            .prop_map(|(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos })),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    let participant = (text(), texts()).prop_map(|(role, people)| pb::Participant { role, people });
    prop_oneof![
        (text(), text()).prop_map(|(source, file_name)| Call::Register(
            pb::RegisterWorkflowRequest { source, file_name }
        )),
        (text(), version()).prop_map(|(name, version)| Call::GetWorkflow(pb::GetWorkflowRequest {
            name,
            version
        })),
        (
            (text(), version(), text(), text()),
            (text(), text(), text()),
            proptest::collection::vec(participant, 0..3)
        )
            .prop_map(
                |(
                    (workflow_name, workflow_version, service_name, service_version),
                    (project_manager, service_manager, target_go_live),
                    participants,
                )| Call::Start(pb::StartTransitionRequest {
                    workflow_name,
                    workflow_version,
                    service_name,
                    service_version,
                    project_manager,
                    service_manager,
                    target_go_live,
                    participants,
                    allow_past_go_live: false,
                })
            ),
        text().prop_map(|transition_id| Call::Get(pb::GetTransitionRequest { transition_id })),
        (any::<u32>(), text()).prop_map(|(page_size, page_token)| Call::List(
            pb::ListTransitionsRequest {
                page_size,
                page_token
            }
        )),
        (text(), text(), evidence()).prop_map(|(transition_id, deliverable_id, evidence)| {
            Call::Submit(pb::SubmitDeliverableRequest {
                transition_id,
                deliverable_id,
                evidence,
            })
        }),
        (text(), text(), any::<i32>(), text()).prop_map(
            |(transition_id, deliverable_id, decision, comment)| {
                Call::Review(pb::ReviewDeliverableRequest {
                    transition_id,
                    deliverable_id,
                    decision,
                    comment,
                })
            }
        ),
        (text(), text()).prop_map(|(transition_id, comment)| Call::Accept(
            pb::AcceptHandoverRequest {
                transition_id,
                comment
            }
        )),
        (text(), texts(), texts()).prop_map(|(transition_id, reasons, reopen_deliverables)| {
            Call::Reject(pb::RejectHandoverRequest {
                transition_id,
                reasons,
                reopen_deliverables,
            })
        }),
        (text(), text(), text()).prop_map(|(transition_id, milestone_id, comment)| {
            Call::SignOff(pb::SignOffMilestoneRequest {
                transition_id,
                milestone_id,
                comment,
            })
        }),
        prop_oneof![
            Just(None),
            text().prop_map(|id| Some(pb::check_gate_request::Target::TransitionId(id))),
            (text(), text()).prop_map(|(name, version)| Some(
                pb::check_gate_request::Target::Service(pb::ServiceRef { name, version })
            )),
        ]
        .prop_map(|target| Call::Gate(pb::CheckGateRequest { target })),
        (text(), text(), text(), moment()).prop_map(
            |(transition_id, deliverable_id, reason, until)| {
                Call::Waive(pb::WaiveDeliverableRequest {
                    transition_id,
                    deliverable_id,
                    reason,
                    until,
                })
            }
        ),
        (text(), text(), moment(), moment(), text()).prop_map(
            |(to, from, starts_at, ends_at, reason)| {
                Call::Delegate(pb::AddDelegationRequest {
                    to,
                    from,
                    starts_at,
                    ends_at,
                    reason,
                })
            }
        ),
    ]
}

fn actor() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("Pat".to_owned())),
        Just(Some("Sam".to_owned())),
        Just(Some("Olga".to_owned())),
        Just(Some(" ".to_owned())),
        "[ -~]{0,300}".prop_map(Some),
    ]
}

fn with_id(value: &mut String, id: &str) {
    if value == "$ID" {
        *value = id.to_owned();
    }
}

/// Makes the call as `actor`; the status when refused.
async fn make(
    c: &mut Clients,
    mut call: Call,
    actor: Option<String>,
    id: &str,
) -> Option<tonic::Status> {
    fn request<T>(message: T, actor: &Option<String>) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = actor.as_deref().and_then(|a| a.parse().ok()) {
            request
                .metadata_mut()
                .insert(opsgate_proto::metadata::ACTOR_METADATA_KEY, value);
        }
        request
    }
    let a = &actor;
    match &mut call {
        Call::Register(r) => c
            .workflows
            .register_workflow(request(r.clone(), a))
            .await
            .err(),
        Call::GetWorkflow(r) => c.workflows.get_workflow(request(r.clone(), a)).await.err(),
        Call::Start(r) => c
            .transitions
            .start_transition(request(r.clone(), a))
            .await
            .err(),
        Call::Get(r) => {
            with_id(&mut r.transition_id, id);
            c.transitions
                .get_transition(request(r.clone(), a))
                .await
                .err()
        }
        Call::List(r) => c
            .transitions
            .list_transitions(request(r.clone(), a))
            .await
            .err(),
        Call::Submit(r) => {
            with_id(&mut r.transition_id, id);
            c.transitions
                .submit_deliverable(request(r.clone(), a))
                .await
                .err()
        }
        Call::Review(r) => {
            with_id(&mut r.transition_id, id);
            c.transitions
                .review_deliverable(request(r.clone(), a))
                .await
                .err()
        }
        Call::Accept(r) => {
            with_id(&mut r.transition_id, id);
            c.transitions
                .accept_handover(request(r.clone(), a))
                .await
                .err()
        }
        Call::Reject(r) => {
            with_id(&mut r.transition_id, id);
            c.transitions
                .reject_handover(request(r.clone(), a))
                .await
                .err()
        }
        Call::SignOff(r) => {
            with_id(&mut r.transition_id, id);
            c.transitions
                .sign_off_milestone(request(r.clone(), a))
                .await
                .err()
        }
        Call::Gate(r) => {
            if let Some(pb::check_gate_request::Target::TransitionId(t)) = &mut r.target {
                with_id(t, id);
            }
            c.gates.check_gate(request(r.clone(), a)).await.err()
        }
        Call::Waive(r) => {
            with_id(&mut r.transition_id, id);
            c.transitions
                .waive_deliverable(request(r.clone(), a))
                .await
                .err()
        }
        Call::Delegate(r) => c.identity.add_delegation(request(r.clone(), a)).await.err(),
    }
}

#[test]
fn random_valid_shaped_requests_never_fault_the_server_nor_half_write() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = TestDb::sqlite();
    let (server, c, id) = rt.block_on(async {
        let server = TestServer::start(&db).await;
        let mut c = server.clients().await;
        let id = start(&mut c, "1.0").await.id;
        (server, c, id)
    });
    let mut runner = TestRunner::new(Config::with_cases(cases()));
    runner
        .run(&(call(), actor()), |(call, actor)| {
            let what = format!("{call:?} as {actor:?}");
            let what: String = what.chars().take(400).collect();
            rt.block_on(async {
                // Clients are cheap clones of one channel.
                if let Some(status) = make(&mut c.clone(), call, actor, &id).await {
                    assert_no_server_fault(&status, &what);
                }
            });
            Ok(())
        })
        .unwrap();
    rt.block_on(async {
        server.stop().await;
        assert_every_log_replays(&db.url).await;
    });
}
