//! `GET /metrics`: the Prometheus text exposition (format 0.0.4) of the server: RPCs by method and
//! status, transitions by workflow and status, what is stalled and the oldest stall's age (read
//! at most every 15 s), the store's write batch sizes and time in write transactions, and with
//! notifications on the outbox backlog and the dead-lettered deliveries. Any authenticated
//! caller (Prometheus with an API token, `authorization.credentials_file`).

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opsgate_domain::stalled::StallRules;

use super::Web;
use crate::metrics::{family, sample};

/// How long the stalled figures of one scrape serve the next.
const STALLED_TTL: Duration = Duration::from_secs(15);

/// The stalled list's size and its oldest row, under the default rules.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StalledFigures {
    items: usize,
    transitions: usize,
    oldest_seconds: f64,
}

pub(crate) async fn page(State(web): State<Web>, headers: super::Seen) -> Response {
    if let Err(refused) = web.authorize(&headers, "GET /metrics").await {
        return refused;
    }
    match render(&web).await {
        Ok(text) => {
            let mut response = text.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        Err(status) => {
            tracing::warn!(error = %status.message(), "metrics could not be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("metrics could not be read: {}\n", status.message()),
            )
                .into_response()
        }
    }
}

async fn render(web: &Web) -> Result<String, tonic::Status> {
    let store = web.api.store();
    let mut out = String::with_capacity(16 * 1024);
    family(
        &mut out,
        "opsgate_build_info",
        "gauge",
        "The running opsgate version and database backend (always 1).",
    );
    let backend = format!("{:?}", store.backend()).to_lowercase();
    sample(
        &mut out,
        "opsgate_build_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("backend", &backend),
        ],
        1.0,
    );
    web.metrics.render_rpcs(&mut out);

    let counts = store
        .transition_counts()
        .await
        .map_err(crate::error::status)?;
    family(
        &mut out,
        "opsgate_transitions",
        "gauge",
        "Stored transitions by workflow and status (active, handed_over, completed).",
    );
    for c in &counts {
        sample(
            &mut out,
            "opsgate_transitions",
            &[("workflow", &c.workflow_name), ("status", &c.status)],
            c.count as f64,
        );
    }

    let stalled = stalled_figures(web).await?;
    family(
        &mut out,
        "opsgate_stalled_items",
        "gauge",
        "Rows of the stalled list under the default rules (idle 7 days, review 5, 2 bounces).",
    );
    sample(&mut out, "opsgate_stalled_items", &[], stalled.items as f64);
    family(
        &mut out,
        "opsgate_stalled_transitions",
        "gauge",
        "Active transitions with at least one stalled row.",
    );
    sample(
        &mut out,
        "opsgate_stalled_transitions",
        &[],
        stalled.transitions as f64,
    );
    family(
        &mut out,
        "opsgate_stalled_oldest_seconds",
        "gauge",
        "Age of the oldest stalled row (0 when nothing is stalled).",
    );
    sample(
        &mut out,
        "opsgate_stalled_oldest_seconds",
        &[],
        stalled.oldest_seconds,
    );

    if store.notifications() {
        let backlog = store.outbox_backlog().await.map_err(crate::error::status)?;
        for (name, help, value) in [
            (
                "opsgate_outbox_notices",
                "Notices written and not yet fanned out to their channels.",
                backlog.notices,
            ),
            (
                "opsgate_deliveries_pending",
                "Deliveries waiting for an attempt (including those waiting to retry).",
                backlog.pending,
            ),
            (
                "opsgate_deliveries_failed",
                "Dead-lettered deliveries (every attempt failed, or the endpoint is gone).",
                backlog.failed,
            ),
        ] {
            family(&mut out, name, "gauge", help);
            sample(&mut out, name, &[], value as f64);
        }
    }

    let batches = store.batch_stats();
    family(
        &mut out,
        "opsgate_write_batch_size",
        "histogram",
        "Transition writes per committed database transaction (SQLite group commit; 1 on PostgreSQL).",
    );
    for (i, n) in batches.cumulative.iter().enumerate() {
        let le = opsgate_store::BATCH_BUCKETS
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), ToString::to_string);
        sample(
            &mut out,
            "opsgate_write_batch_size_bucket",
            &[("le", &le)],
            *n as f64,
        );
    }
    sample(
        &mut out,
        "opsgate_write_batch_size_sum",
        &[],
        batches.writes as f64,
    );
    sample(
        &mut out,
        "opsgate_write_batch_size_count",
        &[],
        batches.batches as f64,
    );
    family(
        &mut out,
        "opsgate_write_busy_seconds_total",
        "counter",
        "Seconds spent in committed write transactions, from begin to commit. On SQLite, whose one writer runs one batch at a time, a rate near 1 means writes are queueing behind it.",
    );
    sample(
        &mut out,
        "opsgate_write_busy_seconds_total",
        &[],
        batches.busy_micros as f64 / 1e6,
    );
    family(
        &mut out,
        "opsgate_write_phase_seconds_total",
        "counter",
        "Seconds committed write transactions spent in each phase: decide (from the begin until every write is decided), write (the transition rows), commit (the other rows and the commit, with SQLite's fsync). The phases add up to opsgate_write_busy_seconds_total.",
    );
    for (phase, micros) in opsgate_store::WRITE_PHASES.iter().zip(batches.phase_micros) {
        sample(
            &mut out,
            "opsgate_write_phase_seconds_total",
            &[("phase", phase)],
            micros as f64 / 1e6,
        );
    }
    Ok(out)
}

async fn stalled_figures(web: &Web) -> Result<StalledFigures, tonic::Status> {
    if let Ok(cached) = web.stalled.lock()
        && let Some((at, figures)) = *cached
        && at.elapsed() < STALLED_TTL
    {
        return Ok(figures);
    }
    let now = web.api.store().now();
    let stalled = web
        .api
        .stalled(&StallRules::default(), None, None, None)
        .await?;
    let oldest = stalled
        .items
        .iter()
        .filter_map(|i| i.since.as_ref())
        .map(|t| (now.timestamp() - t.seconds).max(0))
        .max()
        .unwrap_or(0);
    let figures = StalledFigures {
        items: stalled.items.len(),
        transitions: stalled.listed.len(),
        oldest_seconds: oldest as f64,
    };
    if let Ok(mut cached) = web.stalled.lock() {
        *cached = Some((Instant::now(), figures));
    }
    Ok(figures)
}
