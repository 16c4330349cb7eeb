//! Scenario 1 of issue 4, handover throughput: many transitions of a diamond workflow driven
//! through submit, approve and accept by concurrent clients against a real `opsgate serve`
//! process, with two baselines measured in the same run (an empty gRPC call on the same server,
//! and a bare single-row insert transaction on the same database with the same durability).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::transition_service_client::TransitionServiceClient;
use sea_orm::{
    ConnectionTrait, DbBackend, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use tonic::transport::Channel;

/// d1 -> d2, d3, d4 in parallel -> d5 -> d6 -> d7 -> the gate.
pub(crate) const DIAMOND: &str = "\
name: diamond
roles: {reviewer: {description: reviews everything}}
deliverables:
  - {id: d1, title: D1, owner: project_manager, approver: reviewer}
  - {id: d2, title: D2, owner: project_manager, approver: reviewer, needs: [d1]}
  - {id: d3, title: D3, owner: project_manager, approver: reviewer, needs: [d1]}
  - {id: d4, title: D4, owner: project_manager, approver: reviewer, needs: [d1]}
  - {id: d5, title: D5, owner: project_manager, approver: reviewer, needs: [d2, d3, d4]}
  - {id: d6, title: D6, owner: project_manager, approver: reviewer, needs: [d5]}
  - {id: d7, title: D7, owner: project_manager, approver: reviewer, needs: [d6]}
gate: {id: gate, title: Gate, needs: [d7]}
";
const DELIVERABLES: [&str; 7] = ["d1", "d2", "d3", "d4", "d5", "d6", "d7"];

/// Figures of one measured load.
pub(crate) struct Load {
    calls: u64,
    errors: u64,
    pub(crate) elapsed: Duration,
    latency_us: Histogram<u64>,
}

impl Load {
    pub(crate) fn calls(&self) -> u64 {
        self.calls
    }

    pub(crate) fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn line(&self, label: &str) -> String {
        let ms = |q: f64| self.latency_us.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "  {label:<34} {:>8.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  p99.9 {:>6.2} ms  ({} calls, {} errors)",
            self.rate(),
            ms(0.5),
            ms(0.99),
            ms(0.999),
            self.calls,
            self.errors
        )
    }
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

/// Runs `clients` tasks of `body` until `duration` has passed and merges what they measured.
pub(crate) async fn drive<F, Fut>(
    clients: usize,
    duration: Duration,
    body: F,
) -> anyhow::Result<Load>
where
    F: Fn(usize, Instant) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Tally>> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|i| tokio::spawn(body(i, deadline)))
        .collect();
    let mut load = Load {
        calls: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency_us: histogram()?,
    };
    for t in tasks {
        let tally = t.await??;
        load.calls += tally.calls;
        load.errors += tally.errors;
        load.latency_us.add(&tally.latency_us)?;
    }
    load.elapsed = started.elapsed();
    Ok(load)
}

/// What one client measured: calls made, calls that failed, and their latencies.
pub(crate) struct Tally {
    calls: u64,
    errors: u64,
    latency_us: Histogram<u64>,
}

impl Tally {
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Self {
            calls: 0,
            errors: 0,
            latency_us: histogram()?,
        })
    }

    /// The figures of this one client over `elapsed`.
    pub(crate) fn load(self, elapsed: Duration) -> Load {
        Load {
            calls: self.calls,
            errors: self.errors,
            elapsed,
            latency_us: self.latency_us,
        }
    }

    /// Records one call that started at `since`.
    pub(crate) fn record(&mut self, since: Instant, ok: bool) {
        let us = u64::try_from(since.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = self.latency_us.record(us);
        self.calls += 1;
        self.errors += u64::from(!ok);
    }
}

/// Spaces one client's calls `every` apart; no spacing without a period.
pub(crate) struct Pace {
    every: Option<Duration>,
    next: Instant,
}

