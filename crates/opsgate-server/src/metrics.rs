//! Prometheus metrics in the text exposition format (0.0.4): RPC counts and latency histograms by
//! method and gRPC status (a tower layer on the gRPC server), and, read at scrape time, the
//! transitions by workflow and status, what is stalled and for how long, and the write batch
//! sizes of the store. Hand-written: a dozen families need no registry crate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tonic::codegen::http;

use crate::auth::ACCESS;

/// Upper bounds of the RPC latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// gRPC status names, by code.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Methods besides opsgate's own that the server answers.
const OTHER_METHODS: [&str; 4] = [
    "grpc.health.v1.Health/Check",
    "grpc.health.v1.Health/Watch",
    "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The method label of a request path: a method the server has, or `other` (so that random
/// paths cannot grow the label set).
fn method_label(path: &str) -> &'static str {
    let name = path.strip_prefix('/').unwrap_or(path);
    ACCESS
        .iter()
        .map(|(m, _)| *m)
        .chain(OTHER_METHODS)
        .find(|m| *m == name)
        .unwrap_or("other")
}

#[derive(Debug, Clone, Default)]
struct Series {
    count: u64,
    sum_seconds: f64,
    /// Per bucket of [`LATENCY_BUCKETS`] (not cumulative), then above the last.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
}

/// What the server counts as it runs.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    rpcs: Mutex<BTreeMap<(&'static str, usize), Series>>,
}

impl Metrics {
    fn observe(&self, method: &'static str, code: usize, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Ok(mut rpcs) = self.rpcs.lock() {
            let series = rpcs.entry((method, code.min(CODES.len() - 1))).or_default();
            series.count += 1;
            series.sum_seconds += seconds;
            series.buckets[bucket] += 1;
        }
    }

    /// The RPC families.
    pub(crate) fn render_rpcs(&self, out: &mut String) {
        let rpcs = self.rpcs.lock().map(|r| r.clone()).unwrap_or_default();
        family(
            out,
            "opsgate_rpc_requests_total",
            "counter",
            "gRPC calls answered, by method and status.",
        );
        for ((method, code), s) in &rpcs {
            let labels = [("method", *method), ("code", CODES[*code])];
            sample(out, "opsgate_rpc_requests_total", &labels, s.count as f64);
        }
        family(
            out,
            "opsgate_rpc_duration_seconds",
            "histogram",
            "Time from a gRPC call's arrival to its response headers, by method and status.",
        );
        for ((method, code), s) in &rpcs {
            let mut cumulative = 0;
            for (i, n) in s.buckets.iter().enumerate() {
                cumulative += n;
                let le = LATENCY_BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                let labels = [("method", *method), ("code", CODES[*code]), ("le", &le)];
                sample(
                    out,
                    "opsgate_rpc_duration_seconds_bucket",
                    &labels,
                    cumulative as f64,
                );
            }
            let labels = [("method", *method), ("code", CODES[*code])];
            sample(
                out,
                "opsgate_rpc_duration_seconds_sum",
                &labels,
                s.sum_seconds,
            );
            sample(
                out,
                "opsgate_rpc_duration_seconds_count",
                &labels,
                s.count as f64,
            );
        }
    }
}

/// `# HELP` and `# TYPE` of a family.
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(
        out,
        "# HELP {name} {}",
        help.replace('\\', "\\\\").replace('\n', "\\n")
    );
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line, label values escaped.
pub(crate) fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(out, "{k}=\"{v}\"");
        }
        out.push('}');
    }
    if value.is_finite() {
        let _ = writeln!(out, " {value}");
    } else {
        let _ = writeln!(out, " NaN");
    }
}

/// The tower layer that times every gRPC call.
#[derive(Debug, Clone)]
pub(crate) struct MetricsLayer(pub(crate) Arc<Metrics>);

impl<S> tower_layer::Layer<S> for MetricsLayer {
    type Service = Timed<S>;

    fn layer(&self, inner: S) -> Timed<S> {
        Timed {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// A service whose calls are counted and timed.
#[derive(Debug, Clone)]
pub(crate) struct Timed<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for Timed<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_label(request.uri().path());
        let started = Instant::now();
        let future = self.inner.call(request);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let result = future.await;
            // An error answer is "trailers only": its status is in the headers. A success sends
            // its status (OK) in the trailers, after the body.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0),
                Err(_) => 2,
            };
            metrics.observe(method, code, started.elapsed());
            result
        })
    }
}
