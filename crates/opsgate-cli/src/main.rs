//! The `opsgate` binary: the server (`serve`), offline workflow tools, and a client for every RPC.

mod client;
mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: parsing workflows and serving requests allocate many small short-lived values
/// (see docs/benchmarks.md for what it saves).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code of a command that ran and answered "no" (invalid workflow, closed gate).
pub(crate) const EXIT_NO: u8 = 1;
/// Exit code of a command that failed (bad usage, unreachable server, refused request).
pub(crate) const EXIT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "opsgate",
    version,
    about = "Service-transition gate workflow engine: gates the operations handover of a service",
    after_help = "Exit codes: 0 success (gate open, workflow valid), 1 a negative answer (gate closed, workflow invalid), 2 an error."
)]
struct Cli {
    /// opsgate server to talk to.
    #[arg(
        long,
        global = true,
        env = "OPSGATE_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,

    /// Your API token (og_...), or in a CI job its OIDC ID token: who you are. Commands that
    /// change state need it.
    #[arg(
        long,
        global = true,
        env = "OPSGATE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,

    /// Development servers only (--insecure-dev): the person acting, when no token is given.
    #[arg(long = "as", global = true, env = "OPSGATE_ACTOR", value_name = "NAME")]
    actor: Option<String>,

    /// https:// servers: PEM CA bundle to trust instead of the public roots.
    #[arg(long, global = true, env = "OPSGATE_TLS_CA", value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,

    /// https:// servers that require client certificates: yours (PEM), with --tls-client-key.
    #[arg(
        long,
        global = true,
        env = "OPSGATE_TLS_CLIENT_CERT",
        value_name = "FILE"
    )]
    tls_client_cert: Option<std::path::PathBuf>,

    /// The private key of --tls-client-cert (PEM).
    #[arg(
        long,
        global = true,
        env = "OPSGATE_TLS_CLIENT_KEY",
        value_name = "FILE"
    )]
    tls_client_key: Option<std::path::PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server.
    Serve(commands::serve::Args),
    /// Validate, register and read workflow definitions.
    #[command(subcommand)]
    Workflow(commands::workflow::Command),
    /// Start, read and list transitions.
    #[command(subcommand)]
    Transition(commands::transition::Command),
    /// Submit and review deliverables.
    #[command(subcommand)]
    Deliverable(commands::deliverable::Command),
    /// Accept or reject the handover at the operations gate (service manager).
    #[command(subcommand)]
    Handover(commands::handover::Command),
    /// Sign off milestones.
    #[command(subcommand)]
    Milestone(commands::handover::MilestoneCommand),
    /// Ask whether the operations gate is open (for CI pipelines).
    #[command(subcommand)]
    Gate(commands::gate::Command),
    /// Create, list and revoke API tokens (SMO).
    #[command(subcommand)]
    Token(commands::token::Command),
    /// Name a deputy who approves for you while you are away; list and revoke delegations.
    #[command(subcommand)]
    Delegation(commands::delegation::Command),
    /// What is stuck and on whom, forecasts, KPIs, and the tamper-evident log (SMO, auditors).
    #[command(subcommand)]
    Audit(commands::audit::Command),
    /// Notifications that could not be delivered: list them, queue one again (SMO).
    #[command(subcommand)]
    Notifications(commands::notifications::Command),
    /// Where to reach people: email, Slack, Teams (SMO).
    #[command(subcommand)]
    Person(commands::person::Command),
    /// The templates deliverables start from.
    #[command(subcommand)]
    Template(commands::template::Command),
    /// The service catalog: services with owner, service manager, criticality, default
    /// workflow, and every version's transition.
    #[command(subcommand)]
    Service(commands::service::Command),
}

/// The command line. `--server` and `--as` are global for the client commands but mean nothing
/// to `opsgate serve`: it gets hidden arguments of the same ids, so clap does not propagate the
/// global ones (with their help) to it.
fn command() -> clap::Command {
    use clap::CommandFactory as _;
    Cli::command().mut_subcommand("serve", |serve| {
        serve
            .arg(clap::Arg::new("server").long("server").hide(true))
            .arg(clap::Arg::new("actor").long("as").hide(true))
            .arg(clap::Arg::new("token").long("token").hide(true))
            .arg(clap::Arg::new("tls_ca").long("tls-ca").hide(true))
            .arg(
                clap::Arg::new("tls_client_cert")
                    .long("tls-client-cert")
                    .hide(true),
            )
            .arg(
                clap::Arg::new("tls_client_key")
                    .long("tls-client-key")
                    .hide(true),
            )
    })
}

fn main() -> ExitCode {
    use clap::FromArgMatches as _;
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.format(&mut command()).exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let ctx = client::Context {
        server: cli.server,
        actor: cli.actor,
        token: cli.token,
        tls: client::TlsFiles {
            ca: cli.tls_ca,
            client_cert: cli.tls_client_cert,
            client_key: cli.tls_client_key,
        },
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Workflow(cmd) => commands::workflow::run(&ctx, cmd).await,
            Command::Transition(cmd) => commands::transition::run(&ctx, cmd).await,
            Command::Deliverable(cmd) => commands::deliverable::run(&ctx, cmd).await,
            Command::Handover(cmd) => commands::handover::run(&ctx, cmd).await,
            Command::Milestone(cmd) => commands::handover::run_milestone(&ctx, cmd).await,
            Command::Gate(cmd) => commands::gate::run(&ctx, cmd).await,
            Command::Token(cmd) => commands::token::run(&ctx, cmd).await,
            Command::Delegation(cmd) => commands::delegation::run(&ctx, cmd).await,
            Command::Person(cmd) => commands::person::run(&ctx, cmd).await,
            Command::Template(cmd) => commands::template::run(&ctx, cmd).await,
            Command::Service(cmd) => commands::service::run(&ctx, cmd).await,
            Command::Audit(cmd) => commands::audit::run(&ctx, cmd).await,
            Command::Notifications(cmd) => commands::notifications::run(&ctx, cmd).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", client::describe(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
