//! `GET /transitions/{id}/attachments/{sha256}`: a file uploaded as evidence on the transition,
//! for whoever may read the transition; always a download (never shown inline, so an uploaded
//! HTML file or image cannot run or pose as one of opsgate's pages).

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Web;
use super::page::{problem, secure};

/// The access table's row of this download.
pub(crate) const ROUTE: &str = "GET /transitions/{id}/attachments/{sha256}";

pub(crate) async fn download(
    State(web): State<Web>,
    Path((id, sha256)): Path<(String, String)>,
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
    let missing = || {
        problem(
            StatusCode::NOT_FOUND,
            who,
            "No file with this SHA-256 was uploaded to this transition.",
        )
    };
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return missing();
    }
    let file = match web
        .api
        .store()
        .attachment(&view.id, &sha256.to_ascii_lowercase())
        .await
    {
        Ok(Some(file)) => file,
        Ok(None) => return missing(),
        Err(e) => {
            let s = crate::error::status(e);
            return problem(super::connect::http_status(s.code()), who, s.message());
        }
    };
    // The name as a plain ASCII fallback and in full (RFC 6266 `filename*`).
    let plain: String = file
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = file
        .name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let mut response = file.content.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}"
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&file.sha256) {
        h.insert("x-opsgate-sha256", v);
    }
    secure(h);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    response
}
