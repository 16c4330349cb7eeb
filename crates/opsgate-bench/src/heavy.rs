//! `opsgate-bench heavy`: what a write costs on a transition holding its maximum content (1 MiB
//! of evidence) against one holding almost nothing, in the same run: whether the whole-snapshot
//! write (issue 14) matters.

use std::time::{Duration, Instant};

use opsgate_proto::v1 as pb;
use opsgate_proto::v1::transition_service_client::TransitionServiceClient;
use tonic::transport::Channel;

use crate::handover::{BenchDb, Server, Tally, acting};

/// A workflow of 20 deliverables that need nothing but the start.
fn wide() -> String {
    let mut yaml = String::from(
        "name: wide\nroles:\n  desk: {description: d}\nmilestones:\n  - {id: start, title: Start}\ndeliverables:\n",
    );
    for i in 0..20 {
        yaml.push_str(&format!(
            "  - {{id: d{i}, title: D{i}, owner: project_manager, approver: desk, needs: [start]}}\n"
        ));
    }
    let needs: Vec<String> = (0..20).map(|i| format!("d{i}")).collect();
    yaml.push_str(&format!(
        "gate: {{id: gate, title: Gate, needs: [{}]}}\n",
        needs.join(", ")
    ));
    yaml
}

fn evidence(links: usize, text: usize) -> Option<pb::Evidence> {
    Some(pb::Evidence {
        links: (0..links)
            .map(|i| format!("https://docs.example/{i}/{}", "p".repeat(1990)))
            .collect(),
        text: "x".repeat(text),
        attachments: Vec::new(),
    })
}

async fn start(c: &mut TransitionServiceClient<Channel>, version: &str) -> anyhow::Result<String> {
    let t = c
        .start_transition(acting(
            "Pat",
            pb::StartTransitionRequest {
                workflow_name: "wide".into(),
                service_name: "heavy".into(),
                service_version: version.into(),
                project_manager: "Pat".into(),
                service_manager: "Sam".into(),
                target_go_live: "2099-01-01".into(),
                participants: vec![pb::Participant {
                    role: "desk".into(),
                    people: vec!["Rae".into()],
                }],
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    Ok(t.transition.map(|t| t.id).unwrap_or_default())
}

/// Submits then requests changes on `d19` of `id`, `cycles` times: two small writes a cycle.
async fn cycles(
    c: &mut TransitionServiceClient<Channel>,
    id: &str,
    cycles: usize,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::new()?;
    for _ in 0..cycles {
        let t0 = Instant::now();
        let r = c
            .submit_deliverable(acting(
                "Pat",
                pb::SubmitDeliverableRequest {
                    transition_id: id.into(),
                    deliverable_id: "d19".into(),
                    evidence: evidence(1, 0),
                },
            ))
            .await;
        tally.record(t0, r.is_ok());
        let t0 = Instant::now();
        let r = c
            .review_deliverable(acting(
                "Rae",
                pb::ReviewDeliverableRequest {
                    transition_id: id.into(),
                    deliverable_id: "d19".into(),
                    decision: pb::ReviewDecision::RequestChanges.into(),
                    comment: "again".into(),
                },
            ))
            .await;
        tally.record(t0, r.is_ok());
    }
    Ok(tally)
}

pub async fn run(
    backends: &[String],
    cycles_per_round: usize,
    rounds: usize,
    postgres_url: Option<&str>,
) -> anyhow::Result<()> {
    for backend in backends {
        on(backend, cycles_per_round, rounds, postgres_url).await?;
    }
    Ok(())
}

async fn on(
    backend: &str,
    cycles_per_round: usize,
    rounds: usize,
    postgres_url: Option<&str>,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows)?;
    std::fs::write(workflows.join("wide.yaml"), wide())?;
    let db = BenchDb::create(backend, dir.path(), postgres_url).await?;
    let server = Server::start(&db.url, &workflows, &dir.path().join("server.log")).await?;
    let mut c =
        TransitionServiceClient::new(Channel::from_shared(server.url.clone())?.connect().await?)
            .max_decoding_message_size(8 * 1024 * 1024);
    let light = start(&mut c, "light").await?;
    let heavy = start(&mut c, "heavy").await?;
    // Fill the heavy one with maximal submissions until the content bound refuses: each a
    // statement of about 164 KiB (on PostgreSQL, one that waited 40 ms for a delayed ACK while
    // sqlx did not set TCP_NODELAY).
    let mut filled = 0;
    let (mut fill, mut spent) = (Tally::new()?, Duration::ZERO);
    for i in 0..19 {
        let t0 = Instant::now();
        let r = c
            .submit_deliverable(acting(
                "Pat",
                pb::SubmitDeliverableRequest {
                    transition_id: heavy.clone(),
                    deliverable_id: format!("d{i}"),
                    evidence: evidence(50, 64 * 1024),
                },
            ))
            .await;
        if r.is_err() {
            break;
        }
        spent += t0.elapsed();
        fill.record(t0, true);
        filled += 1;
    }
    println!(
        "heavy transition on {backend}: {filled} maximal submissions stored (about {} KiB); light: none",
        filled * 164
    );
    println!(
        "{}",
        fill.load(spent).line("a maximal submission (~164 KiB)")
    );
    println!(
        "  {cycles_per_round} submit + request-changes cycles a round, one client, alternating"
    );
    for round in 0..rounds {
        for (label, id) in [("light", &light), ("heavy", &heavy)] {
            let (_, _, cpu0) = server.usage()?;
            let written0 = server.written()?;
            let t0 = Instant::now();
            let load = cycles(&mut c, id, cycles_per_round)
                .await?
                .load(t0.elapsed());
            let (_, _, cpu1) = server.usage()?;
            let writes = (2 * cycles_per_round) as f64;
            println!(
                "{}  server CPU {:.2} ms, {:.0} KiB written a write",
                load.line(&format!("round {round} {label}")),
                (cpu1 - cpu0) * 1000.0 / writes,
                (server.written()? - written0) as f64 / 1024.0 / writes
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.stop().await?;
    db.drop_it().await?;
    Ok(())
}
