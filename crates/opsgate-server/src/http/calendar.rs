//! `GET /transitions/{id}/calendar.ics`: the transition's meetings and dates as an iCalendar
//! feed at a stable address, for whoever may read the transition (a calendar client that
//! subscribes sends an API token as `Authorization: Bearer`, or the session cookie).

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::Web;
use super::page::secure;

/// The access table's row of this feed.
pub(crate) const ROUTE: &str = "GET /transitions/{id}/calendar.ics";

pub(crate) async fn feed(
    State(web): State<Web>,
    Path(id): Path<String>,
    headers: super::Seen,
) -> Response {
    let viewer = match web.viewer(&headers, ROUTE).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let view = match web.readable(viewer.as_ref(), &id).await {
        Ok(view) => view,
        Err(refused) => return refused,
    };
    let mut response = web.api.calendar(&view).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    if let Ok(v) =
        HeaderValue::from_str(&format!("inline; filename=\"transition-{}.ics\"", view.id))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    secure(h);
    response
}
