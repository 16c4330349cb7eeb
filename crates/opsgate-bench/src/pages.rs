//! The web pages over many stored transitions (issue "People act in a browser"): the SMO board
//! (first and a deep page, filtered by person), `/me` and a transition page, each timed one
//! request after another against a real `opsgate serve --http` on 100,000 transitions; and the
//! write cost of the people index behind `/me`: starts through the store with it on and off.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use opsgate_domain::{Actor, Command, Evidence, Participants, RoleName};
use opsgate_store::{ConnectOptions, NewTransition, Store};

use crate::handover::{BenchDb, Server};
use crate::kpis::line;

/// A transition workflow with dated deliverables (the board sorts by the earliest open one).
const PAGES: &str = "\
name: pages
roles:
  reviewer: {description: reviews the operational documents}
  desk: {description: the service desk}
deliverables:
  - {id: d1, title: Runbook, owner: project_manager, approver: reviewer, due: go_live - 60d}
  - {id: d2, title: Knowledge articles, owner: project_manager, approver: desk, needs: [d1], due: go_live - 30d}
  - {id: d3, title: Monitoring, owner: project_manager, approver: reviewer, needs: [d1], due: go_live - 20d}
  - {id: d4, title: SLA, owner: project_manager, approver: reviewer, needs: [d2, d3], due: go_live - 10d}
gate: {id: gate, title: Operations gate, needs: [d4]}
";

/// Project managers, reviewers and desk people the transitions are spread over.
const MANAGERS: usize = 1000;
const REVIEWERS: usize = 500;
const DESKS: usize = 200;
/// Timed requests per page.
const CALLS: usize = 200;

/// What the scenario is told.
pub struct Options {
    pub transitions: usize,
    /// Only the starts' write cost.
    pub starts_only: bool,
}

fn transition(n: usize, today: chrono::NaiveDate) -> anyhow::Result<NewTransition> {
    let participants = Participants::from([
        (
            RoleName::parse("reviewer")?,
            vec![Actor::parse(format!("reviewer {}", n % REVIEWERS))?],
        ),
        (
            RoleName::parse("desk")?,
            vec![Actor::parse(format!("desk {}", n % DESKS))?],
        ),
    ]);
    // Go-live from 5 days to about two years ahead: some work is overdue, most is not.
    let go_live = today + chrono::Days::new(5 + (n as u64 * 7919) % 700);
    Ok(NewTransition {
        workflow_name: "pages".into(),
        workflow_version: None,
        // A thousand services, a version each per transition: most starts are a new version
        // of a service the catalog has.
        service_name: format!("service {}", n % 1000),
        service_version: format!("1.{n}"),
        project_manager: Actor::parse(format!("manager {}", n % MANAGERS))?,
        service_manager: Actor::parse(format!("owner {}", n % MANAGERS))?,
        target_go_live: go_live,
        participants,
        allow_past_go_live: false,
    })
}

/// Starts transitions `range` through `store`, 64 at a time; every tenth submits its runbook
/// (work for a reviewer). Their ids.
async fn start_many(store: &Store, range: std::ops::Range<usize>) -> anyhow::Result<Vec<String>> {
    let today = chrono::Utc::now().date_naive();
    let workers = 64;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let store = store.clone();
            let range = range.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in range.skip(w).step_by(workers) {
                    let new = transition(n, today)?;
                    let pm = new.project_manager.clone();
                    let id = store.start_transition(new, pm.clone()).await?.id;
                    if n % 10 == 0 {
                        store
                            .execute(
                                &id,
                                Command::Submit {
                                    node: "d1".into(),
                                    evidence: Evidence::parse(
                                        vec!["https://wiki.example/runbook".into()],
                                        String::new(),
                                    )?,
                                },
                                pm,
                            )
                            .await?;
                    }
                    ids.push(id);
                }
                Ok::<_, anyhow::Error>(ids)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await??);
    }
    Ok(ids)
}

/// Starts per second through a store on a fresh SQLite file, with the people index and the
/// catalog each on or off.
async fn start_rate(
    dir: &Path,
    round: usize,
    people_index: bool,
    catalog: bool,
) -> anyhow::Result<f64> {
    let url = format!(
        "sqlite://{}",
        dir.join(format!("starts-{round}-{people_index}-{catalog}.db"))
            .display()
    );
    let mut options = ConnectOptions::new(&url);
    options.people_index = people_index;
    options.catalog = catalog;
    let store = Store::connect(options).await?;
    store
        .register_workflow("pages.yaml", PAGES, &Actor::parse("Smo")?)
        .await?;
    let count = 5_000;
    let at = Instant::now();
    start_many(&store, 0..count).await?;
    let rate = count as f64 / at.elapsed().as_secs_f64();
    store.close().await?;
    Ok(rate)
}

