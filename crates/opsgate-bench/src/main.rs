//! `opsgate-bench`: the measurements behind `make bench`, printed as a table.

mod alloc;
mod gates;
mod handover;
mod heavy;
mod kpis;
mod notify;
mod pages;
mod workflow;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

#[derive(Debug, Parser)]
#[command(about = "opsgate benchmarks; run with --release")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Parse and validate a generated workflow (default 10,000 nodes).
    Workflow {
        #[arg(long, default_value_t = 10_000)]
        nodes: usize,
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Handover throughput over gRPC against a real `opsgate serve`, with baselines.
    Handover {
        /// Databases to run on.
        #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
        db: Vec<String>,
        /// Concurrent clients, one measurement each.
        #[arg(long, value_delimiter = ',', default_value = "16,32")]
        clients: Vec<usize>,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Admin URL of a PostgreSQL server (a database is created and dropped).
        #[arg(long, env = "OPSGATE_TEST_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// Write latency on a transition holding 1 MiB of evidence against an almost empty one.
    Heavy {
        /// Databases to run on.
        #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
        db: Vec<String>,
        /// Write cycles (submit + request changes) per round and transition.
        #[arg(long, default_value_t = 200)]
        cycles: usize,
        /// Rounds, alternating light and heavy.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Admin URL of a PostgreSQL server (a database is created and dropped).
        #[arg(long, env = "OPSGATE_TEST_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// Gate checks on many stored transitions under a fixed write load; start-up time on them.
    Gates {
        /// Databases to run on.
        #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
        db: Vec<String>,
        /// Transitions stored before the server starts.
        #[arg(long, default_value_t = 100_000)]
        transitions: usize,
        /// Concurrent clients checking gates.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Seconds of measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Mutating calls per second of the handovers running alongside.
        #[arg(long, default_value_t = 200)]
        write_rate: u32,
        /// Admin URL of a PostgreSQL server (a database is created and dropped).
        #[arg(long, env = "OPSGATE_TEST_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// Scenario 1 without and with a webhook notification for every notice, and the delivery
    /// latency.
    Notify {
        /// Databases to run on.
        #[arg(long, value_delimiter = ',', default_value = "sqlite")]
        db: Vec<String>,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Mutating calls per second offered, spread over the clients (0: as many as they
        /// can). A rate below what the machine takes makes the CPU a call comparable between
        /// runs and builds on a machine whose speed varies: the cost of a delivery is what a
        /// call costs with notifications less what it costs without.
        #[arg(long, default_value_t = 0)]
        rate: u32,
        /// Admin URL of a PostgreSQL server (a database is created and dropped).
        #[arg(long, env = "OPSGATE_TEST_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// The web pages (board, /me, a transition) over many stored transitions, and the write
    /// cost of the people index behind /me.
    Pages {
        /// Transitions stored before the server starts.
        #[arg(long, default_value_t = 100_000)]
        transitions: usize,
        /// Only the write cost of the people index and the catalog (no pages).
        #[arg(long)]
        starts_only: bool,
    },
    /// GetKpis over a year of complete handovers, and ListStalled beside them.
    Kpis {
        /// Databases to run on.
        #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
        db: Vec<String>,
        /// Complete handovers stored before the server starts.
        #[arg(long, default_value_t = 100_000)]
        transitions: usize,
        /// Admin URL of a PostgreSQL server (a database is created and dropped).
        #[arg(long, env = "OPSGATE_TEST_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
}

/// The backends that can run: PostgreSQL only with a URL.
fn runnable(db: Vec<String>, postgres_url: Option<&str>) -> Vec<String> {
    db.into_iter()
        .filter(|d| d != "postgres" || postgres_url.is_some())
        .collect()
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build; run `make bench` (release) for figures worth writing down"
        );
    }
    match Cli::parse().scenario {
        Scenario::Workflow { nodes, runs } => workflow::run(nodes, runs),
        Scenario::Handover {
            db,
            clients,
            seconds,
            postgres_url,
        } => {
            let db = runnable(db, postgres_url.as_deref());
            runtime()?.block_on(handover::run(
                &db,
                &clients,
                seconds,
                postgres_url.as_deref(),
            ))
        }
        Scenario::Heavy {
            db,
            cycles,
            rounds,
            postgres_url,
        } => {
            let db = runnable(db, postgres_url.as_deref());
            runtime()?.block_on(heavy::run(&db, cycles, rounds, postgres_url.as_deref()))
        }
        Scenario::Gates {
            db,
            transitions,
            clients,
            seconds,
            write_rate,
            postgres_url,
        } => {
            let db = runnable(db, postgres_url.as_deref());
            let options = gates::Options {
                transitions,
                clients,
                seconds,
                write_rate,
            };
            runtime()?.block_on(gates::run(&db, postgres_url.as_deref(), &options))
        }
        Scenario::Notify {
            db,
            clients,
            seconds,
            rate,
            postgres_url,
        } => {
            let db = runnable(db, postgres_url.as_deref());
            let options = notify::Options {
                clients,
                seconds,
                rate,
            };
            runtime()?.block_on(notify::run(&db, postgres_url.as_deref(), &options))
        }
        Scenario::Pages {
            transitions,
            starts_only,
        } => runtime()?.block_on(pages::run(&pages::Options {
            transitions,
            starts_only,
        })),
        Scenario::Kpis {
            db,
            transitions,
            postgres_url,
        } => {
            let db = runnable(db, postgres_url.as_deref());
            let options = kpis::Options { transitions };
            runtime()?.block_on(kpis::run(&db, postgres_url.as_deref(), &options))
        }
    }
}
