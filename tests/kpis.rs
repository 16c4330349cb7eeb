//! KPIs and the forecast over gRPC: a fixed history (`tests/data/kpi/history.txt`) replayed on a
//! pinned clock gives exactly the figures worked out by hand below (SQLite and PostgreSQL); a
//! window and a workflow filter narrow them; the migration that fills the facts of an existing
//! database computes exactly the facts the server wrote; and the forecast of a running transition
//! moves when the history says a deliverable takes longer than planned, naming it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::audit_service_client::AuditServiceClient;
use opsgate_proto::v1::transition_service_client::TransitionServiceClient;
use opsgate_server::Config;
use opsgate_tests::{MovingClock, TestDb, TestServer, acting};
use sea_orm::{ConnectionTrait, Database};

const DAY: f64 = 86_400.0;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/kpi")
}

fn moment(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

type Transitions = TransitionServiceClient<tonic::transport::Channel>;

/// Starting `SERVICE 1.0` on the kpi workflow, reviewed by `reviewer`.
fn kpi_start(service: &str, target: &str, reviewer: &str) -> pb::StartTransitionRequest {
    pb::StartTransitionRequest {
        workflow_name: "kpi".into(),
        service_name: service.into(),
        service_version: "1.0".into(),
        project_manager: "Pat".into(),
        service_manager: "Sam".into(),
        target_go_live: target.into(),
        participants: vec![pb::Participant {
            role: "reviewer".into(),
            people: vec![reviewer.into()],
        }],
        ..Default::default()
    }
}

async fn submit_as(
    t: &mut Transitions,
    actor: &str,
    id: &str,
    node: &str,
) -> Result<(), tonic::Status> {
    let request = pb::SubmitDeliverableRequest {
        transition_id: id.into(),
        deliverable_id: node.into(),
        evidence: Some(pb::Evidence {
            links: vec!["https://wiki.example/doc".into()],
            ..Default::default()
        }),
    };
    t.submit_deliverable(acting(actor, request))
        .await
        .map(|_| ())
}

async fn review_as(
    t: &mut Transitions,
    actor: &str,
    id: &str,
    node: &str,
    decision: pb::ReviewDecision,
) -> Result<(), tonic::Status> {
    let request = pb::ReviewDeliverableRequest {
        transition_id: id.into(),
        deliverable_id: node.into(),
        decision: decision as i32,
        comment: "see the review notes".into(),
    };
    t.review_deliverable(acting(actor, request))
        .await
        .map(|_| ())
}

/// Replays the history file: each line's command as its actor at its moment. Returns the
/// transition ids by service.
async fn replay(url: &str, time: &MovingClock) -> std::collections::HashMap<String, String> {
    let mut transitions = TransitionServiceClient::connect(url.to_owned())
        .await
        .unwrap();
    let mut ids = std::collections::HashMap::new();
    let history = std::fs::read_to_string(data_dir().join("history.txt")).unwrap();
    for line in history
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut fields = line.split_whitespace();
        let (at, actor, command, service) = (
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        let argument = fields.collect::<Vec<_>>().join(" ");
        time.pin(moment(at));
        let id = ids.get(service).cloned().unwrap_or_default();
        let mut parts = argument.split('|').map(str::to_owned);
        let first = parts.next().unwrap_or_default();
        let rest: Vec<String> = parts.collect();
        let result = match command {
            "start" => {
                let args: std::collections::HashMap<&str, &str> = first
                    .split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .collect();
                let t = transitions
                    .start_transition(acting(
                        actor,
                        kpi_start(service, args["target"], args["reviewer"]),
                    ))
                    .await;
                if let Ok(t) = &t {
                    let t = t.get_ref().transition.as_ref().unwrap();
                    ids.insert(service.to_owned(), t.id.clone());
                }
                t.map(|_| ())
            }
            "submit" => submit_as(&mut transitions, actor, &id, &first).await,
            "approve" => {
                review_as(
                    &mut transitions,
                    actor,
                    &id,
                    &first,
                    pb::ReviewDecision::Approve,
                )
                .await
            }
            "changes" => {
                let decision = pb::ReviewDecision::RequestChanges;
                review_as(&mut transitions, actor, &id, &first, decision).await
            }
            "waive" => transitions
                .waive_deliverable(acting(
                    actor,
                    pb::WaiveDeliverableRequest {
                        transition_id: id,
                        deliverable_id: first,
                        reason: rest.join("|"),
                        until: Some(timestamp(moment("2026-04-01T00:00:00Z"))),
                    },
                ))
                .await
                .map(|_| ()),
            "accept" => transitions
                .accept_handover(acting(
                    actor,
                    pb::AcceptHandoverRequest {
                        transition_id: id,
                        comment: String::new(),
                    },
                ))
                .await
                .map(|_| ()),
            "reject" => transitions
                .reject_handover(acting(
                    actor,
                    pb::RejectHandoverRequest {
                        transition_id: id,
                        reasons: rest,
                        reopen_deliverables: vec![first],
                    },
                ))
                .await
                .map(|_| ()),
            other => panic!("unknown command {other} in the history"),
        };
        result.unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    ids
}

async fn kpis(url: &str, since: &str, until: &str, workflow: &str) -> pb::GetKpisResponse {
    AuditServiceClient::connect(url.to_owned())
        .await
        .unwrap()
        .get_kpis(acting(
            "auditor",
            pb::GetKpisRequest {
                since: Some(timestamp(moment(since))),
                until: Some(timestamp(moment(until))),
                workflow: workflow.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

fn by_key<'a>(figures: &'a [pb::KpiFigure], key: &str) -> &'a pb::KpiFigure {
    figures
        .iter()
        .find(|f| f.key == key)
        .unwrap_or_else(|| panic!("no figure for {key} in {figures:?}"))
}

/// Samples, mean in days (to a millionth), hits and total of a figure.
fn shape(f: &pb::KpiFigure) -> (u64, f64, u64, i64) {
    (f.samples, days(f.mean_seconds), f.hits, f.total)
}

/// Seconds in days, rounded to a millionth of a day so that hand-worked fractions compare.
fn days(seconds: f64) -> f64 {
    (seconds / DAY * 1e6).round() / 1e6
}

fn round(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

async fn fixed_history_server(db: &TestDb) -> (TestServer, MovingClock) {
    let time = MovingClock::default();
    let server = TestServer::start_config(
        db,
        Config {
            workflows_dir: Some(data_dir()),
            insecure_dev: true,
            clock: time.clock(),
            ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        },
    )
    .await;
    (server, time)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpis_of_the_fixed_history_are_the_figures_worked_out_by_hand() {
    for db in TestDb::all().await {
        let (server, time) = fixed_history_server(&db).await;
        replay(&server.url, &time).await;
        time.pin(moment("2026-06-01T00:00:00Z"));
        let k = kpis(
            &server.url,
            "2026-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
            "",
        )
        .await;

        // Accepted: alpha 03-01 -> 03-09 (8 days, target 03-10: a day early, on time) and beta
        // 03-01 -> 03-13 (12 days, target 03-05: 8 days late). Mean 10, one of two on time,
        // days late summed -1 + 8 = 7.
        let lead = k.lead_time.as_ref().unwrap();
        assert_eq!(shape(lead), (2, 10.0, 1, 7), "{}", db.backend);
        assert_eq!(
            (lead.min_seconds, lead.max_seconds),
            (8 * 86_400, 12 * 86_400)
        );
        assert!((lead.ratio - 0.5).abs() < 1e-9);

        // Open before the first submission (or the gate before its decision): alpha runbook 1,
        // sla 1, gate 1, report 3; beta runbook 2, sla 1, gate 2 (reopened 03-11, accepted
        // 03-13): 7 samples, 11 days. In review: alpha runbook 1, sla 2 and 1, report 2; beta
        // runbook 1 and 1, sla 1 and 1: 8 samples, 10 days. Sent back until resubmitted: alpha
        // sla 1; beta runbook 1, sla 1 (reopened by the rejection): 3 samples, 3 days.
        let open = by_key(&k.time_in_state, "open");
        assert_eq!(
            (open.samples, days(open.mean_seconds)),
            (7, round(11.0 / 7.0))
        );
        let submitted = by_key(&k.time_in_state, "submitted");
        assert_eq!((submitted.samples, days(submitted.mean_seconds)), (8, 1.25));
        let changes = by_key(&k.time_in_state, "changes_requested");
        assert_eq!((changes.samples, days(changes.mean_seconds)), (3, 1.0));

        // Approvals: Rae 1 (alpha runbook), 1 (alpha sla), 2 (report): 4/3 days; Ray 1, 1, 1.
        let rae = by_key(&k.approval_latency_by_approver, "Rae");
        assert_eq!((rae.samples, days(rae.mean_seconds)), (3, round(4.0 / 3.0)));
        assert_eq!((rae.min_seconds, rae.max_seconds), (86_400, 2 * 86_400));
        let ray = by_key(&k.approval_latency_by_approver, "Ray");
        assert_eq!((ray.samples, days(ray.mean_seconds)), (3, 1.0));
        // Every approval was for the reviewer role: 7 days over 6.
        let role = by_key(&k.approval_latency_by_role, "reviewer");
        assert_eq!(
            (role.samples, days(role.mean_seconds)),
            (6, round(7.0 / 6.0))
        );

        // Approved: runbook alpha at the first pass in 2 days (opened 03-01, approved 03-03),
        // beta after one send-back in 5 days; sla alpha after one in 5 days (03-03 -> 03-08),
        // beta first pass in 2 (03-06 -> 03-08), then again after the rejection reopened it, 5
        // days from its first opening (03-06 -> 03-11) and one round more; report 5 days
        // (03-09 -> 03-14) at the first pass.
        assert_eq!(shape(by_key(&k.first_pass, "runbook")), (2, 3.5, 1, 1));
        assert_eq!(shape(by_key(&k.first_pass, "sla")), (3, 4.0, 1, 2));
        assert_eq!(shape(by_key(&k.first_pass, "report")), (1, 5.0, 1, 0));

        // Sent back by reviewers: beta's runbook after a day in review, alpha's sla after two.
        assert_eq!(shape(by_key(&k.sent_back, "runbook")), (1, 1.0, 0, 0));
        assert_eq!(shape(by_key(&k.sent_back, "sla")), (1, 2.0, 0, 0));
        assert_eq!(k.sent_back.len(), 2);

        // One rejection with two reasons.
        let rejections = k.rejections.as_ref().unwrap();
        assert_eq!((rejections.total, rejections.samples), (1, 2));
        let mut reasons: Vec<(&str, u64)> = k
            .rejection_reasons
            .iter()
            .map(|r| (r.key.as_str(), r.samples))
            .collect();
        reasons.sort_unstable();
        assert_eq!(
            reasons,
            [
                ("monitoring is not ready", 1),
                ("nobody owns the runbook", 1)
            ]
        );

        // gamma's runbook waived once.
        assert_eq!(shape(by_key(&k.waivers, "runbook")), (1, 0.0, 0, 0));
        assert_eq!(k.waivers.len(), 1);

        // Support ended for alpha only: 5 days after the handover, within its 10.
        let support = k.support.as_ref().unwrap();
        assert_eq!(shape(support), (1, 5.0, 1, 0));

        // A window to 03-10: only alpha's handover (03-09) and beta's rejection (03-09) count;
        // support ended later.
        let early = kpis(
            &server.url,
            "2026-03-01T00:00:00Z",
            "2026-03-10T00:00:00Z",
            "",
        )
        .await;
        assert_eq!(shape(early.lead_time.as_ref().unwrap()), (1, 8.0, 1, -1));
        assert_eq!(early.rejections.as_ref().unwrap().total, 1);
        assert_eq!(early.support.as_ref().unwrap().samples, 0);
        assert_eq!(by_key(&early.first_pass, "sla").samples, 2);

        // A window with partial days at both ends (read from the facts; the whole days between
        // from the daily rollup): 03-08 12:00 to 03-13 12:00 holds both acceptances (03-09 and
        // 03-13, 09:00) but of the approvals only Ray's of 03-11 (the ones of 03-08 were at
        // 09:00, Rae's report on 03-14).
        let edges = kpis(
            &server.url,
            "2026-03-08T12:00:00Z",
            "2026-03-13T12:00:00Z",
            "",
        )
        .await;
        assert_eq!(shape(edges.lead_time.as_ref().unwrap()), (2, 10.0, 1, 7));
        assert_eq!(edges.approval_latency_by_approver.len(), 1);
        assert_eq!(
            by_key(&edges.approval_latency_by_approver, "Ray").samples,
            1
        );

        // Another workflow's KPIs: nothing.
        let other = kpis(
            &server.url,
            "2026-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
            "standard-transition",
        )
        .await;
        assert_eq!(other.lead_time.as_ref().unwrap().samples, 0);
        assert!(other.first_pass.is_empty() && other.time_in_state.is_empty());

        // A window that ends before it starts is refused, naming the field.
        let refused = AuditServiceClient::connect(server.url.clone())
            .await
            .unwrap()
            .get_kpis(acting(
                "auditor",
                pb::GetKpisRequest {
                    since: Some(timestamp(moment("2026-05-01T00:00:00Z"))),
                    until: Some(timestamp(moment("2026-04-01T00:00:00Z"))),
                    workflow: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(refused.message().contains("since"), "{}", refused.message());
        server.stop().await;

        // The migration that fills the facts of an existing database computes exactly those
        // the server wrote.
        let conn = Database::connect(&db.url).await.unwrap();
        let written = facts(&conn).await;
        // One a review, submission, acceptance, waiver, end of support; one a rejection's reason.
        assert_eq!(written.len(), 22, "{written:#?}");
        opsgate_tests::migrate_again_since(&conn, "m20261206_000009_facts").await;
        assert_eq!(written, facts(&conn).await, "{}", db.backend);
        conn.close().await.ok();
    }
}

async fn facts(conn: &sea_orm::DatabaseConnection) -> Vec<String> {
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT transition_id, seq, ord, kind, node, actor, label, seconds, duration, count, \
             flag FROM facts ORDER BY transition_id, seq, ord",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            format!(
                "{} {} {} {} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                r.try_get::<String>("", "transition_id").unwrap(),
                r.try_get::<i64>("", "seq").unwrap(),
                r.try_get::<i32>("", "ord").unwrap(),
                r.try_get::<String>("", "kind").unwrap(),
                r.try_get::<Option<String>>("", "node").unwrap(),
                r.try_get::<Option<String>>("", "actor").unwrap(),
                r.try_get::<Option<String>>("", "label").unwrap(),
                r.try_get::<Option<i64>>("", "seconds").unwrap(),
                r.try_get::<Option<i64>>("", "duration").unwrap(),
                r.try_get::<Option<i64>>("", "count").unwrap(),
                r.try_get::<Option<bool>>("", "flag").unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forecast_moves_when_history_says_a_deliverable_takes_longer_and_names_it() {
    for db in TestDb::all().await {
        let (server, time) = fixed_history_server(&db).await;
        let mut transitions = TransitionServiceClient::connect(server.url.clone())
            .await
            .unwrap();
        let mut audit = AuditServiceClient::connect(server.url.clone())
            .await
            .unwrap();
        // The one under watch: started 05-01, target 05-10; runbook (2 days) then sla (3 days).
        time.pin(moment("2026-05-01T09:00:00Z"));
        let watched = transitions
            .start_transition(acting("Pat", kpi_start("watched", "2026-05-10", "Rae")))
            .await
            .unwrap()
            .into_inner()
            .transition
            .unwrap()
            .id;
        let forecast = |audit: &mut AuditServiceClient<tonic::transport::Channel>| {
            let mut audit = audit.clone();
            let watched = watched.clone();
            async move {
                audit
                    .get_forecast(acting(
                        "Pat",
                        pb::GetForecastRequest {
                            transition_id: watched,
                            ..Default::default()
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner()
                    .forecasts
                    .remove(0)
            }
        };
        let f = forecast(&mut audit).await;
        // By the plan: runbook 05-01 -> 05-03, sla -> 05-06, the gate 05-06: on time.
        assert_eq!(f.projected_go_live, "2026-05-06", "{}", db.backend);
        assert_eq!(f.days_late, -4);
        assert!(!f.will_miss && f.driver_node_id.is_empty());
        assert_eq!(f.critical_path, ["runbook", "sla", "gate"]);

        // History: in three earlier transitions the runbook took its 2 days and the SLA 10 from
        // opening to approval.
        for (n, service) in ["h1", "h2", "h3"].into_iter().enumerate() {
            let day = 2 + n as u32;
            time.pin(moment(&format!("2026-04-0{day}T09:00:00Z")));
            let id = transitions
                .start_transition(acting("Pat", kpi_start(service, "2026-06-01", "Rae")))
                .await
                .unwrap()
                .into_inner()
                .transition
                .unwrap()
                .id;
            // The runbook as planned (2 days), the SLA in 10 (opened when the runbook was
            // approved, on day + 2).
            for (node, submit_day, approve_day) in
                [("runbook", day + 1, day + 2), ("sla", day + 11, day + 12)]
            {
                time.pin(moment(&format!("2026-04-{submit_day:02}T10:00:00Z")));
                submit_as(&mut transitions, "Pat", &id, node).await.unwrap();
                time.pin(moment(&format!("2026-04-{approve_day:02}T10:00:00Z")));
                let approve = pb::ReviewDecision::Approve;
                review_as(&mut transitions, "Rae", &id, node, approve)
                    .await
                    .unwrap();
            }
        }
        time.pin(moment("2026-05-01T12:00:00Z"));
        let f = forecast(&mut audit).await;
        // The SLA now expects 10 days: runbook -> 05-03, sla -> 05-13, three days late.
        let sla = f.nodes.iter().find(|n| n.node_id == "sla").unwrap();
        assert_eq!(
            (sla.planned_days, sla.expected_days, sla.samples),
            (3, 10, 3)
        );
        assert_eq!(f.projected_go_live, "2026-05-13", "{}", db.backend);
        assert_eq!(f.days_late, 3);
        assert!(f.will_miss);
        assert_eq!(f.driver_node_id, "sla");
        assert!(
            f.driver_reason.contains("median of 10 days"),
            "{}",
            f.driver_reason
        );

        // The SMO's view of every active transition lists it among the late ones.
        let late = audit
            .get_forecast(acting(
                "smo",
                pb::GetForecastRequest {
                    only_late: true,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .forecasts;
        assert!(late.iter().any(|f| f.transition_id == watched));
        assert!(late.iter().all(|f| f.will_miss));
        server.stop().await;
    }
}
