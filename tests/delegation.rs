//! Delegations and waivers over gRPC, with real tokens: a deputy approves for an approver (and
//! the log says so), never their own or the approver's submission, only while the delegation is
//! in force; the SMO waives a deliverable and the gate opens until the waiver ends, on a clock
//! the test moves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{Duration, Utc};
use opsgate_proto::v1 as pb;
use opsgate_server::Config;
use opsgate_tests::{
    Clients, Credentials, TestDb, TestServer, bearer, create_token, get, review, start, status_of,
    submit, workflows_dir,
};
use tonic::Code;

const BOOTSTRAP: &str = "og_5555555555555555555555555555555555555555555555555555555555555555";

fn ts(at: chrono::DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    })
}

/// Clients acting with each person's own token (Dee: a deputy, named nowhere).
async fn people(server: &TestServer) -> Clients {
    let mut tokens = std::collections::HashMap::new();
    for (who, roles) in [
        ("Pat", &["project_manager"][..]),
        ("Owen", &["approver"]),
        ("Dee", &["approver"]),
        ("Mallory", &["approver"]),
        ("smo", &["smo"]),
    ] {
        tokens.insert(
            who.to_owned(),
            create_token(&server.url, BOOTSTRAP, who, roles).await,
        );
    }
    let mut c = server.clients().await;
    c.credentials = Some(Arc::new(Credentials {
        reader: tokens["smo"].clone(),
        tokens,
    }));
    c
}

async fn delegate(
    c: &Clients,
    by: &str,
    request: pb::AddDelegationRequest,
) -> Result<pb::Delegation, tonic::Status> {
    c.identity
        .clone()
        .add_delegation(c.as_(by, request))
        .await
        .map(|r| r.into_inner().delegation.unwrap())
}