impl Pace {
    pub(crate) fn none() -> Self {
        Self {
            every: None,
            next: Instant::now(),
        }
    }

    pub(crate) fn every(period: Duration) -> Self {
        Self {
            every: Some(period),
            next: Instant::now(),
        }
    }

    /// The pace of client `i` of `of`: its calls fall `i / of` of a period after the first
    /// client's, so that paced clients spread their calls over the period instead of all
    /// calling at the same instant (a burst of `of` calls, then nothing).
    pub(crate) fn staggered(mut self, i: usize, of: usize) -> Self {
        if let Some(every) = self.every
            && of > 0
        {
            self.next += every.mul_f64(i as f64 / of as f64);
        }
        self
    }

    async fn wait(&mut self) {
        if let Some(every) = self.every {
            self.next += every;
            tokio::time::sleep_until(self.next.into()).await;
        }
    }
}

pub(crate) fn acting<T>(who: &'static str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "x-opsgate-actor",
        tonic::metadata::MetadataValue::from_static(who),
    );
    request
}

/// The bootstrap token of every benchmark server (role smo): it creates the clients' tokens.
pub(crate) const BENCH_BOOTSTRAP: &str =
    "og_b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

/// A new token for `principal` with `role`, made with the bootstrap token, as the value of an
/// `authorization` header.
pub(crate) async fn bearer_token(
    channel: Channel,
    principal: &str,
    role: &str,
) -> anyhow::Result<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> {
    let mut identity =
        opsgate_proto::v1::identity_service_client::IdentityServiceClient::new(channel);
    let mut request = tonic::Request::new(pb::CreateTokenRequest {
        principal: principal.into(),
        roles: vec![role.into()],
        expires_in_days: 1,
        description: "opsgate-bench".into(),
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {BENCH_BOOTSTRAP}").parse()?,
    );
    let token = identity.create_token(request).await?.into_inner().token;
    Ok(format!("Bearer {token}").parse()?)
}

/// How a client's calls say who acts: the development server's actor metadata, or one API
/// token per person (what a secure server needs).
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    tokens: Option<
        std::collections::HashMap<
            &'static str,
            tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
        >,
    >,
}

impl Credentials {
    /// Tokens for Pat, Rae and Sam, created for this client with the bootstrap token.
    pub(crate) async fn tokens(channel: Channel) -> anyhow::Result<Self> {
        let mut tokens = std::collections::HashMap::new();
        for (who, role) in [
            ("Pat", "project_manager"),
            ("Rae", "approver"),
            ("Sam", "service_manager"),
        ] {
            tokens.insert(who, bearer_token(channel.clone(), who, role).await?);
        }
        Ok(Self {
            tokens: Some(tokens),
        })
    }

    pub(crate) fn request<T>(&self, who: &'static str, message: T) -> tonic::Request<T> {
        match self.tokens.as_ref().and_then(|t| t.get(who)) {
            Some(token) => {
                let mut request = tonic::Request::new(message);
                request
                    .metadata_mut()
                    .insert("authorization", token.clone());
                request
            }
            None => acting(who, message),
        }
    }
}

