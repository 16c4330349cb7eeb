//! `opsgate serve`: run the server until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, env = "OPSGATE_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Database: sqlite://PATH (created if missing) or postgres://USER@HOST/DB.
    #[arg(long, env = "OPSGATE_DATABASE_URL", default_value = opsgate_store::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Directory of workflow files (*.yaml) to register at start-up [default: ./workflows when it exists].
    #[arg(long, env = "OPSGATE_WORKFLOWS", value_name = "DIR")]
    workflows: Option<PathBuf>,
    /// MiB of decoded transition states kept in memory, weighed by what they hold (0 disables the cache).
    #[arg(
        long,
        env = "OPSGATE_STATE_CACHE_MIB",
        default_value_t = opsgate_store::DEFAULT_STATE_CACHE_MIB,
        value_name = "MIB"
    )]
    state_cache_mib: usize,
    /// Development only: calls without a token act as whoever x-opsgate-actor names. Never on a
    /// server others can reach. (The first token comes from OPSGATE_BOOTSTRAP_TOKEN instead.)
    #[arg(long, env = "OPSGATE_INSECURE_DEV")]
    insecure_dev: bool,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: log files and journald get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let workflows_dir = args.workflows.or_else(|| {
        let default = PathBuf::from("workflows");
        if default.is_dir() {
            Some(default)
        } else {
            tracing::warn!(
                "no ./workflows directory and no --workflows given: no workflows loaded"
            );
            None
        }
    });
    let server = opsgate_server::start(opsgate_server::Config {
        listen: args.listen,
        database_url: args.database_url,
        workflows_dir,
        state_cache_bytes: args.state_cache_mib.saturating_mul(1024 * 1024),
        insecure_dev: args.insecure_dev,
        // A secret: read from the environment only, never a flag (flags show in `ps`).
        bootstrap_token: std::env::var("OPSGATE_BOOTSTRAP_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty()),
    })
    .await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
