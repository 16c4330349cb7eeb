//! Scenario 1 with notifications on and off in one run: the same `opsgate serve` binary started
//! without notification channels, then with a webhook channel routed for every notice to a
//! receiver in this process on loopback; the handover load each time, the ratio printed, and
//! the delivery latency from each notice's event (decided just before its commit) to the
//! receiver's 2xx, p50 and p99.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use hdrhistogram::Histogram;
use tonic::transport::Channel;

use crate::handover::{
    BenchDb, Credentials, DIAMOND, Load, Pace, Server, WriterFigures, cpu_seconds, drive, handovers,
};

type Latencies = Arc<Mutex<Histogram<u64>>>;

/// The one field of an event the receiver reads: when its notice was made.
#[derive(serde::Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    data: EventData<'a>,
}

#[derive(serde::Deserialize)]
struct EventData<'a> {
    at: &'a str,
}

/// Records how long after its event each notice arrived (microseconds). It reads only what it
/// needs: the receiver shares the machine's two cores with the server, where a real one would
/// run elsewhere.
async fn receive(State(seen): State<Latencies>, body: axum::body::Bytes) -> StatusCode {
    let now = chrono::Utc::now();
    let at = serde_json::from_slice::<Event>(&body)
        .ok()
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e.data.at).ok());
    if let (Some(at), Ok(mut seen)) = (at, seen.lock()) {
        let us = (now - at.to_utc()).num_microseconds().unwrap_or(0).max(1);
        let _ = seen.record(u64::try_from(us).unwrap_or(1));
    }
    StatusCode::NO_CONTENT
}

async fn receiver() -> anyhow::Result<(String, Latencies)> {
    let seen: Latencies = Arc::new(Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, seen))
}

/// How to run the scenario.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub clients: usize,
    /// Seconds per measurement.
    pub seconds: u64,
    /// Mutating calls a second offered in all; 0: as many as the clients can make.
    pub rate: u32,
}

impl Options {
    /// Each client's pace: `rate` spread over the clients.
    fn pace(&self) -> Pace {
        if self.rate == 0 {
            Pace::none()
        } else {
            Pace::every(Duration::from_secs_f64(
                self.clients as f64 / f64::from(self.rate),
            ))
        }
    }
}

async fn load(server: &Server, options: &Options, run: usize) -> anyhow::Result<Load> {
    let channel = Channel::from_shared(server.url.clone())?.connect().await?;
    let options = *options;
    drive(
        options.clients,
        Duration::from_secs(options.seconds),
        move |i, deadline| {
            handovers(
                channel.clone(),
                run,
                i,
                deadline,
                options.pace().staggered(i, options.clients),
                Credentials::default(),
            )
        },
    )
    .await
}

/// The CPU seconds used so far by the server and by this process (the clients and the
/// receiver).
#[derive(Debug, Clone, Copy)]
struct CpuMark {
    server: f64,
    bench: f64,
}

impl CpuMark {
    fn take(server: &Server) -> anyhow::Result<Self> {
        let (_, _, used) = server.usage()?;
        Ok(Self {
            server: used,
            bench: cpu_seconds(&std::fs::read_to_string("/proc/self/stat")?),
        })
    }

    /// Microseconds of CPU a mutating call of `load` cost the server and this process since
    /// the mark.
    fn per_call(&self, server: &Server, load: &Load) -> anyhow::Result<(f64, f64)> {
        let now = Self::take(server)?;
        Ok((
            cpu_per_call(now.server - self.server, load),
            cpu_per_call(now.bench - self.bench, load),
        ))
    }
}

/// A server on `db`, with the notification config when given, and its writer's figures (read
/// from its `/metrics`).
async fn serve(
    db: &BenchDb,
    workflows: &Path,
    log: PathBuf,
    config: Option<&Path>,
) -> anyhow::Result<(Server, WriterFigures)> {
    let extra: Vec<String> = config
        .map(|c| vec!["--config".to_owned(), c.display().to_string()])
        .unwrap_or_default();
    let (server, http_port) = Server::start_with_http(&db.url, workflows, &log, &extra).await?;
    Ok((server, WriterFigures::new(http_port)?))
}

