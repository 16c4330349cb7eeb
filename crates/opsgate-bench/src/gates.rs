//! Scenarios 2 and 3 of issue 4: gate checks at the highest rate on a database of many stored
//! transitions while handovers run at a fixed write rate, and the server's start-up time and
//! footprint on that database.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use opsgate_domain::{Actor, Participants, RoleName};
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::gate_service_client::GateServiceClient;
use opsgate_store::{ConnectOptions, NewTransition, Store};
use tonic::transport::Channel;

use crate::handover::{
    BenchDb, DIAMOND, Pace, Server, Tally, bearer_token, drive, handovers, health_checks,
};

/// What the scenario is told.
pub struct Options {
    pub transitions: usize,
    pub clients: usize,
    pub seconds: u64,
    /// Mutating calls per second of the background handover load.
    pub write_rate: u32,
}

/// Stores `count` transitions of the diamond workflow through the store itself (64 at a time, so
/// that SQLite commits them in groups) and returns their service versions.
async fn seed(url: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let mut options = ConnectOptions::new(url);
    options.state_cache_bytes = 0;
    let store = Store::connect(options).await?;
    let pat = Actor::parse("Pat")?;
    store
        .register_workflow("diamond.yaml", DIAMOND, &pat)
        .await?;
    let reviewer = Participants::from([(RoleName::parse("reviewer")?, vec![Actor::parse("Rae")?])]);
    let sam = Actor::parse("Sam")?;
    let go_live = chrono::NaiveDate::from_ymd_opt(2099, 1, 1).context("date")?;
    let started = Instant::now();
    let workers = 64;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let store = store.clone();
            let (pat, sam, reviewer) = (pat.clone(), sam.clone(), reviewer.clone());
            tokio::spawn(async move {
                let mut versions = Vec::new();
                for n in (w..count).step_by(workers) {
                    let version = format!("seed.{n}");
                    store
                        .start_transition(
                            NewTransition {
                                workflow_name: "diamond".into(),
                                workflow_version: None,
                                service_name: "seeded".into(),
                                service_version: version.clone(),
                                project_manager: pat.clone(),
                                service_manager: sam.clone(),
                                target_go_live: go_live,
                                participants: reviewer.clone(),
                                allow_past_go_live: false,
                            },
                            pat.clone(),
                        )
                        .await?;
                    versions.push(version);
                }
                Ok::<_, opsgate_store::Error>(versions)
            })
        })
        .collect();
    let mut versions = Vec::with_capacity(count);
    for t in tasks {
        versions.extend(t.await??);
    }
    crate::handover::settle_database(&store).await?;
    store.close().await?;
    println!(
        "  seeded {count} transitions in {:.1} s ({:.0}/s through the store)",
        started.elapsed().as_secs_f64(),
        count as f64 / started.elapsed().as_secs_f64()
    );
    Ok(versions)
}

/// xorshift64*: a cheap, per-client pick of which transition to check.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// One CI pipeline after another: `CheckGate` by service name and version, on random transitions.
async fn gate_checks(
    channel: Channel,
    versions: std::sync::Arc<Vec<String>>,
    client: usize,
    deadline: Instant,
    token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
) -> anyhow::Result<Tally> {
    let mut c = GateServiceClient::new(channel);
    let mut tally = Tally::new()?;
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ (client as u64 + 1);
    while Instant::now() < deadline {
        let pick = (next(&mut rng) % versions.len() as u64) as usize;
        let mut request = tonic::Request::new(pb::CheckGateRequest {
            target: Some(pb::check_gate_request::Target::Service(pb::ServiceRef {
                name: "seeded".into(),
                version: versions[pick].clone(),
            })),
        });
        if let Some(token) = &token {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        let t0 = Instant::now();
        let r = c.check_gate(request).await;
        tally.record(t0, r.is_ok());
    }
    Ok(tally)
}

/// One `curl` pipeline after another: `GET /api/v1/gates/{service}/{version}` over HTTP/1.1
/// keep-alive (one connection per client), on random transitions; a call counts when it
/// answered 200 with the decision's JSON read whole.
async fn http_gate_checks(
    base: String,
    versions: std::sync::Arc<Vec<String>>,
    client: usize,
    deadline: Instant,
) -> anyhow::Result<Tally> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()?;
    let mut tally = Tally::new()?;
    let mut rng = 0x51_7cc1_b727_220a_u64 ^ (client as u64 + 1);
    while Instant::now() < deadline {
        let pick = (next(&mut rng) % versions.len() as u64) as usize;
        let url = format!("{base}/api/v1/gates/seeded/{}", versions[pick]);
        let t0 = Instant::now();
        let ok = match http.get(&url).send().await {
            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        tally.record(t0, ok);
    }
    Ok(tally)
}

/// `ListStalled` over every stored transition, timed 30 times (one client, nothing else).
async fn stalled_list(channel: Channel) -> anyhow::Result<()> {
    let mut audit = opsgate_proto::v1::audit_service_client::AuditServiceClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024);
    let mut took = Vec::new();
    let mut rows = 0;
    let mut checked = 0;
    for _ in 0..30 {
        let at = Instant::now();
        let answer = audit
            .list_stalled(crate::handover::acting(
                "bench smo",
                pb::ListStalledRequest::default(),
            ))
            .await?
            .into_inner();
        took.push(at.elapsed().as_secs_f64() * 1000.0);
        rows = answer.items.len();
        checked = answer.transitions_checked;
    }
    crate::kpis::line(
        "ListStalled over the active transitions",
        took,
        &format!(", {checked} candidates read, {rows} rows"),
    );
    Ok(())
}

