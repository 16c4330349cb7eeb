//! Crash safety: `opsgate serve` is killed with SIGKILL at random moments while clients start,
//! submit, approve and accept; after each restart every acknowledged mutation is still there and
//! every event log replays to exactly the stored state (nothing half-applied).
//!
//! `make test` runs a few kills per database; `make soak` runs `OPSGATE_CRASH_KILLS` (25) of them.
//! The random schedule's seed is printed; set `OPSGATE_CRASH_SEED` to replay it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opsgate_proto::v1 as pb;
use opsgate_proto::v1::transition_service_client::TransitionServiceClient;
use opsgate_store::{ConnectOptions, Store};
use opsgate_tests::{TestDb, acting};

/// The one person named for the crash workflow's reviewer role.
const REVIEWER: &str = "Rae";
use tokio::process::Child;
use tokio::sync::watch;
use tonic::transport::Channel;

const WORKFLOW: &str = "\
name: crash
roles: {reviewer: {description: reviews everything}}
deliverables:
  - {id: d1, title: D1, owner: project_manager, approver: reviewer}
  - {id: d2, title: D2, owner: project_manager, approver: reviewer, needs: [d1]}
  - {id: d3, title: D3, owner: project_manager, approver: reviewer, needs: [d1]}
  - {id: d4, title: D4, owner: project_manager, approver: reviewer, needs: [d2, d3]}
gate: {id: gate, title: Gate, needs: [d4]}
";
const CLIENTS: usize = 4;

/// xorshift64*: enough randomness for a kill schedule, and replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// Starts `opsgate serve` on port 0 and returns it with the address it logged.
async fn serve(database_url: &str, workflows: &Path) -> (Child, String) {
    opsgate_tests::spawn_serve(
        env!("CARGO_BIN_EXE_opsgate"),
        &[
            "--insecure-dev".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--database-url".as_ref(),
            database_url.as_ref(),
            "--workflows".as_ref(),
            workflows.as_os_str(),
        ],
    )
    .await
}

/// The next call that moves `t` towards an accepted handover; `None` once accepted.
enum Step {
    Submit(String),
    Approve(String),
    Accept,
}

fn next_step(t: &pb::Transition) -> Option<Step> {
    if t.status != pb::TransitionStatus::Active as i32 {
        return None;
    }
    for n in &t.nodes {
        match pb::NodeStatus::try_from(n.status) {
            Ok(pb::NodeStatus::Open) if n.kind == pb::NodeKind::Deliverable as i32 => {
                return Some(Step::Submit(n.id.clone()));
            }
            Ok(pb::NodeStatus::Submitted) => return Some(Step::Approve(n.id.clone())),
            _ => {}
        }
    }
    Some(Step::Accept)
}

/// What the clients were told: the highest event count acknowledged per transition.
type Acked = Arc<Mutex<HashMap<String, u64>>>;

fn ack(acked: &Acked, t: &pb::Transition) {
    let mut acked = acked.lock().unwrap();
    let seen = acked.entry(t.id.clone()).or_default();
    *seen = (*seen).max(t.event_count);
}

/// One client: handovers from start to acceptance, carrying on across server deaths. A call that
/// fails has an unknown outcome; the client reads the state again and decides from there.
async fn client(
    n: usize,
    mut url: watch::Receiver<String>,
    stop: Arc<AtomicBool>,
    acked: Acked,
    calls: Arc<AtomicU64>,
) {
    let mut c: Option<TransitionServiceClient<Channel>> = None;
    let mut current: Option<pb::Transition> = None;
    let mut round = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let Some(conn) = c.as_mut() else {
            let target = url.borrow_and_update().clone();
            match Channel::from_shared(target).unwrap().connect().await {
                Ok(ch) => c = Some(TransitionServiceClient::new(ch)),
                Err(_) => {
                    let _ = tokio::time::timeout(Duration::from_millis(50), url.changed()).await;
                }
            }
            continue;
        };
        let result = match &current {
            None => {
                round += 1;
                conn.start_transition(acting(
                    "Pat",
                    pb::StartTransitionRequest {
                        workflow_name: "crash".into(),
                        service_name: format!("crash-{n}"),
                        service_version: round.to_string(),
                        project_manager: "Pat".into(),
                        service_manager: "Sam".into(),
                        target_go_live: "2099-01-01".into(),
                        participants: vec![pb::Participant {
                            role: "reviewer".into(),
                            people: vec![REVIEWER.into()],
                        }],
                        ..Default::default()
                    },
                ))
                .await
                .map(|r| r.into_inner().transition)
            }
            Some(t) => match next_step(t) {
                None => {
                    current = None;
                    continue;
                }
                Some(Step::Submit(d)) => conn
                    .submit_deliverable(acting(
                        "Pat",
                        pb::SubmitDeliverableRequest {
                            transition_id: t.id.clone(),
                            deliverable_id: d,
                            evidence: Some(pb::Evidence {
                                links: vec!["https://x".into()],
                                ..Default::default()
                            }),
                        },
                    ))
                    .await
                    .map(|r| r.into_inner().transition),
                Some(Step::Approve(d)) => conn
                    .review_deliverable(acting(
                        "Rae",
                        pb::ReviewDeliverableRequest {
                            transition_id: t.id.clone(),
                            deliverable_id: d,
                            decision: pb::ReviewDecision::Approve.into(),
                            comment: String::new(),
                        },
                    ))
                    .await
                    .map(|r| r.into_inner().transition),
                Some(Step::Accept) => conn
                    .accept_handover(acting(
                        "Sam",
                        pb::AcceptHandoverRequest {
                            transition_id: t.id.clone(),
                            comment: String::new(),
                        },
                    ))
                    .await
                    .map(|r| r.into_inner().transition),
            },
        };
        match result {
            Ok(Some(t)) => {
                calls.fetch_add(1, Ordering::SeqCst);
                ack(&acked, &t);
                current = Some(t);
            }
            Ok(None) => panic!("a response without its transition"),
            Err(status) => {
                // Unknown outcome. Reconnect (the server may have moved), then re-read the state.
                c = None;
                let _ = tokio::time::timeout(Duration::from_millis(50), url.changed()).await;
                current = resync(&url, n, round, current.take(), &status).await;
            }
        }
    }
}