pub async fn run(
    backends: &[String],
    postgres_url: Option<&str>,
    options: &Options,
) -> anyhow::Result<()> {
    let Options {
        clients,
        seconds,
        rate,
    } = *options;
    let offered = if rate == 0 {
        String::new()
    } else {
        format!(", {rate} calls/s offered")
    };
    for backend in backends {
        println!(
            "notifications on {backend}: scenario 1 ({clients} clients, {seconds} s{offered}), without channels, then with a webhook for every notice"
        );
        let dir = tempfile::tempdir()?;
        let workflows = dir.path().join("workflows");
        std::fs::create_dir_all(&workflows)?;
        std::fs::write(workflows.join("diamond.yaml"), DIAMOND)?;
        let (url, seen) = receiver().await?;
        let config = dir.path().join("opsgate.toml");
        std::fs::write(
            &config,
            format!(
                "[notify]\nallow_loopback = true\n\n[[notify.channels]]\nname = \"bench\"\nkind = \"webhook\"\nurl = \"{url}\"\nsecrets = [\"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"]\nconcurrency = 32\n"
            ),
        )?;
        // Without channels ([0]) and with them ([1]).
        let mut modes = [Mode::default(), Mode::default()];
        // Alternate, so that a machine that speeds up or slows down favours neither.
        for round in 0..2 {
            for notify in [false, true] {
                let db = BenchDb::create(backend, dir.path(), postgres_url).await?;
                let log = dir.path().join(format!("server-{round}-{notify}.log"));
                let (server, writer) =
                    serve(&db, &workflows, log, notify.then_some(config.as_path())).await?;
                if let Ok(mut seen) = seen.lock() {
                    seen.reset();
                }
                let cpu_before = CpuMark::take(&server)?;
                let writer_before = writer.read().await?;
                let measured = load(&server, options, round * 2 + usize::from(notify)).await?;
                // What the writer did during the load (not the drain after it).
                let written = writer
                    .read()
                    .await?
                    .since(&writer_before, measured.elapsed, backend);
                if notify {
                    // Let the deliveries drain, then read their latencies.
                    let began = Instant::now();
                    let expected = measured_notices(&measured);
                    while seen.lock().map(|s| s.len()).unwrap_or(0) < expected
                        && began.elapsed() < Duration::from_secs(60)
                    {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    // The server's CPU over the load and the drain: what a call costs it
                    // with its notice delivered (steadier than the rate on a noisy machine).
                    let (per_call, bench_per_call) = cpu_before.per_call(&server, &measured)?;
                    let seen = seen
                        .lock()
                        .map_err(|_| anyhow::anyhow!("receiver poisoned"))?;
                    println!(
                        "{}\n    delivered {} notices (about {expected} expected); commit to receiver p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms; drained {:.1} s after the load; server CPU {per_call:.0} us a call (clients and receiver {bench_per_call:.0} us)\n    {written}",
                        measured.line("with a webhook for every notice"),
                        seen.len(),
                        seen.value_at_quantile(0.5) as f64 / 1000.0,
                        seen.value_at_quantile(0.99) as f64 / 1000.0,
                        seen.value_at_quantile(0.999) as f64 / 1000.0,
                        began.elapsed().as_secs_f64()
                    );
                    modes[1].record(&measured, per_call, bench_per_call);
                } else {
                    let (per_call, bench_per_call) = cpu_before.per_call(&server, &measured)?;
                    println!(
                        "{}\n    server CPU {per_call:.0} us a call (clients {bench_per_call:.0} us)\n    {written}",
                        measured.line("without notification channels")
                    );
                    modes[0].record(&measured, per_call, bench_per_call);
                }
                server.stop().await?;
                db.drop_it().await?;
            }
        }
        let [off, on] = [modes[0].means(), modes[1].means()];
        println!(
            "  = with notifications {:.2} of without ({:.0}/s against {:.0}/s, means of 2)",
            on.rate / off.rate.max(1e-9),
            on.rate,
            off.rate
        );
        println!(
            "  = server CPU a call: {:.0} us with, {:.0} us without ({:.2}x)",
            on.server_cpu,
            off.server_cpu,
            on.server_cpu / off.server_cpu.max(1e-9)
        );
        println!(
            "  = a delivery costs the server {:.0} us of CPU and the receiver (with the clients) {:.0} us",
            on.server_cpu - off.server_cpu,
            on.bench_cpu - off.bench_cpu
        );
    }
    Ok(())
}

/// What one mode (with or without channels) measured: a point a round.
#[derive(Debug, Clone, Default)]
struct Mode {
    points: Vec<Means>,
}

/// Mutating calls a second, and microseconds of CPU a call: the server's, and the bench's (the
/// clients and the receiver).
#[derive(Debug, Clone, Copy, Default)]
struct Means {
    rate: f64,
    server_cpu: f64,
    bench_cpu: f64,
}

impl Mode {
    fn record(&mut self, load: &Load, server_cpu: f64, bench_cpu: f64) {
        self.points.push(Means {
            rate: load.rate(),
            server_cpu,
            bench_cpu,
        });
    }

    fn means(&self) -> Means {
        let n = self.points.len().max(1) as f64;
        let mean = |f: fn(&Means) -> f64| self.points.iter().map(f).sum::<f64>() / n;
        Means {
            rate: mean(|p| p.rate),
            server_cpu: mean(|p| p.server_cpu),
            bench_cpu: mean(|p| p.bench_cpu),
        }
    }
}

/// Microseconds of server CPU per mutating call of `load`.
fn cpu_per_call(cpu_seconds: f64, load: &Load) -> f64 {
    cpu_seconds * 1e6 / (load.calls().max(1) as f64)
}

/// Notices one diamond handover makes: the first deliverable unlocked at the start, each of the
/// 7 submitted, 6 more unlocked, the gate open, the acceptance: 16 for 16 mutating calls, so
/// about one a call.
fn measured_notices(load: &Load) -> u64 {
    load.calls()
}
