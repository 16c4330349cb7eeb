//! `GET /me`: my work. Everything waiting on the signed-in person across the transitions they
//! may read: deliverables to submit or rework, submissions to review (their own and those of the
//! people they stand in for), handovers to accept; with due dates, the most urgent first. On a
//! development server, where nobody signs in, `?as=NAME` says whose work to show. It reads only
//! the transitions the person (or whom they stand in for) has a part in: the people index.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use opsgate_domain::stalled::{due_date, must_act};
use opsgate_domain::{Actor, GateDecision, GateState, NodeStatus};

use super::Web;
use super::page::{esc, layout, problem, segment};

/// The access table's row of this page.
pub(crate) const ROUTE: &str = "GET /me";

/// One thing to do.
struct Todo {
    transition: String,
    node: String,
    service: String,
    what: String,
    due: Option<chrono::NaiveDate>,
    since: chrono::DateTime<chrono::Utc>,
}

pub(crate) async fn page(
    State(web): State<Web>,
    Query(query): Query<HashMap<String, String>>,
    headers: super::Seen,
) -> Response {
    let viewer = match web.viewer(&headers, ROUTE).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let who = viewer.as_ref();
    let person = match who {
        Some(c) => Some(c.actor.clone()),
        None => query
            .get("as")
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .and_then(|n| Actor::parse(n).ok()),
    };
    let Some(person) = person else {
        return layout(
            "My work",
            who,
            "<h1>My work</h1><form class=\"filters\" method=\"get\" action=\"/me\">\
             <label>Whose work (development server) <input name=\"as\" required></label>\
             <button type=\"submit\">Show</button></form>",
        );
    };
    let todos = match todos(&web, who, &person).await {
        Ok(t) => t,
        Err(status) => return problem(StatusCode::SERVICE_UNAVAILABLE, who, status.message()),
    };
    let mut body = format!("<h1>Waiting on {}</h1>", esc(&person.to_string()));
    if todos.is_empty() {
        body.push_str("<p class=\"empty\">Nothing waits on you right now.</p>");
    } else {
        let today = web.api.store().now().date_naive();
        body.push_str(
            "<table class=\"board\"><thead><tr><th scope=\"col\">To do</th>\
             <th scope=\"col\">Service</th><th scope=\"col\">Due</th><th scope=\"col\">Waiting since</th>\
             </tr></thead><tbody>",
        );
        for t in &todos {
            let due = match t.due {
                Some(d) if d < today => format!(
                    "<span class=\"late\">{d} ({} days late)</span>",
                    (today - d).num_days()
                ),
                Some(d) => d.to_string(),
                None => String::new(),
            };
            let anchor = if t.node.is_empty() {
                String::new()
            } else {
                format!("#node-{}", segment(&t.node))
            };
            body.push_str(&format!(
                "<tr><td><a href=\"/transitions/{id}{anchor}\">{what}</a></td><td>{service}</td>\
                 <td>{due}</td><td>{since}</td></tr>",
                id = segment(&t.transition),
                what = esc(&t.what),
                service = esc(&t.service),
                since = t.since.format("%Y-%m-%d"),
            ));
        }
        body.push_str("</tbody></table>");
    }
    layout("My work", who, &body)
}

async fn todos(
    web: &Web,
    viewer: Option<&crate::auth::Caller>,
    person: &Actor,
) -> Result<Vec<Todo>, tonic::Status> {
    let store = web.api.store();
    let now = store.now();
    let deputies = store
        .delegations_in_force()
        .await
        .map_err(crate::error::status)?;
    // The transitions the person has a part in, and those of whom they stand in for.
    let ids = store
        .transitions_of(&with_stand_ins(person, &deputies))
        .await
        .map_err(crate::error::status)?;
    let mut out = Vec::new();
    for id in &ids {
        let view = store
            .get_transition(id)
            .await
            .map_err(crate::error::status)?;
        if web.api.may_read(viewer, &view).await.is_err() {
            continue;
        }
        let t = &view.state.meta;
        let wf = &view.workflow.workflow;
        let state = &view.state;
        let service = format!("{} {}", t.service_name, t.service_version);
        for (i, node) in wf.nodes().iter().enumerate() {
            let ns = &state.nodes[i];
            if ns.counts_as_done() || ns.status == NodeStatus::Locked || i == wf.gate() {
                continue;
            }
            let (people, _) = must_act(wf, state, i, now, &deputies);
            if !people.contains(person) {
                continue;
            }
            let what = match ns.status {
                NodeStatus::Submitted => format!("Review '{}'", node.title),
                NodeStatus::ChangesRequested => format!("Rework and resubmit '{}'", node.title),
                _ if node.deliverable().is_some() => format!("Submit '{}'", node.title),
                _ => format!("Sign off '{}'", node.title),
            };
            out.push(Todo {
                transition: view.id.clone(),
                node: node.id.to_string(),
                service: service.clone(),
                what,
                due: due_date(wf, state, i),
                since: ns.submitted_at.unwrap_or(ns.updated_at),
            });
        }
        let decision = GateDecision::of(wf, state);
        if decision.state == GateState::Open && &state.meta.service_manager == person {
            out.push(Todo {
                transition: view.id.clone(),
                node: String::new(),
                service,
                what: "Accept or reject the handover".to_owned(),
                due: Some(state.meta.target_go_live),
                since: state.nodes[wf.gate()].updated_at,
            });
        }
    }
    // The most urgent first: the earliest due date, undated work last, then the oldest.
    out.sort_by_key(|t| (t.due.is_none(), t.due, t.since));
    Ok(out)
}

/// `person` and the people they stand in for under `deputies` (delegations in force): whose
/// transitions are theirs to look at.
pub(super) fn with_stand_ins(
    person: &Actor,
    deputies: &[opsgate_domain::Delegation],
) -> Vec<Actor> {
    let mut people = vec![person.clone()];
    people.extend(
        deputies
            .iter()
            .filter(|d| &d.to == person)
            .map(|d| d.from.clone()),
    );
    people
}
