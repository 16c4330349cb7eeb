//! A running transition's dated schedule (`TransitionService.GetPlan`, issue "What the SMO hands
//! every transition") over gRPC and the JSON bridge, with a clock the test pins: the plan of a
//! small workflow with progress matches the one worked out by hand, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use opsgate_proto::v1 as pb;
use opsgate_server::Config;
use opsgate_tests::{MovingClock, TestDb, TestServer, acting};

const DATED: &str = "\
name: dated
roles: {reviewer: {description: reviews}}
deliverables:
  - {id: a, title: A, owner: project_manager, approver: reviewer, effort: 5d, due: start + 4d}
  - {id: b, title: B, owner: project_manager, approver: reviewer, effort: 10d, needs: [a], due: go_live - 2d}
  - {id: c, title: C, owner: project_manager, approver: reviewer, effort: 3d, needs: [a]}
gate: {id: gate, title: Gate, needs: [b, c]}
";

fn moment(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

async fn plan(c: &mut opsgate_tests::Clients, id: &str) -> pb::GetPlanResponse {
    c.transitions
        .get_plan(acting(
            "Pat",
            pb::GetPlanRequest {
                transition_id: id.to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// A development server with the workflow `dated`, its clock pinned to 2027-03-01 09:00 UTC.
async fn dated_server(db: &TestDb) -> (TestServer, MovingClock, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dated.yaml"), DATED).unwrap();
    let time = MovingClock::default();
    time.pin(moment("2027-03-01T09:00:00Z"));
    let server = TestServer::start_config(
        db,
        Config {
            workflows_dir: Some(dir.path().to_owned()),
            insecure_dev: true,
            clock: time.clock(),
            ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        },
    )
    .await;
    (server, time, dir)
}

/// Starts payroll `version` on `dated` (Pat, Sam, Rae reviews), going live on 2027-03-20.
async fn start_dated(c: &mut opsgate_tests::Clients, version: &str) -> pb::Transition {
    c.transitions
        .start_transition(acting(
            "Pat",
            pb::StartTransitionRequest {
                workflow_name: "dated".into(),
                service_name: "payroll".into(),
                service_version: version.into(),
                project_manager: "Pat".into(),
                service_manager: "Sam".into(),
                target_go_live: "2027-03-20".into(),
                participants: vec![pb::Participant {
                    role: "reviewer".into(),
                    people: vec!["Rae".into()],
                }],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .transition
        .unwrap()
}

fn node<'a>(p: &'a pb::GetPlanResponse, id: &str) -> &'a pb::PlanNode {
    p.nodes.iter().find(|n| n.node_id == id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_of_a_running_transition_is_the_one_worked_out_by_hand() {
    for db in TestDb::all().await {
        let (server, time, _dir) = dated_server(&db).await;
        let mut c = server.clients().await;
        let t = start_dated(&mut c, "2.0").await;
        // a is done on the 6th, a day after its due date (start + 4d).
        time.pin(moment("2027-03-06T10:00:00Z"));
        c.transitions
            .submit_deliverable(acting(
                "Pat",
                pb::SubmitDeliverableRequest {
                    transition_id: t.id.clone(),
                    deliverable_id: "a".into(),
                    evidence: Some(pb::Evidence {
                        links: vec!["https://wiki.example/a".into()],
                        ..Default::default()
                    }),
                },
            ))
            .await
            .unwrap();
        c.transitions
            .review_deliverable(acting(
                "Rae",
                pb::ReviewDeliverableRequest {
                    transition_id: t.id.clone(),
                    deliverable_id: "a".into(),
                    decision: pb::ReviewDecision::Approve.into(),
                    comment: String::new(),
                },
            ))
            .await
            .unwrap();

        time.pin(moment("2027-03-08T12:00:00Z"));
        let p = plan(&mut c, &t.id).await;
        assert_eq!(
            (
                p.start.as_str(),
                p.target_go_live.as_str(),
                p.today.as_str()
            ),
            ("2027-03-01", "2027-03-20", "2027-03-08")
        );
        // By hand: a done 1 -> 6; b opened on the 6th, 10 days -> 16, due go_live - 2d = 18 (so
        // it starts by the 8th); c 6 -> 9, by 20; the gate reached on the 16th, due the 20th.
        let a = node(&p, "a");
        assert!(a.done);
        assert_eq!(
            (a.earliest_start.as_str(), a.earliest_finish.as_str()),
            ("2027-03-01", "2027-03-06")
        );
        assert_eq!((a.due.as_str(), a.slack_days), ("2027-03-05", -1));
        let b = node(&p, "b");
        assert_eq!(
            (
                b.earliest_start.as_str(),
                b.earliest_finish.as_str(),
                b.latest_start.as_str(),
                b.latest_finish.as_str()
            ),
            ("2027-03-06", "2027-03-16", "2027-03-08", "2027-03-18")
        );
        assert_eq!(b.slack_days, 2);
        assert!(b.on_critical_path && !b.late && !b.done);
        assert_eq!(b.status, pb::NodeStatus::Open as i32);
        let c_node = node(&p, "c");
        assert_eq!(
            (
                c_node.earliest_finish.as_str(),
                c_node.latest_finish.as_str()
            ),
            ("2027-03-09", "2027-03-20")
        );
        assert_eq!(c_node.slack_days, 11);
        assert!(!c_node.on_critical_path);
        let gate = node(&p, "gate");
        assert_eq!((gate.due.as_str(), gate.slack_days), ("2027-03-20", 4));
        assert_eq!(p.projected_gate, "2027-03-16");
        assert_eq!(p.critical_path, ["b", "gate"]);
        assert!(p.late.is_empty());
        assert_eq!(
            p.nodes
                .iter()
                .map(|n| n.node_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c", "gate"]
        );

        // On the 19th b is still open: it finishes today at the earliest, past its latest.
        time.pin(moment("2027-03-19T12:00:00Z"));
        let p = plan(&mut c, &t.id).await;
        assert_eq!(p.late, ["b"]);
        assert!(node(&p, "b").late);
        assert_eq!(node(&p, "b").slack_days, -1);
        assert_eq!(p.projected_gate, "2027-03-19");

        // The same over the JSON bridge.
        let json: serde_json::Value = reqwest::Client::new()
            .post(format!(
                "{}/opsgate.v1.TransitionService/GetPlan",
                server.http_url
            ))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "transitionId": t.id }).to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(json["late"], serde_json::json!(["b"]), "{json}");
        assert_eq!(json["projectedGate"], "2027-03-19");

        // No transition there: NotFound; not a transition id: InvalidArgument.
        let missing = c
            .transitions
            .get_plan(acting(
                "Pat",
                pb::GetPlanRequest {
                    transition_id: "01890000-0000-7000-8000-000000000000".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
        let bad = c
            .transitions
            .get_plan(acting(
                "Pat",
                pb::GetPlanRequest {
                    transition_id: "nope".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        server.stop().await;
    }
}

/// Moving the go-live: only the transition's project manager (or the SMO), with a reason, to a
/// day not past; the plan's go-live-anchored dates move with it and the log records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_project_manager_moves_the_go_live_and_the_dates_follow() {
    for db in TestDb::all().await {
        let (server, _time, _dir) = dated_server(&db).await;
        let mut c = server.clients().await;
        let t = start_dated(&mut c, "3.0").await;
        let reschedule = |who: &'static str, date: &'static str, reason: &'static str| {
            let mut c = c.transitions.clone();
            let id = t.id.clone();
            async move {
                c.reschedule_transition(acting(
                    who,
                    pb::RescheduleTransitionRequest {
                        transition_id: id,
                        target_go_live: date.into(),
                        reason: reason.into(),
                    },
                ))
                .await
            }
        };
        let refused = reschedule("Rae", "2027-04-03", "supplier late")
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
        assert!(refused.message().contains("Pat"), "{}", refused.message());
        let refused = reschedule("Pat", "2027-04-03", "  ").await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        let refused = reschedule("Pat", "2027-02-01", "back in time")
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        let refused = reschedule("Pat", "2027-03-20", "same").await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
        let moved = reschedule("Pat", "2027-04-03", "the supplier delivers two weeks late")
            .await
            .unwrap()
            .into_inner()
            .transition
            .unwrap();
        assert_eq!(moved.target_go_live, "2027-04-03");
        let p = plan(&mut c, &t.id).await;
        assert_eq!(p.target_go_live, "2027-04-03");
        // b is due go_live - 2d: it moved with the go-live; a (start + 4d) did not.
        assert_eq!(node(&p, "b").due, "2027-04-01");
        assert_eq!(node(&p, "a").due, "2027-03-05");
        assert_eq!(node(&p, "gate").due, "2027-04-03");
        let listed = c
            .transitions
            .list_transitions(acting("Pat", pb::ListTransitionsRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .transitions;
        assert_eq!(listed[0].target_go_live, "2027-04-03");
        let events = c
            .transitions
            .list_events(acting(
                "Pat",
                pb::ListEventsRequest {
                    transition_id: t.id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .events;
        let last = events.last().unwrap();
        assert_eq!(last.kind, "go_live_moved");
        assert_eq!(
            last.comment,
            "2027-03-20 -> 2027-04-03: the supplier delivers two weeks late"
        );
        server.stop().await;
    }
}
