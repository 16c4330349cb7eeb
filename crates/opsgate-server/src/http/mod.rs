//! The HTTP listener (`opsgate serve --http ADDR`): the web pages (the SMO board `/`, a
//! transition `/transitions/{id}`, sign-in), `/metrics` for Prometheus, the JSON gate API and
//! badge for pipelines (`gates`), every unary RPC as `POST /opsgate.v1.<Service>/<Method>` with
//! protobuf JSON (`connect`); one file per page. Every route is authorized by the same
//! table and the same code as the gRPC API ([`crate::auth::ACCESS`]: rows named `GET /path`, and
//! the RPCs' own rows for the bridge).

mod actions;
mod attachment;
mod board;
mod calendar;
mod connect;
mod gates;
mod live;
mod me;
mod metrics;
mod page;
mod service;
mod signin;
mod stalled;
mod template;
mod transition;
mod workflow_doc;
mod workflows;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::Caller;
use crate::error::StartError;
use crate::metrics::Metrics;
use crate::proxy::{AuthProxy, ProxyUser};
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
    /// Sign-in through an SSO reverse proxy's user header, when configured.
    proxy: Option<Arc<AuthProxy>>,
}

/// What a request says about who sends it: its headers, and the person a trusted SSO proxy
/// named ([`vouch`] puts them in the request's extensions). Reads as the headers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    headers: HeaderMap,
    proxy: Option<ProxyUser>,
}

impl Seen {
    /// The person the SSO proxy signed in, if any.
    pub(crate) fn proxied(&self) -> Option<&ProxyUser> {
        self.proxy.as_ref()
    }

    /// The extensions of a call made on this request's behalf: the proxy's person, if any.
    pub(crate) fn extensions(&self) -> tonic::Extensions {
        let mut extensions = tonic::Extensions::new();
        if let Some(user) = &self.proxy {
            extensions.insert(user.clone());
        }
        extensions
    }
}

impl From<HeaderMap> for Seen {
    fn from(headers: HeaderMap) -> Self {
        Self {
            headers,
            proxy: None,
        }
    }
}

impl std::ops::Deref for Seen {
    type Target = HeaderMap;

    fn deref(&self) -> &HeaderMap {
        &self.headers
    }
}

impl std::ops::DerefMut for Seen {
    fn deref_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Seen {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self {
            headers: parts.headers.clone(),
            proxy: parts.extensions.get::<ProxyUser>().cloned(),
        })
    }
}

/// Before every route: the person the SSO proxy's header names, when it came from a trusted
/// proxy (from anywhere else it is ignored); a look-alike spelling of the header is refused.
async fn vouch(
    State(web): State<Web>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: axum::extract::Request,
    next: Next,
) -> Response {
    if let Some(proxy) = &web.proxy {
        match proxy.user(peer.ip(), request.headers()) {
            Ok(Some(user)) => {
                request.extensions_mut().insert(user);
            }
            Ok(None) => {}
            Err(message) => {
                return (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response();
            }
        }
    }
    next.run(request).await
}

/// Binds `addr` and serves the pages until `stop` turns true.
pub(crate) async fn serve(
    addr: SocketAddr,
    api: Api,
    metrics: Arc<Metrics>,
    proxy: Option<Arc<AuthProxy>>,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<std::io::Result<()>>), StartError> {
    if let Some(proxy) = &proxy {
        tracing::info!(
            header = proxy.header(),
            "web sign-in through an SSO proxy's user header"
        );
    }
    let web = Web {
        api,
        metrics,
        stalled: Arc::default(),
        live: Arc::new(tokio::sync::Semaphore::new(live::MAX_LIVE)),
        stop: stop.clone(),
        proxy,
    };
    let app = Router::new()
        .route("/", get(board::page))
        .route("/me", get(me::page))
        .route("/stalled", get(stalled::page))
        .route("/services/{name}", get(service::page))
        .route("/workflows", get(workflows::page))
        .route("/workflows/{name}", get(workflow_doc::page))
        .route("/transitions/{id}", get(transition::page))
        .route("/transitions/{id}/live", get(live::stream))
        .route(
            "/transitions/{id}/templates/{node}",
            get(template::download),
        )
        .route("/transitions/{id}/calendar.ics", get(calendar::feed))
        .route(
            "/transitions/{id}/attachments/{sha256}",
            get(attachment::download),
        )
        .route(
            "/transitions/{id}/submit",
            axum::routing::post(actions::submit)
                .layer(axum::extract::DefaultBodyLimit::max(actions::MAX_UPLOAD)),
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
        .layer(axum::middleware::from_fn_with_state(web.clone(), vouch))
        .with_state(web);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
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
    /// bearer tokens, CI tokens and development header as the gRPC API, and the SSO proxy's person.
    pub(crate) async fn authorize(
        &self,
        seen: &Seen,
        route: &str,
    ) -> Result<Option<Caller>, Response> {
        self.caller(seen, route)
            .await
            .map_err(|status| refused(&status))
    }

    /// The caller of `route` whose request is `seen`, decided by the gRPC API's own
    /// authenticator (the headers are the call's metadata); the refusal as its status.
    pub(crate) async fn caller(
        &self,
        seen: &Seen,
        route: &str,
    ) -> Result<Option<Caller>, tonic::Status> {
        let request = tonic::Request::from_parts(
            tonic::metadata::MetadataMap::from_headers(seen.headers.clone()),
            seen.extensions(),
            (),
        );
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
