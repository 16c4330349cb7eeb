//! `GET /`: the SMO board. Every unfinished transition the viewer may read, with its workflow,
//! service and version, progress (done / total), projected go-live against the target, whether
//! it is stalled and on whom it waits; filtered by workflow, service and person
//! (`?workflow=&service=&person=`), the most overdue open work first (the stall index's
//! `next_due`), about fifty to a page (`&after=` where the last one ended): it reads one page
//! of transitions, never all.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use opsgate_domain::stalled::{StallRules, stalls};
use opsgate_domain::{Access, Actor, GateDecision, TransitionStatus, WaitingOn};

use super::Web;
use super::page::{esc, layout, problem, segment};
use crate::services::forecast::Histories;

/// The access table's row of this page.
pub(crate) const ROUTE: &str = "GET /";

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
    let after = pick("after").and_then(|a| opsgate_store::BoardCursor::parse(&a));
    let (rows, next) = match rows(
        &web,
        viewer.as_ref(),
        workflow.as_deref(),
        service.as_deref(),
        person.as_deref(),
        after.clone(),
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
    if after.is_some() || next.is_some() {
        // The same filters, the first or the next page.
        let link = |after: Option<&opsgate_store::BoardCursor>| {
            let mut query: Vec<(&str, String)> = Vec::new();
            for (key, value) in [
                ("workflow", &workflow),
                ("service", &service),
                ("person", &person),
            ] {
                if let Some(v) = value {
                    query.push((key, v.clone()));
                }
            }
            if let Some(a) = after {
                query.push(("after", a.to_text()));
            }
            format!(
                "/?{}",
                serde_urlencoded::to_string(&query).unwrap_or_default()
            )
        };
        body.push_str("<nav class=\"pages\" aria-label=\"Pages\">");
        if after.is_some() {
            body.push_str(&format!(
                "<a rel=\"first\" href=\"{}\">First page</a> ",
                esc(&link(None))
            ));
        }
        if let Some(next) = &next {
            body.push_str(&format!(
                "<a rel=\"next\" href=\"{}\">Next page</a>",
                esc(&link(Some(next)))
            ));
        }
        body.push_str("</nav>");
    }
    layout("Board", viewer.as_ref(), &body)
}

/// Rows of the board shown at once.
pub(crate) const PAGE_ROWS: usize = 50;
/// Candidate pages read to fill one page when rows are filtered out (by person or visibility).
const MAX_ROUNDS: usize = 20;

/// One page of rows, from just after `after`; and where the next page starts, if one does.
async fn rows(
    web: &Web,
    viewer: Option<&crate::auth::Caller>,
    workflow: Option<&str>,
    service: Option<&str>,
    person: Option<&str>,
    after: Option<opsgate_store::BoardCursor>,
) -> Result<(Vec<Row>, Option<opsgate_store::BoardCursor>), tonic::Status> {
    let store = web.api.store();
    let now = store.now();
    let deputies = store
        .delegations_in_force()
        .await
        .map_err(crate::error::status)?;
    // Whose transitions are candidates: the filtered person's, else those of a viewer who is
    // neither SMO nor auditor (with the people they stand in for); the SMO's are everyone's.
    let whose = |who: &Actor| super::me::with_stand_ins(who, &deputies);
    let person = match person.map(Actor::parse) {
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => return Ok((Vec::new(), None)),
        None => None,
    };
    let people = match (&person, viewer) {
        (Some(p), _) => Some(whose(p)),
        (None, Some(v))
            if v.scope.is_none()
                && !v
                    .roles
                    .iter()
                    .any(|r| matches!(r, Access::Smo | Access::Auditor)) =>
        {
            Some(whose(&v.actor))
        }
        _ => None,
    };
    let query = opsgate_store::BoardQuery {
        workflow: workflow.map(str::to_owned),
        service: service.map(str::to_owned),
        people,
    };
    let rules = StallRules::default();
    let mut histories = Histories::default();
    let mut out = Vec::new();
    let mut cursor = after;
    for _ in 0..MAX_ROUNDS {
        let (ids, next) = store
            .board_page(&query, cursor.as_ref(), PAGE_ROWS as u64)
            .await
            .map_err(crate::error::status)?;
        cursor = next;
        for id in &ids {
            let view = store
                .get_transition(id)
                .await
                .map_err(crate::error::status)?;
            if web.api.may_read(viewer, &view).await.is_err() {
                continue;
            }
            if let Some(row) = row(
                web,
                &view,
                now,
                &rules,
                &deputies,
                person.as_ref(),
                &mut histories,
            )
            .await?
            {
                out.push(row);
            }
        }
        if out.len() >= PAGE_ROWS || cursor.is_none() {
            break;
        }
    }
    Ok((out, cursor))
}

/// The board's row of `view`; `None` when it does not wait on `person`.
async fn row(
    web: &Web,
    view: &opsgate_store::TransitionView,
    now: chrono::DateTime<chrono::Utc>,
    rules: &StallRules,
    deputies: &[opsgate_domain::Delegation],
    person: Option<&Actor>,
    histories: &mut Histories,
) -> Result<Option<Row>, tonic::Status> {
    let wf = &view.workflow.workflow;
    let state = &view.state;
    let meta = &state.meta;
    let found = stalls(wf, state, now, rules, deputies);
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
    if person.is_some_and(|p| !waits_on.contains(&p.to_string())) {
        return Ok(None);
    }
    let forecast = histories.forecast(&web.api, view, now.date_naive()).await?;
    let mut stalled: Vec<String> = found
        .iter()
        .map(|s| s.kind.as_str().replace('_', " "))
        .collect();
    stalled.dedup();
    Ok(Some(Row {
        id: view.id.clone(),
        workflow: meta.workflow.to_string(),
        service: meta.service_name.clone(),
        version: meta.service_version.clone(),
        done: state.nodes.iter().filter(|n| n.counts_as_done()).count(),
        total: state.nodes.len(),
        target: meta.target_go_live.to_string(),
        projected: forecast.projected_go_live,
        days_late: i64::from(forecast.days_late),
        stalled,
        waits_on,
        status: state.status,
    }))
}
