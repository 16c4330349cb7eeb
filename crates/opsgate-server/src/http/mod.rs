//! The HTTP listener (`opsgate serve --http ADDR`): the web pages (the SMO board `/`, a
//! transition `/transitions/{id}`, sign-in), `/metrics` for Prometheus, the JSON gate API and
//! badge for pipelines (`gates`), every unary RPC as `POST /opsgate.v1.<Service>/<Method>` with
//! protobuf JSON (`connect`); one file per page. Every route is authorized by the same
//! table and the same code as the gRPC API ([`crate::auth::ACCESS`]: rows named `GET /path`, and
//! the RPCs' own rows for the bridge).

mod actions;
mod board;
mod connect;
mod gates;
mod live;
mod me;
mod metrics;
mod page;
mod signin;
mod stalled;
mod template;
mod transition;
mod workflows;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::Caller;
use crate::error::StartError;
use crate::metrics::Metrics;
use crate::services::Api;

/// What every page shares.
#[derive(Clone)]
pub(crate) struct Web {
    api: Api,
    metrics: Arc<Metrics>,
    /// The stalled figures of the last scrape and when they were read.
    stalled: Arc<Mutex<Option<(Instant, metrics::StalledFigures)>>>,
    /// Live transition pages following their transition (`live`).
    live: Arc<tokio::sync::Semaphore>,
    /// Turns true when the server stops: live streams end then, so that shutdown does not wait
    /// on them.
    stop: watch::Receiver<bool>,
}

/// Binds `addr` and serves the pages until `stop` turns true.
pub(crate) async fn serve(
    addr: SocketAddr,
    api: Api,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<std::io::Result<()>>), StartError> {
    let web = Web {
        api,
        metrics,
        stalled: Arc::default(),
        live: Arc::new(tokio::sync::Semaphore::new(live::MAX_LIVE)),
        stop: stop.clone(),
    };
    let app = Router::new()
        .route("/", get(board::page))
        .route("/me", get(me::page))
        .route("/stalled", get(stalled::page))
        .route("/workflows", get(workflows::page))
        .route("/transitions/{id}", get(transition::page))
        .route("/transitions/{id}/live", get(live::stream))
        .route(
            "/transitions/{id}/templates/{node}",
            get(template::download),
        )
        .route(
            "/transitions/{id}/submit",
            axum::routing::post(actions::submit),
        )
        .route(
            "/transitions/{id}/review",
            axum::routing::post(actions::review),
        )
        .route(
            "/transitions/{id}/accept",
            axum::routing::post(actions::accept),
        )
        .route(
            "/transitions/{id}/reject",
            axum::routing::post(actions::reject),
        )
        .route(
            "/transitions/{id}/sign-off",
            axum::routing::post(actions::sign_off),
        )
        .route(
            "/transitions/{id}/waive",
            axum::routing::post(actions::waive),
        )
        .route("/signin", get(signin::show).post(signin::submit))
        .route("/signout", axum::routing::post(signin::sign_out))
        .route("/static/opsgate.css", get(style))
        .route("/static/opsgate.js", get(script))
        .route("/metrics", get(metrics::page))
        .route("/api/v1/gates/{service}/{version}", get(gates::decision))
        .route(
            "/api/v1/gates/{service}/{version}/badge.svg",
            get(gates::badge),
        )
        .route(
            "/{service}/{method}",
            axum::routing::post(connect::call).layer(axum::extract::DefaultBodyLimit::max(
                crate::MAX_MESSAGE_BYTES,
            )),
        )
        .fallback(not_found)
        .with_state(web);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .await
    });
    tracing::info!(addr = %local, "serving HTTP: the web pages (open /), /metrics, /api/v1/gates, the RPCs as JSON");
    Ok((local, task))
}

/// The one style sheet, compiled into the binary (no CDN: the pages work without internet).
async fn style() -> Response {
    asset(
        include_str!("static/opsgate.css"),
        "text/css; charset=utf-8",
    )
}

/// The one script (live updates of a transition page), compiled in like the style sheet.
async fn script() -> Response {
    asset(
        include_str!("static/opsgate.js"),
        "text/javascript; charset=utf-8",
    )
}

fn asset(text: &'static str, kind: &'static str) -> Response {
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "not found: this opsgate listener serves /metrics, GET /api/v1/gates/SERVICE/VERSION \
         (and .../badge.svg), and POST /opsgate.v1.<Service>/<Method> (docs/http.md)\n",
    )
        .into_response()
}

impl Web {
    /// The caller of `route` (a row of the access table), from the request's headers: the same
    /// bearer tokens, CI tokens and development header as the gRPC API.
    pub(crate) async fn authorize(
        &self,
        headers: &HeaderMap,
        route: &str,
    ) -> Result<Option<Caller>, Response> {
        self.caller(headers.clone(), route)
            .await
            .map_err(|status| refused(&status))
    }

    /// The caller of `route` whose request carries `headers`, decided by the gRPC API's own
    /// authenticator (the headers are the call's metadata); the refusal as its status.
    pub(crate) async fn caller(
        &self,
        headers: HeaderMap,
        route: &str,
    ) -> Result<Option<Caller>, tonic::Status> {
        let mut request = tonic::Request::new(());
        *request.metadata_mut() = tonic::metadata::MetadataMap::from_headers(headers);
        self.api.auth().authorize(&request, route).await
    }
}

/// An authorization refusal as HTTP: 401 with a Bearer challenge, or 403.
fn refused(status: &tonic::Status) -> Response {
    let code = match status.code() {
        tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut response = (code, format!("{}\n", status.message())).into_response();
    if code == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"opsgate\""),
        );
    }
    response
}