/// The first page of a transition's history, read by the SMO.
async fn events(c: &Clients, id: &str) -> Vec<pb::TransitionEvent> {
    c.transitions
        .clone()
        .list_events(c.read(pb::ListEventsRequest {
            transition_id: id.to_owned(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .events
}

/// The ids of the transitions `who` finds in the list (every page).
async fn listed(c: &Clients, who: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .transitions
            .clone()
            .list_transitions(c.as_(
                who,
                pb::ListTransitionsRequest {
                    page_size: 100,
                    page_token: token,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        ids.extend(page.transitions.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            return ids;
        }
        token = page.next_page_token;
    }
}

fn owen_to_dee(from_hours: i64, until_hours: i64) -> pb::AddDelegationRequest {
    pb::AddDelegationRequest {
        to: "Dee".into(),
        from: String::new(),
        starts_at: ts(Utc::now() + Duration::hours(from_hours)),
        ends_at: ts(Utc::now() + Duration::hours(until_hours)),
        reason: "holiday".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deputy_approves_for_the_approver_only_while_the_delegation_stands() {
    for db in TestDb::all().await {
        let server = TestServer::start_secure(&db, BOOTSTRAP).await;
        let mut c = people(&server).await;
        let id = start(&mut c, "2.0").await.id;
        submit(&mut c, &id, "sla", "Pat").await.unwrap();

        // Dee, named nowhere, may neither read nor approve.
        let read = c
            .transitions
            .clone()
            .get_transition(c.as_(
                "Dee",
                pb::GetTransitionRequest {
                    transition_id: id.clone(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(read.code(), Code::PermissionDenied);
        assert!(!listed(&c, "Dee").await.contains(&id));
        let err = review(&mut c, &id, "sla", pb::ReviewDecision::Approve, "", "Dee")
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

        // Only Owen (or the SMO) delegates Owen's approvals.
        let mut for_owen = owen_to_dee(-1, 48);
        for_owen.from = "Owen".into();
        let err = delegate(&c, "Mallory", for_owen.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        // A delegation that starts tomorrow does not let Dee approve today.
        let tomorrow = delegate(&c, "Owen", owen_to_dee(24, 48)).await.unwrap();
        let err = review(&mut c, &id, "sla", pb::ReviewDecision::Approve, "", "Dee")
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert!(err.message().contains("not now"), "{}", err.message());
        // A revoked one neither.
        let now = delegate(&c, "smo", for_owen).await.unwrap();
        c.identity
            .clone()
            .revoke_delegation(c.as_("Owen", pb::RevokeDelegationRequest { id: now.id }))
            .await
            .unwrap();
        let err = review(&mut c, &id, "sla", pb::ReviewDecision::Approve, "", "Dee")
            .await
            .unwrap_err();
        assert!(err.message().contains("not now"), "{}", err.message());

        // In force: Dee reads the transition and approves for Owen.
        let standing = delegate(&c, "Owen", owen_to_dee(-1, 48)).await.unwrap();
        assert_eq!(
            (standing.from.as_str(), standing.to.as_str()),
            ("Owen", "Dee")
        );
        c.transitions
            .clone()
            .get_transition(c.as_(
                "Dee",
                pb::GetTransitionRequest {
                    transition_id: id.clone(),
                },
            ))
            .await
            .unwrap();
        // And finds it in the list, as Owen does; Mallory, no deputy of anyone, still does not.
        assert!(listed(&c, "Dee").await.contains(&id));
        assert!(listed(&c, "Owen").await.contains(&id));
        assert!(!listed(&c, "Mallory").await.contains(&id));
        let t = review(&mut c, &id, "sla", pb::ReviewDecision::Approve, "", "Dee")
            .await
            .unwrap();
        assert_eq!(status_of(&t, "sla"), pb::NodeStatus::Approved);
        let sla = t.nodes.iter().find(|n| n.id == "sla").unwrap();
        assert_eq!(
            (sla.approved_by.clone(), sla.approved_by_deputies.clone()),
            (vec!["Owen".to_owned()], vec!["Dee".to_owned()])
        );
        let events = events(&c, &id).await;
        let approved = events
            .iter()
            .find(|e| e.kind == "deliverable_approved")
            .unwrap();
        assert_eq!(approved.actor, "Dee");
        assert_eq!(approved.on_behalf_of, "Owen");
        assert_eq!(approved.delegation_id, standing.id);
        assert_eq!(approved.acted_as, "service_owner");
        assert_eq!(approved.access_role, "approver");
        assert!(
            approved.credential.starts_with("token "),
            "{}",
            approved.credential
        );

        // Listing: Dee sees hers; Mallory may not list Owen's; the SMO sees all three.
        let mine = c
            .identity
            .clone()
            .list_delegations(c.as_("Dee", pb::ListDelegationsRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .delegations;
        assert_eq!(mine.len(), 2, "the one in force and tomorrow's: {mine:?}");
        assert!(mine.iter().any(|d| d.id == tomorrow.id));
        let err = c
            .identity
            .clone()
            .list_delegations(c.as_(
                "Mallory",
                pb::ListDelegationsRequest {
                    person: "Owen".into(),
                    include_inactive: false,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        let all = c
            .identity
            .clone()
            .list_delegations(c.as_(
                "smo",
                pb::ListDelegationsRequest {
                    person: String::new(),
                    include_inactive: true,
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .delegations;
        assert_eq!(all.len(), 3);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_approves_their_own_work_through_a_deputy() {
    let db = TestDb::sqlite();
    let server = TestServer::start_secure(&db, BOOTSTRAP).await;
    let mut c = people(&server).await;
    let id = start(&mut c, "2.0").await.id;
    submit(&mut c, &id, "sla", "Pat").await.unwrap();
    // Owen names Pat, who submitted the SLA, as his deputy: Pat still may not approve it.
    let mut to_pat = owen_to_dee(-1, 24);
    to_pat.to = "Pat".into();
    delegate(&c, "Owen", to_pat).await.unwrap();
    let err = review(&mut c, &id, "sla", pb::ReviewDecision::Approve, "", "Pat")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("Pat submitted deliverable 'sla'"),
        "{}",
        err.message()
    );
    // Bad delegations are refused with the field to fix.
    for (request, says) in [
        (
            pb::AddDelegationRequest {
                to: "Owen".into(),
                ..owen_to_dee(0, 24)
            },
            "own deputy",
        ),
        (owen_to_dee(24, 1), "end after it starts"),
        (owen_to_dee(-48, -24), "already be over"),
        (owen_to_dee(0, 24 * 400), "at most 366 days"),
        (
            pb::AddDelegationRequest {
                ends_at: None,
                ..owen_to_dee(0, 24)
            },
            "ends_at: is required",
        ),
    ] {
        let err = delegate(&c, "Owen", request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(says), "{says}: {}", err.message());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiver_opens_the_gate_until_it_ends_then_the_gate_closes_again() {
    for db in TestDb::all().await {
        // The server's clock: real time plus an offset the test moves.
        let time = opsgate_tests::MovingClock::default();
        let clock = time.clock();
        let server = TestServer::start_config(
            &db,
            Config {
                workflows_dir: Some(workflows_dir()),
                bootstrap_token: Some(BOOTSTRAP.into()),
                clock,
                ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
            },
        )
        .await;
        let smo = create_token(&server.url, BOOTSTRAP, "smo", &["smo"]).await;
        let mut c = people(&server).await;
        let mut tokens = c.credentials.as_ref().unwrap().tokens.clone();
        for who in ["Tess", "Dana", "Olga"] {
            let roles: &[&str] = if who == "Tess" {
                &["project_manager"]
            } else {
                &["approver"]
            };
            tokens.insert(
                who.into(),
                create_token(&server.url, BOOTSTRAP, who, roles).await,
            );
        }
        c.credentials = Some(Arc::new(Credentials {
            reader: smo.clone(),
            tokens,
        }));
        let id = start(&mut c, "2.0").await.id;

        // Only the SMO waives.
        let waive = |until: chrono::DateTime<Utc>| pb::WaiveDeliverableRequest {
            transition_id: id.clone(),
            deliverable_id: "sla".into(),
            reason: "signed on paper; the scan follows".into(),
            until: ts(until),
        };
        let err = c
            .transitions
            .clone()
            .waive_deliverable(c.as_("Pat", waive(Utc::now() + Duration::days(2))))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        c.transitions
            .clone()
            .waive_deliverable(bearer(&smo, waive(Utc::now() + Duration::days(2))))
            .await
            .unwrap();

        // Everything else before the gate is done; the SLA only waived.
        let before: Vec<String> = get(&mut c, &id)
            .await
            .nodes
            .into_iter()
            .filter(|n| {
                n.kind == pb::NodeKind::Deliverable as i32 && !n.after_go_live && n.id != "sla"
            })
            .map(|n| n.id)
            .collect();
        for d in &before {
            submit(&mut c, &id, d, opsgate_tests::owner_of(d))
                .await
                .unwrap();
            review(
                &mut c,
                &id,
                d,
                pb::ReviewDecision::Approve,
                "",
                opsgate_tests::approver_of(d),
            )
            .await
            .unwrap();
        }
        let gate = |c: &Clients| {
            let mut gates = c.gates.clone();
            let request = c.read(pb::CheckGateRequest {
                target: Some(pb::check_gate_request::Target::TransitionId(id.clone())),
            });
            async move { gates.check_gate(request).await.unwrap().into_inner() }
        };
        let open = gate(&c).await;
        assert!(open.open, "{}", open.summary);
        assert_eq!(open.waivers.len(), 1);
        assert_eq!(open.waivers[0].node_id, "sla");
        assert_eq!(open.waivers[0].waived_by, "smo");
        assert_eq!(open.waivers[0].reason, "signed on paper; the scan follows");

        // Three days later the waiver has ended: the gate is closed, and the log says why.
        time.set_days(3);
        let closed = gate(&c).await;
        assert!(!closed.open, "{}", closed.summary);
        assert!(closed.waivers.is_empty());
        assert!(closed.blockers.iter().any(|b| b.node_id == "sla"));
        let events = events(&c, &id).await;
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "waiver_expired").count(),
            1,
            "{kinds:?}"
        );
        assert_eq!(kinds.last(), Some(&"node_relocked"), "{kinds:?}");
        // Reading again records nothing more.
        gate(&c).await;
        assert_eq!(get(&mut c, &id).await.event_count, events.len() as u64);

        // Approving the real SLA opens the gate for good.
        submit(&mut c, &id, "sla", "Pat").await.unwrap();
        review(&mut c, &id, "sla", pb::ReviewDecision::Approve, "", "Owen")
            .await
            .unwrap();
        assert!(gate(&c).await.open);
        server.stop().await;
        opsgate_tests::assert_every_log_replays(&db.url).await;
    }
}