/// One client: transitions from start to accepted handover, 16 mutating calls each.
pub(crate) async fn handovers(
    channel: Channel,
    run: usize,
    client: usize,
    deadline: Instant,
    mut pace: Pace,
    credentials: Credentials,
) -> anyhow::Result<Tally> {
    let mut c = TransitionServiceClient::new(channel);
    let mut tally = Tally::new()?;
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let t0 = Instant::now();
        let started = c
            .start_transition(credentials.request(
                "Pat",
                pb::StartTransitionRequest {
                    workflow_name: "diamond".into(),
                    service_name: "bench".into(),
                    service_version: format!("{run}.{client}.{n}"),
                    project_manager: "Pat".into(),
                    service_manager: "Sam".into(),
                    target_go_live: "2099-01-01".into(),
                    participants: vec![pb::Participant {
                        role: "reviewer".into(),
                        people: vec!["Rae".into()],
                    }],
                    ..Default::default()
                },
            ))
            .await;
        tally.record(t0, started.is_ok());
        pace.wait().await;
        let started = match started {
            Ok(s) => s,
            Err(status) => {
                if tally.errors == 1 {
                    eprintln!(
                        "    first error of client {client}: {:?}: {}",
                        status.code(),
                        status.message()
                    );
                }
                continue;
            }
        };
        let id = started
            .into_inner()
            .transition
            .map(|t| t.id)
            .unwrap_or_default();
        for d in DELIVERABLES {
            let t0 = Instant::now();
            let r = c
                .submit_deliverable(credentials.request(
                    "Pat",
                    pb::SubmitDeliverableRequest {
                        transition_id: id.clone(),
                        deliverable_id: d.into(),
                        evidence: Some(pb::Evidence {
                            links: vec!["https://x".into()],
                            ..Default::default()
                        }),
                    },
                ))
                .await;
            tally.record(t0, r.is_ok());
            pace.wait().await;
            let t0 = Instant::now();
            let r = c
                .review_deliverable(credentials.request(
                    "Rae",
                    pb::ReviewDeliverableRequest {
                        transition_id: id.clone(),
                        deliverable_id: d.into(),
                        decision: pb::ReviewDecision::Approve.into(),
                        comment: String::new(),
                    },
                ))
                .await;
            tally.record(t0, r.is_ok());
            pace.wait().await;
        }
        let t0 = Instant::now();
        let r = c
            .accept_handover(credentials.request(
                "Sam",
                pb::AcceptHandoverRequest {
                    transition_id: id,
                    comment: String::new(),
                },
            ))
            .await;
        tally.record(t0, r.is_ok());
        pace.wait().await;
    }
    Ok(tally)
}

/// One client of the empty-call baseline: the standard health check on the same server.
pub(crate) async fn health_checks(channel: Channel, deadline: Instant) -> anyhow::Result<Tally> {
    let mut c = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut tally = Tally::new()?;
    while Instant::now() < deadline {
        let t0 = Instant::now();
        let r = c
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await;
        tally.record(t0, r.is_ok());
    }
    Ok(tally)
}

/// The bare-insert baseline: one single-row insert transaction per call, same database and durability.
async fn bare_inserts(url: &str, clients: usize, duration: Duration) -> anyhow::Result<Load> {
    let store = opsgate_store::Store::connect(opsgate_store::ConnectOptions::new(url)).await?;
    let db = store.connection().clone();
    db.execute_unprepared(
        "CREATE TABLE IF NOT EXISTS bench_insert (n BIGINT NOT NULL, payload TEXT NOT NULL)",
    )
    .await?;
    let sqlite = db.get_database_backend() == DbBackend::Sqlite;
    let load = drive(clients, duration, move |i, deadline| {
        let db = db.clone();
        async move {
            let mut tally = Tally::new()?;
            let options = TransactionOptions {
                sqlite_transaction_mode: sqlite.then_some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            };
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let r: anyhow::Result<()> = async {
                    let txn = db.begin_with_options(options).await?;
                    txn.execute_unprepared(&format!(
                        "INSERT INTO bench_insert (n, payload) VALUES ({i}, 'x')"
                    ))
                    .await?;
                    txn.commit().await?;
                    Ok(())
                }
                .await;
                tally.record(t0, r.is_ok());
            }
            Ok(tally)
        }
    })
    .await?;
    store.close().await?;
    Ok(load)
}

/// A running `opsgate serve` child process.
pub(crate) struct Server {
    child: tokio::process::Child,
    pid: u32,
    pub(crate) url: String,
    /// From spawning the process to its first answered health check.
    pub(crate) started_in: Duration,
}

impl Server {
    pub(crate) async fn start(db_url: &str, workflows: &Path, log: &Path) -> anyhow::Result<Self> {
        Self::start_with(db_url, workflows, log, &[]).await
    }

