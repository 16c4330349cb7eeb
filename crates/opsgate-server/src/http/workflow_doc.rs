//! `GET /workflows/{name}`: one workflow's process description (its latest version), the same
//! document `opsgate workflow docs` writes: purpose, roles and responsibilities, contacts,
//! meetings, every deliverable with its owner, approvers, template, checklist, evidence and due
//! date, the gate's checklist, post-go-live support and the graph.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::Web;
use super::page::{layout, problem};

/// The access table's row of this page.
pub(crate) const ROUTE: &str = "GET /workflows/{name}";

pub(crate) async fn page(
    State(web): State<Web>,
    Path(name): Path<String>,
    headers: super::Seen,
) -> Response {
    let viewer = match web.viewer(&headers, ROUTE).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let who = viewer.as_ref();
    if opsgate_domain::WorkflowName::parse(&name).is_err() {
        return problem(
            StatusCode::NOT_FOUND,
            who,
            "There is no workflow at this address.",
        );
    }
    match web.api.store().get_workflow(&name, None).await {
        Ok(record) => layout(
            &format!("Workflow {name}"),
            who,
            &format!(
                "<article class=\"process\">{}<p class=\"id\">Registered version {}.</p></article>",
                opsgate_domain::docs::html_body(&record.workflow),
                record.version
            ),
        ),
        Err(e) => {
            let s = crate::error::status(e);
            let code = if s.code() == tonic::Code::NotFound {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            problem(code, who, s.message())
        }
    }
}
