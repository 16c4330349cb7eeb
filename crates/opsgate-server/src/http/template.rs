//! `GET /transitions/{id}/templates/{node}`: a deliverable's template as stored with the
//! workflow version the transition runs, to download next to the deliverable on its page (a
//! template that is a link redirects there).

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Web;
use super::page::{problem, secure};

/// The access table's row of this download.
pub(crate) const ROUTE: &str = "GET /transitions/{id}/templates/{node}";

pub(crate) async fn download(
    State(web): State<Web>,
    Path((id, node)): Path<(String, String)>,
    headers: super::Seen,
) -> Response {
    let viewer = match web.viewer(&headers, ROUTE).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let who = viewer.as_ref();
    let view = match web.readable(who, &id).await {
        Ok(view) => view,
        Err(refused) => return refused,
    };
    let template = match web.api.template(&view, &node).await {
        Ok(t) => t,
        Err(s) => return problem(super::connect::http_status(s.code()), who, s.message()),
    };
    if !template.link.is_empty() {
        let mut response = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(&template.link) {
            response.headers_mut().insert(header::LOCATION, v);
        }
        return response;
    }
    let file = template
        .path
        .rsplit('/')
        .next()
        .unwrap_or("template.md")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect::<String>();
    let mut response = template.content.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/markdown; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    secure(h);
    response
}
