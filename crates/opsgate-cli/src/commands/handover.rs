//! `opsgate handover accept|reject`: the service manager's decision at the operations gate;
//! `opsgate milestone sign-off`: a milestone's sign-off role confirms it.

use std::process::ExitCode;

use anyhow::Context as _;
use opsgate_proto::v1 as pb;

use crate::client::Context;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Accept the handover: the service goes into operation.
    Accept {
        transition_id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Reject the handover, reopening the named deliverables.
    Reject {
        transition_id: String,
        /// Why, repeatable.
        #[arg(long = "reason", required = true, value_name = "TEXT")]
        reasons: Vec<String>,
        /// A deliverable to reopen, repeatable.
        #[arg(long = "reopen", required = true, value_name = "DELIVERABLE")]
        reopen: Vec<String>,
    },
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let mut client = ctx.transitions().await?;
    let transition = match command {
        Command::Accept {
            transition_id,
            comment,
        } => {
            let request = ctx.acting(pb::AcceptHandoverRequest {
                transition_id,
                comment,
            })?;
            client
                .accept_handover(request)
                .await?
                .into_inner()
                .transition
        }
        Command::Reject {
            transition_id,
            reasons,
            reopen,
        } => {
            let request = ctx.acting(pb::RejectHandoverRequest {
                transition_id,
                reasons,
                reopen_deliverables: reopen,
            })?;
            client
                .reject_handover(request)
                .await?
                .into_inner()
                .transition
        }
    };
    output::transition(&transition.context("server returned no transition")?);
    Ok(ExitCode::SUCCESS)
}

/// `opsgate milestone ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum MilestoneCommand {
    /// Sign off a milestone whose needs are done (for milestones with a sign-off role).
    SignOff {
        transition_id: String,
        milestone_id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
}

pub(crate) async fn run_milestone(
    ctx: &Context,
    command: MilestoneCommand,
) -> anyhow::Result<ExitCode> {
    let MilestoneCommand::SignOff {
        transition_id,
        milestone_id,
        comment,
    } = command;
    let request = ctx.acting(pb::SignOffMilestoneRequest {
        transition_id,
        milestone_id,
        comment,
    })?;
    let transition = ctx
        .transitions()
        .await?
        .sign_off_milestone(request)
        .await?
        .into_inner()
        .transition;
    output::transition(&transition.context("server returned no transition")?);
    Ok(ExitCode::SUCCESS)
}
