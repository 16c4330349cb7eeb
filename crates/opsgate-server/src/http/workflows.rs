//! `GET /workflows`: the process descriptions people work to: every registered workflow's
//! latest version with its purpose and size, each linking to its whole description
//! (`/workflows/{name}`, [`super::workflow_doc`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use opsgate_domain::NodeKind;

use super::Web;
use super::page::{esc, layout, problem, segment};

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
    } else {
        body.push_str(
            "<table class=\"board\"><thead><tr><th scope=\"col\">Workflow</th>\
             <th scope=\"col\">Version</th><th scope=\"col\">Purpose</th>\
             <th scope=\"col\">Deliverables</th><th scope=\"col\">Roles</th></tr></thead><tbody>",
        );
    }
    for summary in &list {
        let record = match store.get_workflow(&summary.name, None).await {
            Ok(r) => r,
            Err(_) => continue,
        };
        let wf = &record.workflow;
        let deliverables = wf
            .nodes()
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Deliverable(_)))
            .count();
        body.push_str(&format!(
            "<tr><td><a href=\"/workflows/{link}\">{name}</a></td><td>{version}</td>\
             <td>{description}</td><td>{deliverables}</td><td>{roles}</td></tr>",
            link = segment(&summary.name),
            name = esc(&summary.name),
            version = record.version,
            description = esc(wf.description().lines().next().unwrap_or_default()),
            roles = wf.roles().len(),
        ));
    }
    if !list.is_empty() {
        body.push_str("</tbody></table>");
    }
    layout("Workflows", who, &body)
}
