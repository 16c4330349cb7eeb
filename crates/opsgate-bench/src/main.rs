//! `opsgate-bench`: the measurements behind `make bench`, printed as a table.

mod alloc;
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
}

fn main() -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build; run `make bench` (release) for figures worth writing down"
        );
    }
    match Cli::parse().scenario {
        Scenario::Workflow { nodes, runs } => workflow::run(nodes, runs),
    }
}
