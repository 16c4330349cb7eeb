//! `GET /stalled`: the stalled list (`opsgate audit stalled`) as a page: what is stuck, why,
//! since when and on whom, the most overdue first; filtered by workflow, service and person. The
//! SMO and auditors see every transition, anyone else those they have a part in.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use opsgate_domain::Actor;
use opsgate_domain::stalled::StallRules;

use super::Web;
use super::page::{esc, layout, problem, segment};

/// The access table's row of this page.
pub(crate) const ROUTE: &str = "GET /stalled";

pub(crate) async fn page(
    State(web): State<Web>,
    Query(filter): Query<HashMap<String, String>>,
    headers: super::Seen,
) -> Response {
    let viewer = match web.viewer(&headers, ROUTE).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let who = viewer.as_ref();
    let pick = |key: &str| {
        filter
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 200)
    };
    let (workflow, service, person) = (pick("workflow"), pick("service"), pick("person"));
    let actor = match person.as_deref().map(Actor::parse).transpose() {
        Ok(a) => a,
        Err(e) => return problem(StatusCode::BAD_REQUEST, who, &e.to_string()),
    };
    let stalled = match web
        .api
        .stalled(
            &StallRules::default(),
            workflow.as_deref(),
            service.as_deref(),
            actor.as_ref(),
        )
        .await
    {
        Ok(s) => s,
        Err(s) => return problem(StatusCode::SERVICE_UNAVAILABLE, who, s.message()),
    };
    let value = |v: &Option<String>| esc(v.as_deref().unwrap_or(""));
    let mut body = format!(
        "<h1>Stalled work</h1>\
         <form class=\"filters\" method=\"get\" action=\"/stalled\">\
         <label>Workflow <input name=\"workflow\" value=\"{}\"></label>\
         <label>Service <input name=\"service\" value=\"{}\"></label>\
         <label>Person <input name=\"person\" value=\"{}\"></label>\
         <button type=\"submit\">Filter</button></form>",
        value(&workflow),
        value(&service),
        value(&person)
    );
    let mut rows = Vec::new();
    for item in &stalled.items {
        let Some(view) = stalled.listed.get(&item.transition_id) else {
            continue;
        };
        if web.api.may_read(who, view).await.is_err() {
            continue;
        }
        let anchor = if item.node_id.is_empty() {
            String::new()
        } else {
            format!("#node-{}", segment(&item.node_id))
        };
        let on = if item.unfilled_role.is_empty() {
            esc(&item.must_act.join(", "))
        } else {
            format!(
                "<span class=\"stalled\">nobody named for {}</span>",
                esc(&item.unfilled_role)
            )
        };
        rows.push(format!(
            "<tr><td><a href=\"/transitions/{id}{anchor}\">{service} {version}</a></td>\
             <td>{kind}</td><td>{title}</td><td>{reason}</td><td>{days}</td><td>{on}</td></tr>",
            id = segment(&item.transition_id),
            service = esc(&item.service_name),
            version = esc(&item.service_version),
            kind = esc(&item.kind.replace('_', " ")),
            title = esc(&item.title),
            reason = esc(&item.reason),
            days = item.days_late,
        ));
    }
    if rows.is_empty() {
        body.push_str("<p class=\"empty\">Nothing is stalled.</p>");
    } else {
        body.push_str(
            "<table class=\"board\"><thead><tr><th scope=\"col\">Service</th>\
             <th scope=\"col\">Why</th><th scope=\"col\">What</th><th scope=\"col\">Details</th>\
             <th scope=\"col\">Days</th><th scope=\"col\">Who must act</th></tr></thead><tbody>",
        );
        body.push_str(&rows.concat());
        body.push_str("</tbody></table>");
    }
    layout("Stalled work", who, &body)
}
