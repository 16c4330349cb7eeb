//! `opsgate serve`: run the server until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

/// Where `opsgate serve` listens when nothing says otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// Every setting may also come from the configuration file (`--config`); a flag or environment
/// variable wins over the file, the file over the default.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Configuration file (TOML; see docs/configuration.md).
    #[arg(long, env = "OPSGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long, env = "OPSGATE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Also serve HTTP on this address: Prometheus metrics at /metrics [default: off].
    #[arg(long, env = "OPSGATE_HTTP", value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Database: sqlite://PATH (created if missing) or postgres://USER@HOST/DB [default: sqlite://data/opsgate.db].
    #[arg(long, env = "OPSGATE_DATABASE_URL")]
    database_url: Option<String>,
    /// Directory of workflow files (*.yaml) to register at start-up [default: ./workflows when it exists].
    #[arg(long, env = "OPSGATE_WORKFLOWS", value_name = "DIR")]
    workflows: Option<PathBuf>,
    /// MiB of decoded transition states kept in memory, weighed by what they hold; 0 disables the cache [default: 40].
    #[arg(long, env = "OPSGATE_STATE_CACHE_MIB", value_name = "MIB")]
    state_cache_mib: Option<usize>,
    /// Development only: calls without a token act as whoever x-opsgate-actor names. Never on a
    /// server others can reach. (The first token comes from OPSGATE_BOOTSTRAP_TOKEN instead.)
    #[arg(long, env = "OPSGATE_INSECURE_DEV")]
    insecure_dev: bool,
    /// PEM certificate chain: serve gRPC over TLS (with --tls-key).
    #[arg(
        long,
        env = "OPSGATE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(
        long,
        env = "OPSGATE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// PEM CA bundle: require client certificates it signed (mutual TLS; needs --tls-cert).
    #[arg(long, env = "OPSGATE_CLIENT_CA", value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// Web sign-in behind an SSO reverse proxy (oauth2-proxy...): the request header naming the
    /// signed-in person, such as X-Forwarded-User [default: off]. Needs --auth-proxy-trusted.
    #[arg(long, env = "OPSGATE_AUTH_PROXY_HEADER", value_name = "NAME")]
    auth_proxy_header: Option<String>,
    /// The proxy's addresses (CIDR, such as 10.0.0.5/32): the user header from anywhere else
    /// is ignored. Several: repeat, or separate with commas.
    #[arg(
        long,
        env = "OPSGATE_AUTH_PROXY_TRUSTED",
        value_name = "CIDR",
        num_args = 1..,
        value_delimiter = ','
    )]
    auth_proxy_trusted: Vec<String>,
}

impl Args {
    /// The server's configuration: flags and environment over the file over the defaults.
    fn resolve(self) -> anyhow::Result<opsgate_server::Config> {
        let file = match &self.config {
            Some(path) => opsgate_server::config::ConfigFile::read(path)?,
            None => opsgate_server::config::ConfigFile::default(),
        };
        let server = file.server;
        let mut auth_proxy = file.auth_proxy;
        if let Some(header) = self.auth_proxy_header {
            auth_proxy.header = Some(header);
        }
        if !self.auth_proxy_trusted.is_empty() {
            auth_proxy.trusted = self.auth_proxy_trusted;
        }
        let tls = match (
            self.tls_cert.or(server.tls_cert),
            self.tls_key.or(server.tls_key),
            self.client_ca.or(server.client_ca),
        ) {
            (Some(cert), Some(key), client_ca) => Some(opsgate_server::Tls {
                cert,
                key,
                client_ca,
            }),
            (None, None, None) => None,
            (None, None, Some(_)) => {
                anyhow::bail!("--client-ca needs TLS: give --tls-cert and --tls-key too")
            }
            _ => anyhow::bail!("TLS needs both a certificate and a key (--tls-cert, --tls-key)"),
        };
        let listen = match self.listen.or(server.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN.parse()?,
        };
        let workflows_dir = self.workflows.or(server.workflows).or_else(|| {
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
        let mib = self
            .state_cache_mib
            .or(server.state_cache_mib)
            .unwrap_or(opsgate_store::DEFAULT_STATE_CACHE_MIB);
        Ok(opsgate_server::Config {
            listen,
            http: self.http.or(server.http),
            database_url: self
                .database_url
                .or(server.database_url)
                .unwrap_or_else(|| opsgate_store::DEFAULT_DATABASE_URL.to_owned()),
            workflows_dir,
            state_cache_bytes: mib.saturating_mul(1024 * 1024),
            insecure_dev: self.insecure_dev || server.insecure_dev.unwrap_or(false),
            // A secret: read from the environment only, never a flag (flags show in `ps`).
            bootstrap_token: std::env::var("OPSGATE_BOOTSTRAP_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty()),
            oidc: file.oidc.issuers,
            notify: file.notify,
            auth_proxy,
            calendar: file.calendar,
            catalog: file.catalog,
            tls,
            clock: opsgate_store::Clock::default(),
        })
    }
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
    let config = args.resolve()?;
    tracing::info!(
        listen = %config.listen,
        database = %config.database_url.split('@').next_back().unwrap_or_default(),
        "configuration resolved"
    );
    let server = opsgate_server::start(config).await?;
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
