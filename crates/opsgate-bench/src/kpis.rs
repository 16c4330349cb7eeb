//! The SMO's reports at scale: `GetKpis` over a year of complete handovers (100,000 transitions by
//! default, each with its events and facts, written through the store on a clock that spreads
//! them over the year) and `ListStalled` on the same database, p50 and p99 of repeated calls
//! against a real `opsgate serve`, on SQLite and PostgreSQL.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use opsgate_domain::{
    Actor, Command, Evidence, Participants, ReviewDecision, RoleName, TransitionStatus,
};
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::audit_service_client::AuditServiceClient;
use opsgate_store::{Clock, ConnectOptions, NewTransition, Store};
use tonic::transport::Channel;

use crate::handover::{BenchDb, Server, acting};

/// The workflow of the seeded handovers: a, then b and c, then the gate.
const KPI_BENCH: &str = "\
name: kpibench
roles: {reviewer: {description: reviews everything}}
deliverables:
  - {id: a, title: A, owner: project_manager, approver: reviewer, effort: 2d}
  - {id: b, title: B, owner: project_manager, approver: reviewer, effort: 3d, needs: [a]}
  - {id: c, title: C, owner: project_manager, approver: reviewer, effort: 1d, needs: [a]}
gate: {id: gate, title: Gate, needs: [b, c]}
";
/// Writes one seeded handover makes on average (start, 3 submissions and approvals, a quarter
/// with a send-back and resubmission, the acceptance).
const WRITES_PER_HANDOVER: f64 = 8.5;
/// Calls timed per report.
const CALLS: usize = 30;

/// What the scenario is told.
pub struct Options {
    pub transitions: usize,
}