pub async fn run(
    backends: &[String],
    postgres_url: Option<&str>,
    options: &Options,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs(options.seconds);
    for backend in backends {
        println!(
            "gate checks on {backend}: {} stored transitions, {} checking clients, handovers at {} writes/s alongside ({} s)",
            options.transitions, options.clients, options.write_rate, options.seconds
        );
        let dir = tempfile::tempdir()?;
        let workflows: PathBuf = dir.path().join("workflows");
        std::fs::create_dir_all(&workflows)?;
        std::fs::write(workflows.join("diamond.yaml"), DIAMOND)?;
        let db = BenchDb::create(backend, dir.path(), postgres_url).await?;
        // Baseline: the same start-up on an empty database (migrations, then the workflows).
        let empty_start = {
            let server = Server::start(&db.url, &workflows, &dir.path().join("empty.log")).await?;
            let took = server.started_in;
            server.stop().await?;
            took
        };
        let versions = std::sync::Arc::new(seed(&db.url, options.transitions).await?);

        let (server, http_port) =
            Server::start_with_http(&db.url, &workflows, &dir.path().join("server.log"), &[])
                .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (idle, _, _) = server.usage()?;
        println!(
            "  start-up to serving on {} transitions: {:.0} ms (process spawn to first health answer; {:.0} ms on the empty database, {:.1}x); idle RSS {:.1} MiB",
            options.transitions,
            server.started_in.as_secs_f64() * 1000.0,
            empty_start.as_secs_f64() * 1000.0,
            server.started_in.as_secs_f64() / empty_start.as_secs_f64().max(1e-6),
            idle as f64 / 1024.0
        );

        let channel = Channel::from_shared(server.url.clone())?.connect().await?;
        let ch = channel.clone();
        let empty = drive(options.clients, duration, move |_, deadline| {
            health_checks(ch.clone(), deadline)
        })
        .await?;

        // The write load: 4 clients, each pacing its calls to a quarter of the rate.
        let writers = 4;
        let period = Duration::from_secs_f64(writers as f64 / f64::from(options.write_rate.max(1)));
        let ch = channel.clone();
        let writes = tokio::spawn(drive(writers, duration, move |i, deadline| {
            handovers(
                ch.clone(),
                99,
                i,
                deadline,
                Pace::every(period).staggered(i, writers),
                Default::default(),
            )
        }));
        let (_, _, cpu_before) = server.usage()?;
        let ch = channel.clone();
        let picked = versions.clone();
        let checks = drive(options.clients, duration, move |i, deadline| {
            gate_checks(ch.clone(), picked.clone(), i, deadline, None)
        })
        .await?;
        let (rss, peak, cpu_after) = server.usage()?;
        let writes = writes.await??;
        // The same checks with authentication on: each client with its own auditor's token.
        let mut tokens = Vec::with_capacity(options.clients);
        for i in 0..options.clients {
            let principal = format!("pipeline {i}");
            tokens.push(Some(
                bearer_token(channel.clone(), &principal, "auditor").await?,
            ));
        }
        let ch = channel.clone();
        let writes_again = tokio::spawn(drive(writers, duration, move |i, deadline| {
            handovers(
                ch.clone(),
                98,
                i,
                deadline,
                Pace::every(period).staggered(i, writers),
                Default::default(),
            )
        }));
        let ch = channel.clone();
        let picked = versions.clone();
        let authenticated = drive(options.clients, duration, move |i, deadline| {
            gate_checks(ch.clone(), picked.clone(), i, deadline, tokens[i].clone())
        })
        .await?;
        writes_again.await??;
        // The same checks as curl would make them: GET /api/v1/gates/... as JSON.
        let ch = channel.clone();
        let writes_http = tokio::spawn(drive(writers, duration, move |i, deadline| {
            handovers(
                ch.clone(),
                97,
                i,
                deadline,
                Pace::every(period).staggered(i, writers),
                Default::default(),
            )
        }));
        let base = format!("http://127.0.0.1:{http_port}");
        let picked = versions.clone();
        let http_checks = drive(options.clients, duration, move |i, deadline| {
            http_gate_checks(base.clone(), picked.clone(), i, deadline)
        })
        .await?;
        writes_http.await??;
        println!("{}", empty.line("baseline: empty gRPC call (health)"));
        println!("{}", checks.line("CheckGate by service version"));
        println!("{}", writes.line("alongside: handover writes"));
        println!(
            "    = {:.2} of the empty-call rate; server CPU {:.1} s over {:.1} s ({:.0}% of one core); RSS {:.1} MiB, peak {:.1} MiB",
            checks.rate() / empty.rate(),
            cpu_after - cpu_before,
            checks.elapsed.as_secs_f64(),
            100.0 * (cpu_after - cpu_before) / checks.elapsed.as_secs_f64(),
            rss as f64 / 1024.0,
            peak as f64 / 1024.0
        );
        println!("{}", authenticated.line("the same with a token per client"));
        println!(
            "    = {:.2} of the rate without authentication (the same writes alongside)",
            authenticated.rate() / checks.rate()
        );
        println!(
            "{}",
            http_checks.line("GET /api/v1/gates/SERVICE/VERSION (JSON)")
        );
        println!(
            "    = {:.2} of the CheckGate rate (gRPC, same run, the same writes alongside)",
            http_checks.rate() / checks.rate()
        );
        stalled_list(channel.clone()).await?;
        server.stop().await?;
        db.drop_it().await?;
    }
    Ok(())
}