/// After a failed call: the stored state of the transition being driven (found by its service
/// version when the failed call was its start), or `None` when it was never started.
async fn resync(
    url: &watch::Receiver<String>,
    n: usize,
    round: u64,
    current: Option<pb::Transition>,
    status: &tonic::Status,
) -> Option<pb::Transition> {
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ),
        "a call failed for a reason other than the crash: {status:?}"
    );
    for _ in 0..600 {
        let target = url.borrow().clone();
        if let Ok(ch) = Channel::from_shared(target).unwrap().connect().await {
            let mut gates = pb::gate_service_client::GateServiceClient::new(ch.clone());
            let id = match &current {
                Some(t) => Some(t.id.clone()),
                None => match gates
                    .check_gate(pb::CheckGateRequest {
                        target: Some(pb::check_gate_request::Target::Service(pb::ServiceRef {
                            name: format!("crash-{n}"),
                            version: round.to_string(),
                        })),
                    })
                    .await
                {
                    Ok(r) => Some(r.into_inner().transition_id),
                    Err(s) if s.code() == tonic::Code::NotFound => return None,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let id = id?;
            if let Ok(r) = TransitionServiceClient::new(ch)
                .get_transition(pb::GetTransitionRequest { transition_id: id })
                .await
            {
                return r.into_inner().transition;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not come back within 30 s");
}

/// Every acknowledged mutation is stored, and every event log replays to the stored state.
/// Returns how many transitions it checked.
async fn verify(database_url: &str, acked: &Acked) -> usize {
    let store = Store::connect(ConnectOptions::new(database_url))
        .await
        .unwrap();
    let acked = acked.lock().unwrap().clone();
    for (id, count) in &acked {
        let view = store.get_transition(id).await.unwrap_or_else(|e| {
            panic!("acknowledged transition {id} is missing after the crashes: {e}")
        });
        assert!(
            view.state.seq >= *count,
            "transition {id}: {count} events were acknowledged, {} are stored",
            view.state.seq
        );
    }
    store.close().await.unwrap();
    opsgate_tests::assert_every_log_replays(database_url).await
}

async fn crash_loop(db: &TestDb, kills: usize, rng: &mut Rng) {
    let workflows = tempfile::tempdir().unwrap();
    std::fs::write(workflows.path().join("crash.yaml"), WORKFLOW).unwrap();
    let (mut server, addr) = serve(&db.url, workflows.path()).await;
    let (url_tx, url_rx) = watch::channel(addr);
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acked = Arc::default();
    let calls = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            tokio::spawn(client(
                n,
                url_rx.clone(),
                stop.clone(),
                acked.clone(),
                calls.clone(),
            ))
        })
        .collect();
    for k in 0..kills {
        // Kill after a random amount of acknowledged work, not after a random time: on a slow
        // machine or a fast one, every kill lands on a server that has been making progress.
        let target = calls.load(Ordering::SeqCst) + rng.between(1, 60);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while calls.load(Ordering::SeqCst) < target {
            assert!(
                std::time::Instant::now() < deadline,
                "{}: no progress for 60 s before kill {k}: the restarted server does not serve",
                db.backend
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // And a little later still, so that kills also land in the middle of a batch.
        tokio::time::sleep(Duration::from_millis(rng.between(0, 15))).await;
        server.start_kill().unwrap();
        server.wait().await.unwrap();
        let (restarted, addr) = serve(&db.url, workflows.path()).await;
        server = restarted;
        url_tx.send_replace(addr);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    let transitions = verify(&db.url, &acked).await;
    let total = calls.load(Ordering::SeqCst);
    eprintln!(
        "{}: {kills} kills, {total} acknowledged calls, {transitions} transitions verified",
        db.backend
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_and_nothing_is_half_applied() {
    let kills = std::env::var("OPSGATE_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(3);
    let seed = std::env::var("OPSGATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("crash schedule seed {seed} (OPSGATE_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    for db in TestDb::all().await {
        crash_loop(&db, kills, &mut rng).await;
    }
}
