//! `GET /transitions/{id}/live?seq=N`: server-sent events for an open transition page. An event
//! `changed` (its data the new sequence number) each time the transition moves past the `seq`
//! the page shows, so that the page (`static/opsgate.js`) reads itself again: when someone else
//! acts, the page updates without a reload. Woken by the store's change announcements, and
//! checking every two seconds besides (changes made through another replica); bounded like
//! `WatchGate`: at most 1,024 at once, each for at most an hour (the browser reconnects).

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use opsgate_store::Changed;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;

use super::Web;
use super::page::problem;

/// The access table's row of this stream.
pub(crate) const ROUTE: &str = "GET /transitions/{id}/live";
/// Streams open at once.
pub(crate) const MAX_LIVE: usize = 1024;
/// How long one stream lasts.
const MAX_LIVE_FOR: Duration = Duration::from_secs(3600);
/// How often a stream checks without a wake-up.
const RECHECK: Duration = Duration::from_secs(2);

pub(crate) async fn stream(
    State(web): State<Web>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
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
    let store = web.api.store().clone();
    let Ok(permit) = web.live.clone().try_acquire_owned() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            who,
            "Too many pages are following transitions at once; reload later.",
        );
    };
    let mut seen = query
        .get("seq")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(view.state.seq);
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(8);
    let id: std::sync::Arc<str> = id.into();
    let mut feed = store.subscribe_changes();
    let mut stop = web.stop.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let deadline = tokio::time::Instant::now() + MAX_LIVE_FOR;
        loop {
            let look = tokio::select! {
                changed = feed.next() => match changed {
                    Some(Changed::Transition(t)) => t == id,
                    Some(Changed::Unknown) => true,
                    None => return,
                },
                _ = tokio::time::sleep(RECHECK) => true,
                _ = tx.closed() => return,
                _ = tokio::time::sleep_until(deadline) => return,
                _ = stop.wait_for(|s| *s) => return,
            };
            if !look {
                continue;
            }
            let Ok(now) = store.get_transition(&id).await else {
                continue;
            };
            if now.state.seq != seen {
                seen = now.state.seq;
                let event = Event::default().event("changed").data(seen.to_string());
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut response = Sse::new(ReceiverStream::new(rx).map(Ok::<_, Infallible>))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}
