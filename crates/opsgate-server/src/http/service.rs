//! `GET /services/{name}`: a service of the catalog (`opsgate service show` as a page): its
//! owner, service manager, criticality and default workflow, and every version with its
//! transition (running, or accepted when and by whom), newest first. Transitions the viewer may
//! not read are listed without a link.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::Web;
use super::page::{esc, layout, problem, segment};

/// The access table's row of this page.
pub(crate) const ROUTE: &str = "GET /services/{name}";

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
    let store = web.api.store();
    let unavailable = |e: opsgate_store::Error| {
        let s = crate::error::status(e);
        problem(StatusCode::SERVICE_UNAVAILABLE, who, s.message())
    };
    let entry = match store.service(&name).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            return problem(
                StatusCode::NOT_FOUND,
                who,
                &opsgate_store::not_in_catalog(&name).to_string(),
            );
        }
        Err(e) => return unavailable(e),
    };
    let versions = match store.service_versions(&name).await {
        Ok(v) => v,
        Err(e) => return unavailable(e),
    };
    let or_dash = |v: &str| {
        if v.is_empty() {
            "—".to_owned()
        } else {
            esc(v)
        }
    };
    let mut body = format!(
        "<h1>{name}</h1><p>{description}</p><dl class=\"facts\"><dt>Owner</dt><dd>{owner}</dd>\
         <dt>Service manager</dt><dd>{sm}</dd><dt>Criticality</dt><dd>{crit}</dd>\
         <dt>Default workflow</dt><dd>{wf}</dd></dl><h2>Versions</h2>",
        name = esc(&entry.name),
        description = esc(&entry.description),
        owner = or_dash(&entry.owner),
        sm = or_dash(&entry.service_manager),
        crit = or_dash(&entry.criticality),
        wf = or_dash(&entry.default_workflow),
    );
    if versions.is_empty() {
        body.push_str("<p class=\"empty\">No transition yet.</p>");
    } else {
        body.push_str(
            "<table class=\"board\"><thead><tr><th scope=\"col\">Version</th>\
             <th scope=\"col\">Status</th><th scope=\"col\">Workflow</th>\
             <th scope=\"col\">Target go-live</th><th scope=\"col\">Accepted</th></tr></thead><tbody>",
        );
        for v in &versions {
            let readable = match store.get_transition(&v.transition_id).await {
                Ok(view) => web.api.may_read(who, &view).await.is_ok(),
                Err(_) => false,
            };
            let version = if readable {
                format!(
                    "<a href=\"/transitions/{}\">{}</a>",
                    segment(&v.transition_id),
                    esc(&v.version)
                )
            } else {
                esc(&v.version)
            };
            let accepted = match &v.accepted {
                Some((at, by)) => format!("{} by {}", at.format("%Y-%m-%d"), esc(by)),
                None => String::new(),
            };
            body.push_str(&format!(
                "<tr><td>{version}</td><td>{status}</td><td>{wf} v{wv}</td><td>{target}</td>\
                 <td>{accepted}</td></tr>",
                status = esc(&v.status.as_str().replace('_', " ")),
                wf = esc(&v.workflow_name),
                wv = v.workflow_version,
                target = v.target_go_live,
            ));
        }
        body.push_str("</tbody></table>");
    }
    layout(&format!("Service {}", entry.name), who, &body)
}
