//! `/metrics` on the HTTP listener: valid Prometheus text exposition (parsed by a Prometheus
//! parser and checked line by line against the format), with RPC counts and latency histograms
//! by method and status, transitions by workflow and status, the stalled figures and the write
//! batch sizes; and the page is authorized like the RPCs (401 without a token, 200 with one).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use opsgate_proto::v1 as pb;
use opsgate_server::Config;
use opsgate_tests::{MovingClock, TestDb, TestServer, acting, create_token, start, workflows_dir};

const BOOTSTRAP: &str = "og_7777777777777777777777777777777777777777777777777777777777777777";

async fn scrape(server: &TestServer, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", server.http_url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// Checks every line against the text format (0.0.4): `# HELP`/`# TYPE` comments, a `# TYPE`
/// before a family's samples, metric and label names of the allowed characters, quoted and
/// escaped label values, a float value. Returns the families' types.
fn check_exposition(text: &str) -> HashMap<String, String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut types = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(name_ok(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "twice: {line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line: {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "{line}"
        );
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.strip_suffix('}').expect(line)),
            None => (series, ""),
        };
        assert!(name_ok(name), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its # TYPE: {line}"
        );
        // label="value",... with \\ \" \n escapes only.
        let mut rest = labels;
        while !rest.is_empty() {
            let (label, after) = rest.split_once("=\"").expect(line);
            assert!(name_ok(label), "{line}");
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().expect(line) {
                    (_, '\\') => assert!(
                        matches!(chars.next(), Some((_, '\\' | '"' | 'n'))),
                        "{line}"
                    ),
                    (i, '"') => break i,
                    _ => {}
                }
            };
            rest = after[end + 1..]
                .strip_prefix(',')
                .unwrap_or(&after[end + 1..]);
        }
    }
    types
}

fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == metric
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(k).is_some_and(|got| got == *v))
        })
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            prometheus_parse::Value::Summary(_) => f64::NAN,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_valid_prometheus_text_with_the_figures_the_server_saw() {
    for db in TestDb::all().await {
        let time = MovingClock::default();
        let server = TestServer::start_config(
            &db,
            Config {
                workflows_dir: Some(workflows_dir()),
                bootstrap_token: Some(BOOTSTRAP.into()),
                insecure_dev: true,
                clock: time.clock(),
                ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
            },
        )
        .await;
        let mut c = server.clients().await;
        let id = start(&mut c, "2.0").await.id;
        // An answer with an error status: an unknown transition.
        let missing = c
            .transitions
            .get_transition(acting(
                "Pat",
                pb::GetTransitionRequest {
                    transition_id: "019a4f3e-5b2c-7d11-8e9f-0a1b2c3d4e5f".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
        for _ in 0..3 {
            c.transitions
                .get_transition(acting(
                    "Pat",
                    pb::GetTransitionRequest {
                        transition_id: id.clone(),
                    },
                ))
                .await
                .unwrap();
        }
        // Nothing has happened for 8 days: the transition is idle, stalled.
        time.set_days(8);

        let token = create_token(&server.url, BOOTSTRAP, "prometheus", &["auditor"]).await;
        let response = scrape(&server, Some(&token)).await;
        assert_eq!(response.status(), 200, "{}", db.backend);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        let types = check_exposition(&text);
        for (family, kind) in [
            ("opsgate_rpc_requests_total", "counter"),
            ("opsgate_rpc_duration_seconds", "histogram"),
            ("opsgate_transitions", "gauge"),
            ("opsgate_stalled_items", "gauge"),
            ("opsgate_stalled_oldest_seconds", "gauge"),
            ("opsgate_write_batch_size", "histogram"),
            ("opsgate_write_busy_seconds_total", "counter"),
            ("opsgate_write_phase_seconds_total", "counter"),
        ] {
            assert_eq!(
                types.get(family).map(String::as_str),
                Some(kind),
                "{family}\n{text}"
            );
        }
        let parsed =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();

        let get = "opsgate.v1.TransitionService/GetTransition";
        assert_eq!(
            value(
                &parsed,
                "opsgate_rpc_requests_total",
                &[("method", get), ("code", "OK")]
            ),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            value(
                &parsed,
                "opsgate_rpc_requests_total",
                &[("method", get), ("code", "NOT_FOUND")]
            ),
            Some(1.0)
        );
        let start_rpc = "opsgate.v1.TransitionService/StartTransition";
        assert_eq!(
            value(
                &parsed,
                "opsgate_rpc_requests_total",
                &[("method", start_rpc), ("code", "OK")]
            ),
            Some(1.0)
        );
        // The latency histogram of the three reads: cumulative buckets ending in their count.
        let buckets: Vec<(String, f64)> = text
            .lines()
            .filter(|l| {
                l.starts_with("opsgate_rpc_duration_seconds_bucket{")
                    && l.contains(get)
                    && l.contains("code=\"OK\"")
            })
            .map(|l| {
                let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
                (
                    le.to_owned(),
                    l.rsplit_once(' ').unwrap().1.parse().unwrap(),
                )
            })
            .collect();
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
        assert_eq!(buckets.last().unwrap(), &("+Inf".to_owned(), 3.0));
        assert!(text.contains(&format!(
            "opsgate_rpc_duration_seconds_count{{method=\"{get}\",code=\"OK\"}} 3"
        )));

        assert_eq!(
            value(
                &parsed,
                "opsgate_transitions",
                &[("workflow", "standard-transition"), ("status", "active")]
            ),
            Some(1.0)
        );
        assert!(value(&parsed, "opsgate_stalled_items", &[]).unwrap() >= 1.0);
        assert_eq!(
            value(&parsed, "opsgate_stalled_transitions", &[]),
            Some(1.0)
        );
        let oldest = value(&parsed, "opsgate_stalled_oldest_seconds", &[]).unwrap();
        assert!(oldest >= 8.0 * 86_400.0, "{oldest}");
        // At least the start (and the token) were committed in batches.
        assert!(value(&parsed, "opsgate_write_batch_size_count", &[]).unwrap() >= 1.0);
        // Those commits took time (and not more than the server has been up).
        let busy = value(&parsed, "opsgate_write_busy_seconds_total", &[]).unwrap();
        assert!(busy > 0.0 && busy < 60.0, "{busy}");
        // Split into its phases, which add up to it; a commit always takes some time.
        let phase = |name| {
            value(
                &parsed,
                "opsgate_write_phase_seconds_total",
                &[("phase", name)],
            )
        };
        let phases: Vec<f64> = ["decide", "write", "commit"]
            .into_iter()
            .map(|p| phase(p).unwrap_or_else(|| panic!("phase {p} missing\n{text}")))
            .collect();
        assert!(phases[2] > 0.0, "{phases:?}");
        let sum: f64 = phases.iter().sum();
        assert!((sum - busy).abs() < 1e-5, "{phases:?} against {busy}");

        // Authorized like the RPCs: this server takes tokens, so a scrape without one is refused.
        server.stop().await;
        let secure = TestServer::start_secure(&db, BOOTSTRAP).await;
        let refused = scrape(&secure, None).await;
        assert_eq!(refused.status(), 401);
        assert!(refused.headers().contains_key("www-authenticate"));
        let wrong = scrape(
            &secure,
            Some("og_0000000000000000000000000000000000000000000000000000000000000000"),
        )
        .await;
        assert_eq!(wrong.status(), 401);
        assert_eq!(scrape(&secure, Some(BOOTSTRAP)).await.status(), 200);
        let other = reqwest::get(format!("{}/nothing-here", secure.http_url))
            .await
            .unwrap();
        assert_eq!(other.status(), 404);
        secure.stop().await;
    }
}
