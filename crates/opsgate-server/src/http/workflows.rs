//! `GET /workflows`: the process descriptions people work to: every workflow's latest version
//! with its purpose, roles and responsibilities, contacts, its graph and its plan (each node's
//! effort, due offset and what it needs).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use opsgate_domain::workflow::{Anchor, Due};

use super::Web;
use super::page::{esc, layout, problem};

/// The access table's row of this page.
pub(crate) const ROUTE: &str = "GET /workflows";

pub(crate) async fn page(State(web): State<Web>, headers: super::Seen) -> Response {
    let viewer = match web.viewer(&headers, ROUTE).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let who = viewer.as_ref();
    let store = web.api.store();
    let list = match store.list_workflows().await {
        Ok(l) => l,
        Err(e) => {
            let s = crate::error::status(e);
            return problem(StatusCode::SERVICE_UNAVAILABLE, who, s.message());
        }
    };
    let mut body = String::from("<h1>Workflows</h1>");
    if list.is_empty() {
        body.push_str("<p class=\"empty\">No workflow is registered.</p>");
    }
    for summary in list {
        let record = match store.get_workflow(&summary.name, None).await {
            Ok(r) => r,
            Err(_) => continue,
        };
        let wf = &record.workflow;
        body.push_str(&format!(
            "<section class=\"workflow\" aria-labelledby=\"wf-{id}\"><h2 id=\"wf-{id}\">{name} \
             <span class=\"id\">version {version}</span></h2><p>{description}</p>",
            id = esc(&summary.name),
            name = esc(&summary.name),
            version = record.version,
            description = esc(wf.description()),
        ));
        if !wf.roles().is_empty() {
            body.push_str("<h3>Roles</h3><ul>");
            for role in wf.roles() {
                let duties = if role.responsibilities.is_empty() {
                    String::new()
                } else {
                    format!(": {}", esc(&role.responsibilities.join("; ")))
                };
                body.push_str(&format!(
                    "<li><strong>{}</strong> — {}{duties}</li>",
                    esc(role.name.as_str()),
                    esc(&role.description)
                ));
            }
            body.push_str("</ul>");
        }
        if !wf.contacts().is_empty() {
            body.push_str("<h3>Contacts</h3><ul>");
            for c in wf.contacts() {
                body.push_str(&format!(
                    "<li>{} {}</li>",
                    esc(&c.name),
                    esc(&c.channels.join(", "))
                ));
            }
            body.push_str("</ul>");
        }
        body.push_str("<h3>The plan</h3><div class=\"scroll\">");
        body.push_str(&super::transition::dag(wf, None));
        body.push_str(
            "</div><table class=\"nodes\"><thead><tr><th scope=\"col\">Node</th>\
             <th scope=\"col\">Kind</th><th scope=\"col\">Effort</th><th scope=\"col\">Due</th>\
             <th scope=\"col\">Needs</th></tr></thead><tbody>",
        );
        for node in wf.nodes() {
            let needs: Vec<&str> = node.needs.iter().map(|&n| wf.node(n).id.as_str()).collect();
            body.push_str(&format!(
                "<tr><th scope=\"row\">{title}<br><span class=\"id\">{id}</span></th><td>{kind}\
                 </td><td>{effort} d</td><td>{due}</td><td>{needs}</td></tr>",
                title = esc(&node.title),
                id = esc(node.id.as_str()),
                kind = node.kind.label(),
                effort = node.effort_days,
                due = node.due.map(due_text).unwrap_or_default(),
                needs = esc(&needs.join(", ")),
            ));
        }
        body.push_str("</tbody></table></section>");
    }
    layout("Workflows", who, &body)
}

/// A due offset as the workflow language writes it (`go_live - 20d`).
fn due_text(due: Due) -> String {
    let anchor = match due.anchor {
        Anchor::Start => "start",
        Anchor::GoLive => "go_live",
    };
    match due.days {
        0 => anchor.to_owned(),
        n if n > 0 => format!("{anchor} + {n}d"),
        n => format!("{anchor} - {}d", n.unsigned_abs()),
    }
}
