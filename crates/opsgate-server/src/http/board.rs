//! `GET /`: the SMO board. Every unfinished transition the viewer may read, with its workflow,
//! service and version, progress (done / total), projected go-live against the target, whether
//! it is stalled and on whom it waits; filtered by workflow, service and person
//! (`?workflow=&service=&person=`), the latest first.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use opsgate_domain::stalled::{StallRules, stalls};
use opsgate_domain::{Actor, GateDecision, TransitionStatus, WaitingOn};

use super::Web;
use super::page::{esc, layout, problem, segment};
use crate::services::forecast::Histories;

/// The access table's row of this page.
pub(crate) const ROUTE: &str = "GET /";
/// Most transitions the board reads (the nearest first once sorted).
const MAX_ROWS: usize = 1000;

/// One row of the board.
struct Row {
    id: String,
    workflow: String,
    service: String,
    version: String,
    done: usize,
    total: usize,
    target: String,
    projected: String,
    days_late: i64,
    stalled: Vec<String>,
    waits_on: Vec<String>,
    status: TransitionStatus,
}

pub(crate) async fn page(
    State(web): State<Web>,
    Query(filter): Query<HashMap<String, String>>,
    headers: super::Seen,
) -> Response {
    let viewer = match web.viewer(&headers, ROUTE).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let pick = |key: &str| {
        filter
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 200)
    };
    let (workflow, service, person) = (pick("workflow"), pick("service"), pick("person"));
    let rows = match rows(
        &web,
        viewer.as_ref(),
        workflow.as_deref(),
        service.as_deref(),
        person.as_deref(),
    )
    .await
    {
        Ok(rows) => rows,
        Err(status) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                viewer.as_ref(),
                status.message(),
            );
        }
    };
    let value = |v: &Option<String>| esc(v.as_deref().unwrap_or(""));
    let mut body = format!(
        "<h1>Transitions in progress</h1>\
         <form class=\"filters\" method=\"get\" action=\"/\">\
         <label>Workflow <input name=\"workflow\" value=\"{}\"></label>\
         <label>Service <input name=\"service\" value=\"{}\"></label>\
         <label>Person <input name=\"person\" value=\"{}\"></label>\
         <button type=\"submit\">Filter</button></form>",
        value(&workflow),
        value(&service),
        value(&person)
    );
    if rows.is_empty() {
        body.push_str("<p class=\"empty\">No transition in progress matches.</p>");
    } else {
        body.push_str(
            "<table class=\"board\"><thead><tr><th scope=\"col\">Service</th>\
             <th scope=\"col\">Workflow</th><th scope=\"col\">Progress</th>\
             <th scope=\"col\">Target go-live</th><th scope=\"col\">Projected</th>\
             <th scope=\"col\">Stalled</th><th scope=\"col\">Waits on</th></tr></thead><tbody>",
        );
        for r in &rows {
            let late = if r.days_late > 0 {
                format!(" <span class=\"late\">{} days late</span>", r.days_late)
            } else {
                String::new()
            };
            let stalled = if r.stalled.is_empty() {
                "<span class=\"ok\">no</span>".to_owned()
            } else {
                format!(
                    "<span class=\"stalled\">{}</span>",
                    esc(&r.stalled.join(", "))
                )
            };
            body.push_str(&format!(
                "<tr><td><a href=\"/transitions/{id}\">{service} {version}</a>{handed}</td>\
                 <td>{workflow}</td><td><progress max=\"{total}\" value=\"{done}\">{done}/{total}\
                 </progress> {done}/{total}</td><td>{target}</td><td>{projected}{late}</td>\
                 <td>{stalled}</td><td>{waits}</td></tr>",
                id = segment(&r.id),
                service = esc(&r.service),
                version = esc(&r.version),
                handed = if r.status == TransitionStatus::HandedOver {
                    " <span class=\"tag\">in post-go-live support</span>"
                } else {
                    ""
                },
                workflow = esc(&r.workflow),
                total = r.total,
                done = r.done,
                target = esc(&r.target),
                projected = esc(&r.projected),
                waits = esc(&r.waits_on.join(", ")),
            ));
        }
        body.push_str("</tbody></table>");
    }
    layout("Board", viewer.as_ref(), &body)
}

async fn rows(
    web: &Web,
    viewer: Option<&crate::auth::Caller>,
    workflow: Option<&str>,
    service: Option<&str>,
    person: Option<&str>,
) -> Result<Vec<Row>, tonic::Status> {
    let store = web.api.store();
    let now = store.now();
    let deputies = store
        .delegations_in_force()
        .await
        .map_err(crate::error::status)?;
    let rules = StallRules::default();
    let mut histories = Histories::default();
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store
            .list_transitions(500, token.as_deref())
            .await
            .map_err(crate::error::status)?;
        for t in &page.transitions {
            if t.status == TransitionStatus::Completed
                || workflow.is_some_and(|w| w != t.workflow_name)
                || service.is_some_and(|s| s != t.service_name)
                || web.api.may_read(viewer, &t.meta).await.is_err()
            {
                continue;
            }
            let view = store
                .get_transition(&t.id)
                .await
                .map_err(crate::error::status)?;
            let wf = &view.workflow.workflow;
            let state = &view.state;
            let found = stalls(wf, state, now, &rules, &deputies);
            let mut waits_on: Vec<String> = Vec::new();
            let mut add = |people: &[Actor]| {
                for p in people {
                    let p = p.to_string();
                    if !waits_on.contains(&p) {
                        waits_on.push(p);
                    }
                }
            };
            for s in &found {
                add(&s.must_act);
            }
            let decision = GateDecision::of(wf, state);
            for b in &decision.blockers {
                match &b.waiting_on {
                    WaitingOn::Role { people, .. } | WaitingOn::Approvals { people, .. } => {
                        add(people);
                    }
                    WaitingOn::Nodes(_) => {}
                }
            }
            if let Some(sm) = &decision.awaiting_acceptance_by {
                add(std::slice::from_ref(sm));
            }
            if person.is_some_and(|p| !waits_on.iter().any(|w| w == p)) {
                continue;
            }
            let forecast = histories
                .forecast(&web.api, &view, now.date_naive())
                .await?;
            let mut stalled: Vec<String> = found
                .iter()
                .map(|s| s.kind.as_str().replace('_', " "))
                .collect();
            stalled.dedup();
            out.push(Row {
                id: view.id.clone(),
                workflow: t.workflow_name.clone(),
                service: t.service_name.clone(),
                version: t.service_version.clone(),
                done: state.nodes.iter().filter(|n| n.counts_as_done()).count(),
                total: state.nodes.len(),
                target: t.target_go_live.to_string(),
                projected: forecast.projected_go_live,
                days_late: i64::from(forecast.days_late),
                stalled,
                waits_on,
                status: t.status,
            });
            if out.len() >= MAX_ROWS {
                break;
            }
        }
        match page.next_page_token {
            Some(next) if out.len() < MAX_ROWS => token = Some(next),
            _ => break,
        }
    }
    // The latest first, then the nearest target.
    out.sort_by(|a, b| b.days_late.cmp(&a.days_late).then(a.target.cmp(&b.target)));
    Ok(out)
}