/// Times `CALLS` requests of `path` (after a few to warm up); each must answer 200 and contain
/// `expect`.
async fn time_page(
    http: &reqwest::Client,
    base: &str,
    label: &str,
    path: &dyn Fn(usize) -> String,
    expect: &str,
) -> anyhow::Result<()> {
    let mut took = Vec::with_capacity(CALLS);
    let mut bytes = 0;
    for i in 0..CALLS + 10 {
        let url = format!("{base}{}", path(i));
        let at = Instant::now();
        let response = http.get(&url).send().await?;
        let status = response.status();
        let body = response.text().await?;
        let ms = at.elapsed().as_secs_f64() * 1000.0;
        if !status.is_success() || !body.contains(expect) {
            anyhow::bail!(
                "{url} answered {status} without '{expect}': {}",
                &body[..body.len().min(400)]
            );
        }
        if i >= 10 {
            took.push(ms);
            bytes = body.len();
        }
    }
    line(label, took, &format!(", {} KiB", bytes / 1024));
    Ok(())
}

pub async fn run(options: &Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    println!(
        "web pages on sqlite over {} stored transitions (one request after another)",
        options.transitions
    );
    // The write cost of the people index and the catalog: starts through the store, each
    // configuration in turn, three rounds.
    let configurations = [(false, false), (true, false), (true, true)];
    let mut rates = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..3 {
        for (i, (people, catalog)) in configurations.iter().enumerate() {
            rates[i].push(start_rate(dir.path(), round, *people, *catalog).await?);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let base = mean(&rates[0]);
    println!(
        "  starts through the store (5,000, 64 at once; 1 in 10 also submits): neither {:.0}/s, \
         people index {:.0}/s ({:.2}), people index and catalog {:.0}/s ({:.2})",
        base,
        mean(&rates[1]),
        mean(&rates[1]) / base,
        mean(&rates[2]),
        mean(&rates[2]) / base
    );

    if options.starts_only {
        return Ok(());
    }
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows)?;
    std::fs::write(workflows.join("pages.yaml"), PAGES)?;
    let db = BenchDb::create("sqlite", dir.path(), None).await?;
    let count = options.transitions.max(1);
    let ids = {
        let mut connect = ConnectOptions::new(&db.url);
        connect.state_cache_bytes = 0;
        let store = Store::connect(connect).await?;
        store
            .register_workflow("pages.yaml", PAGES, &Actor::parse("Smo")?)
            .await?;
        let at = Instant::now();
        let ids = start_many(&store, 0..count).await?;
        crate::handover::settle_database(&store).await?;
        store.close().await?;
        println!(
            "  seeded {} transitions in {:.1} s",
            ids.len(),
            at.elapsed().as_secs_f64()
        );
        ids
    };
    let (server, http_port) =
        Server::start_with_http(&db.url, &workflows, &dir.path().join("server.log"), &[]).await?;
    let base = format!("http://127.0.0.1:{http_port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()?;
    let pick = |i: usize| ids[(i * 7919) % ids.len()].clone();
    time_page(
        &http,
        &base,
        "GET / (the board, page 1)",
        &|_| "/".to_owned(),
        "board",
    )
    .await?;
    // A deep page: follow "Next page" 500 times, then time that page.
    let mut deep = "/".to_owned();
    for _ in 0..500 {
        let html = http
            .get(format!("{base}{deep}"))
            .send()
            .await?
            .text()
            .await?;
        deep = html
            .split("<a rel=\"next\" href=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .context("a next page")?
            .replace("&amp;", "&");
    }
    time_page(
        &http,
        &base,
        "GET /?after=... (the 501st page)",
        &|_| deep.clone(),
        "Transitions in progress",
    )
    .await?;
    time_page(
        &http,
        &base,
        "GET /?person=... (a reviewer with work)",
        &|i| format!("/?person=reviewer%20{}", (i % 50) * 10),
        "Transitions in progress",
    )
    .await?;
    time_page(
        &http,
        &base,
        "GET /me (a project manager, ~100 transitions)",
        &|i| format!("/me?as=manager%20{}", i % MANAGERS),
        "Waiting on manager",
    )
    .await?;
    time_page(
        &http,
        &base,
        "GET /transitions/{id}",
        &|i| format!("/transitions/{}", pick(i)),
        "Operations gate",
    )
    .await?;
    drop(server);
    db.drop_it().await.context("dropping the database")?;
    Ok(())
}