/// Stores `count` complete handovers through the store, their moments spread over the last year.
async fn seed(url: &str, count: usize) -> anyhow::Result<()> {
    let year = chrono::Duration::days(365);
    let start = Utc::now() - year;
    let ticks = Arc::new(AtomicU64::new(0));
    let expected = (count as f64 * WRITES_PER_HANDOVER).max(1.0);
    let step_ms = (year.num_milliseconds() as f64 / expected) as i64;
    let clock = {
        let ticks = ticks.clone();
        Clock::from_fn(move || {
            let n = ticks.fetch_add(1, Ordering::Relaxed) as i64;
            (start + chrono::Duration::milliseconds(n.saturating_mul(step_ms))).min(Utc::now())
        })
    };
    let mut options = ConnectOptions::new(url);
    options.state_cache_bytes = 64 * 1024 * 1024;
    options.clock = clock;
    let store = Store::connect(options).await?;
    let pat = Actor::parse("Pat")?;
    store
        .register_workflow("kpibench.yaml", KPI_BENCH, &pat)
        .await?;
    let reviewer = RoleName::parse("reviewer")?;
    let go_live = NaiveDate::from_ymd_opt(2099, 1, 1).ok_or_else(|| anyhow::anyhow!("date"))?;
    let began = Instant::now();
    let workers = 64;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let store = store.clone();
            let (pat, reviewer) = (pat.clone(), reviewer.clone());
            tokio::spawn(async move {
                let sam = Actor::parse("Sam")?;
                let evidence =
                    Evidence::parse(vec!["https://docs.example/x".into()], String::new())?;
                for n in (w..count).step_by(workers) {
                    let rae = Actor::parse(format!("reviewer {}", n % 20))?;
                    let view = store
                        .start_transition(
                            NewTransition {
                                workflow_name: "kpibench".into(),
                                workflow_version: None,
                                service_name: "kpi".into(),
                                service_version: format!("{n}"),
                                project_manager: pat.clone(),
                                service_manager: sam.clone(),
                                target_go_live: go_live,
                                participants: Participants::from([(
                                    reviewer.clone(),
                                    vec![rae.clone()],
                                )]),
                                allow_past_go_live: false,
                            },
                            pat.clone(),
                        )
                        .await?;
                    let id = view.id;
                    let submit = |node: &str| Command::Submit {
                        node: node.into(),
                        evidence: evidence.clone(),
                    };
                    let review = |node: &str, decision| Command::Review {
                        node: node.into(),
                        decision,
                        comment: "ok".into(),
                    };
                    for node in ["a", "b", "c"] {
                        store.execute(&id, submit(node), pat.clone()).await?;
                        if node == "a" && n % 4 == 0 {
                            let back = review(node, ReviewDecision::RequestChanges);
                            store.execute(&id, back, rae.clone()).await?;
                            store.execute(&id, submit(node), pat.clone()).await?;
                        }
                        let yes = review(node, ReviewDecision::Approve);
                        store.execute(&id, yes, rae.clone()).await?;
                    }
                    let accept = Command::AcceptHandover {
                        comment: String::new(),
                    };
                    let done = store.execute(&id, accept, sam.clone()).await?;
                    anyhow::ensure!(
                        done.state.status == TransitionStatus::Completed,
                        "seeded handover not completed"
                    );
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    crate::handover::settle_database(&store).await?;
    store.close().await?;
    let writes = ticks.load(Ordering::Relaxed);
    println!(
        "  seeded {count} complete handovers over the last year in {:.1} s ({} clock reads)",
        began.elapsed().as_secs_f64(),
        writes
    );
    Ok(())
}

/// p50 and p99 (with the max) of `CALLS` timed calls, in ms.
pub(crate) fn line(label: &str, mut took: Vec<f64>, note: &str) {
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "  {label:<44} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  ({} calls){note}",
        at(0.5),
        at(0.99),
        took[took.len() - 1],
        took.len()
    );
}

async fn reports(channel: Channel) -> anyhow::Result<()> {
    let mut audit = AuditServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let mut took = Vec::with_capacity(CALLS);
    let mut handovers = 0;
    for _ in 0..CALLS {
        let at = Instant::now();
        let k = audit
            .get_kpis(acting("bench smo", pb::GetKpisRequest::default()))
            .await?
            .into_inner();
        took.push(at.elapsed().as_secs_f64() * 1000.0);
        handovers = k.lead_time.map_or(0, |l| l.samples);
    }
    line(
        "GetKpis, the last year",
        took,
        &format!(", {handovers} handovers in it"),
    );
    let mut took = Vec::with_capacity(CALLS);
    let mut checked = 0;
    for _ in 0..CALLS {
        let at = Instant::now();
        let answer = audit
            .list_stalled(acting("bench smo", pb::ListStalledRequest::default()))
            .await?
            .into_inner();
        took.push(at.elapsed().as_secs_f64() * 1000.0);
        checked = answer.transitions_checked;
    }
    line(
        "ListStalled beside them",
        took,
        &format!(", {checked} candidates read"),
    );
    Ok(())
}

pub async fn run(
    backends: &[String],
    postgres_url: Option<&str>,
    options: &Options,
) -> anyhow::Result<()> {
    for backend in backends {
        println!(
            "SMO reports on {backend}: {} complete handovers over a year",
            options.transitions
        );
        let dir = tempfile::tempdir()?;
        let workflows: PathBuf = dir.path().join("workflows");
        std::fs::create_dir_all(&workflows)?;
        std::fs::write(workflows.join("kpibench.yaml"), KPI_BENCH)?;
        let db = BenchDb::create(backend, dir.path(), postgres_url).await?;
        seed(&db.url, options.transitions).await?;
        let server = Server::start(&db.url, &workflows, &dir.path().join("server.log")).await?;
        let channel = Channel::from_shared(server.url.clone())?.connect().await?;
        // The first call rolls up every past day's facts (once; later, a day at a time).
        let at = Instant::now();
        let _ = AuditServiceClient::new(channel.clone())
            .get_kpis(acting("bench smo", pb::GetKpisRequest::default()))
            .await?;
        println!(
            "  first GetKpis, rolling up the year's facts by day: {:.0} ms",
            at.elapsed().as_secs_f64() * 1000.0
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        reports(channel).await?;
        server.stop().await?;
        db.drop_it().await?;
    }
    Ok(())
}
