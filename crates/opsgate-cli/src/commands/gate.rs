//! `opsgate gate check`: exit 0 when the gate is open, 1 when closed (with the explanation), 2 on error.

use std::process::ExitCode;

use anyhow::bail;
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::check_gate_request::Target;

use crate::client::Context;
use crate::{EXIT_NO, output};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Is the operations gate open? Exit 0 open, 1 closed, 2 error.
    #[command(after_help = "Identify the transition by its id, or by --service NAME --version V.")]
    Check {
        /// Transition id.
        #[arg(conflicts_with = "service", required_unless_present = "service")]
        transition_id: Option<String>,
        /// Service name (with --version).
        #[arg(long, requires = "version")]
        service: Option<String>,
        /// Service version (with --service).
        #[arg(long, requires = "service")]
        version: Option<String>,
        /// Exit 0 only once the service manager has accepted the handover.
        #[arg(long)]
        require_accepted: bool,
    },
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let Command::Check {
        transition_id,
        service,
        version,
        require_accepted,
    } = command;
    let target = match (transition_id, service, version) {
        (Some(id), None, None) => Target::TransitionId(id),
        (None, Some(name), Some(version)) => Target::Service(pb::ServiceRef { name, version }),
        _ => bail!("give a transition id, or --service NAME --version V"),
    };
    let answer = ctx
        .gates()
        .await?
        .check_gate(ctx.reading(pb::CheckGateRequest {
            target: Some(target),
        })?)
        .await?
        .into_inner();
    output::gate(&answer);
    let passed = if require_accepted {
        answer.state == i32::from(pb::GateState::Accepted)
    } else {
        answer.open
    };
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    })
}