    /// [`Server::start_with`] with its HTTP listener (`--http`) on a free loopback port too,
    /// returned beside it.
    pub(crate) async fn start_with_http(
        db_url: &str,
        workflows: &Path,
        log: &Path,
        extra: &[String],
    ) -> anyhow::Result<(Self, u16)> {
        let http_port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut args = vec!["--http".to_owned(), format!("127.0.0.1:{http_port}")];
        args.extend_from_slice(extra);
        let server = Self::start_with(db_url, workflows, log, &args).await?;
        Ok((server, http_port))
    }

    /// [`Server::start`] with more arguments for `opsgate serve`.
    pub(crate) async fn start_with(
        db_url: &str,
        workflows: &Path,
        log: &Path,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?.with_file_name("opsgate");
        if !exe.exists() {
            bail!(
                "{} not found: build it with `cargo build --release -p opsgate-cli` (make bench does)",
                exe.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let spawned = Instant::now();
        let child = tokio::process::Command::new(&exe)
            // Development mode (calls without a token name their actor) and a bootstrap token:
            // the same server is measured without authentication and with a token per client.
            .env("OPSGATE_BOOTSTRAP_TOKEN", BENCH_BOOTSTRAP)
            .args([
                "serve",
                "--insecure-dev",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                db_url,
                "--workflows",
            ])
            .arg(workflows)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().context("server exited at once")?;
        let url = format!("http://127.0.0.1:{port}");
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(ch) = Channel::from_shared(url.clone())?.connect().await {
                let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
                if h.check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .is_ok()
                {
                    break;
                }
            }
            if Instant::now() > until {
                bail!("server did not become ready; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(Self {
            child,
            pid,
            url,
            started_in: spawned.elapsed(),
        })
    }

    /// (resident KiB now, peak resident KiB, CPU seconds so far)
    pub(crate) fn usage(&self) -> anyhow::Result<(u64, u64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        Ok((kib("VmRSS:"), kib("VmHWM:"), cpu_seconds(&stat)))
    }

    /// Bytes the server has passed to write(2) and friends so far (`wchar` of /proc/PID/io):
    /// its database writes and its network answers.
    pub(crate) fn written(&self) -> anyhow::Result<u64> {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.pid))?;
        Ok(io
            .lines()
            .find_map(|l| l.strip_prefix("wchar:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0))
    }

    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await??;
        Ok(())
    }
}

/// A database for one backend, dropped afterwards on PostgreSQL.
pub(crate) struct BenchDb {
    pub(crate) url: String,
    postgres: Option<(String, String)>,
}

impl BenchDb {
    pub(crate) async fn create(
        backend: &str,
        dir: &Path,
        postgres_url: Option<&str>,
    ) -> anyhow::Result<Self> {
        match backend {
            "sqlite" => Ok(Self {
                url: format!("sqlite://{}", dir.join("bench.db").display()),
                postgres: None,
            }),
            _ => {
                let admin = postgres_url.context(
                    "--postgres-url (or OPSGATE_TEST_POSTGRES_URL) is needed for postgres",
                )?;
                let name = format!("opsgate_bench_{}", uuid::Uuid::now_v7().simple());
                let conn = sea_orm::Database::connect(admin).await?;
                conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await?;
                conn.close().await?;
                let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
                Ok(Self {
                    url: format!("{base}/{name}"),
                    postgres: Some((admin.to_owned(), name)),
                })
            }
        }
    }

    pub(crate) async fn drop_it(self) -> anyhow::Result<()> {
        if let Some((admin, name)) = self.postgres {
            let conn = sea_orm::Database::connect(&admin).await?;
            conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            conn.close().await?;
        }
        Ok(())
    }
}

pub async fn run(
    backends: &[String],
    clients: &[usize],
    seconds: u64,
    postgres_url: Option<&str>,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs(seconds);
    for backend in backends {
        let dir = tempfile::tempdir()?;
        let workflows: PathBuf = dir.path().join("workflows");
        std::fs::create_dir_all(&workflows)?;
        std::fs::write(workflows.join("diamond.yaml"), DIAMOND)?;
        let db = BenchDb::create(backend, dir.path(), postgres_url).await?;
        // The bare-insert baseline first, on the same database, before the server owns it.
        let mut inserts = Vec::new();
        for &n in clients {
            inserts.push(bare_inserts(&db.url, n, duration).await?);
        }
        // With its metrics listener, to read how busy its writer was in each load.
        let (server, http_port) =
            Server::start_with_http(&db.url, &workflows, &dir.path().join("server.log"), &[])
                .await?;
        let writer = WriterFigures::new(http_port)?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (idle_rss, _, _) = server.usage()?;
        println!(
            "handover throughput on {backend} ({seconds} s per measurement, diamond of 7 deliverables, 16 mutating calls per transition)"
        );
        println!("  server idle RSS {:.1} MiB", idle_rss as f64 / 1024.0);
        for (run, &n) in clients.iter().enumerate() {
            let channel = Channel::from_shared(server.url.clone())?.connect().await?;
            let ch = channel.clone();
            let empty = drive(n, duration, move |_, deadline| {
                health_checks(ch.clone(), deadline)
            })
            .await?;
            let (_, _, cpu_before) = server.usage()?;
            let writer_before = writer.read().await?;
            let ch = channel.clone();
            let load = drive(n, duration, move |i, deadline| {
                handovers(
                    ch.clone(),
                    run,
                    i,
                    deadline,
                    Pace::none(),
                    Credentials::default(),
                )
            })
            .await?;
            let (rss, _, cpu_after) = server.usage()?;
            let written = writer
                .read()
                .await?
                .since(&writer_before, load.elapsed, backend);
            // The same load with authentication on: each client with its own tokens.
            let mut credentials = Vec::with_capacity(n);
            for _ in 0..n {
                credentials.push(Credentials::tokens(channel.clone()).await?);
            }
            let ch = channel.clone();
            let (_, _, cpu_auth_before) = server.usage()?;
            let authenticated = drive(n, duration, move |i, deadline| {
                handovers(
                    ch.clone(),
                    run + 1000,
                    i,
                    deadline,
                    Pace::none(),
                    credentials[i].clone(),
                )
            })
            .await?;
            let (_, _, cpu_auth_after) = server.usage()?;
            let insert = &inserts[run];
            println!("  {n} clients:");
            println!("{}", empty.line("baseline: empty gRPC call (health)"));
            println!("{}", insert.line("baseline: bare insert transaction"));
            println!(
                "{}",
                load.line("mutating calls (start/submit/approve/accept)")
            );
            println!(
                "    = {:.2} of the empty-call rate, {:.2} of the bare-insert rate; server CPU {:.1} s over {:.1} s ({:.0}% of one core); RSS {:.1} MiB",
                load.rate() / empty.rate(),
                load.rate() / insert.rate(),
                cpu_after - cpu_before,
                load.elapsed.as_secs_f64(),
                100.0 * (cpu_after - cpu_before) / load.elapsed.as_secs_f64(),
                rss as f64 / 1024.0
            );
            println!("    {written}");
            println!("{}", authenticated.line("the same with a token per client"));
            println!(
                "    = {:.2} of the rate without authentication; server CPU {:.1} s ({:.0}% of one core)",
                authenticated.rate() / load.rate(),
                cpu_auth_after - cpu_auth_before,
                100.0 * (cpu_auth_after - cpu_auth_before) / authenticated.elapsed.as_secs_f64()
            );
        }
        let (_, peak, cpu) = server.usage()?;
        server.stop().await?;
        println!(
            "  server peak RSS {:.1} MiB, CPU {:.1} s in all",
            peak as f64 / 1024.0,
            cpu
        );
        db.drop_it().await?;
    }
    Ok(())
}

/// The server's write figures from its `/metrics`: how busy its writer was and how many writes
/// each committed batch carried (on SQLite: is the one writer the limit?).
pub(crate) struct WriterFigures {
    http: reqwest::Client,
    url: String,
}

/// `opsgate_write_busy_seconds_total` and the batch size histogram's sum and count at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WriterReading {
    busy_seconds: f64,
    /// Seconds in each of [`opsgate_store::WRITE_PHASES`].
    phases: [f64; opsgate_store::WRITE_PHASES.len()],
    writes: f64,
    batches: f64,
}

impl WriterFigures {
    pub(crate) fn new(http_port: u16) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().build()?,
            url: format!("http://127.0.0.1:{http_port}/metrics"),
        })
    }

    pub(crate) async fn read(&self) -> anyhow::Result<WriterReading> {
        let text = self
            .http
            .get(&self.url)
            .bearer_auth(BENCH_BOOTSTRAP)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let value = |name: &str| -> anyhow::Result<f64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .with_context(|| format!("{name} missing from /metrics"))?
                .trim()
                .parse::<f64>()
                .with_context(|| format!("{name} is not a number"))
        };
        let mut phases = [0.0; opsgate_store::WRITE_PHASES.len()];
        for (seconds, phase) in phases.iter_mut().zip(opsgate_store::WRITE_PHASES) {
            *seconds = value(&format!(
                "opsgate_write_phase_seconds_total{{phase=\"{phase}\"}}"
            ))?;
        }
        Ok(WriterReading {
            busy_seconds: value("opsgate_write_busy_seconds_total")?,
            phases,
            writes: value("opsgate_write_batch_size_sum")?,
            batches: value("opsgate_write_batch_size_count")?,
        })
    }
}

impl WriterReading {
    /// What happened between `before` and this reading, over `elapsed`. On SQLite the busy time
    /// is its one writer's; on PostgreSQL writes overlap and their times add up beyond 100%.
    pub(crate) fn since(&self, before: &Self, elapsed: Duration, backend: &str) -> String {
        let batches = self.batches - before.batches;
        let who = if backend == "sqlite" {
            "writer busy"
        } else {
            "write transactions open (summed)"
        };
        let phases: Vec<String> = opsgate_store::WRITE_PHASES
            .iter()
            .zip(self.phases.iter().zip(before.phases))
            .map(|(name, (after, before))| {
                format!("{name} {:.2}", 1000.0 * (after - before) / batches.max(1.0))
            })
            .collect();
        format!(
            "{who} {:.0}% of the time, {:.1} writes a batch, {:.2} ms a batch ({})",
            100.0 * (self.busy_seconds - before.busy_seconds) / elapsed.as_secs_f64(),
            (self.writes - before.writes) / batches.max(1.0),
            1000.0 * (self.busy_seconds - before.busy_seconds) / batches.max(1.0),
            phases.join(", ")
        )
    }
}

/// After a bulk load, what PostgreSQL's autovacuum does within a minute or so: drop the dead row
/// versions the load's updates left and gather statistics, so that the measurement sees the
/// database as it runs day to day (index scans would otherwise wade through every superseded
/// version of every row). SQLite needs nothing.
pub(crate) async fn settle_database(store: &opsgate_store::Store) -> anyhow::Result<()> {
    if store.backend() == sea_orm::DbBackend::Postgres {
        let at = Instant::now();
        store
            .connection()
            .execute_unprepared("VACUUM ANALYZE")
            .await?;
        println!(
            "  VACUUM ANALYZE after the load: {:.1} s",
            at.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The CPU seconds (user and system) a `/proc/PID/stat` text gives.
pub(crate) fn cpu_seconds(stat: &str) -> f64 {
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of /proc/PID/stat; here 0-based after the name and state.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    ticks as f64 / 100.0
}
