//! `opsgate deliverable submit|approve|request-changes|waive`.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use opsgate_proto::v1 as pb;

use crate::client::Context;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Submit a deliverable with evidence (at least one --link or --text).
    Submit {
        transition_id: String,
        deliverable_id: String,
        /// A link to evidence, repeatable.
        #[arg(long = "link", value_name = "URL")]
        links: Vec<String>,
        /// Evidence as text.
        #[arg(long, default_value = "")]
        text: String,
        /// A document by reference and checksum, repeatable.
        #[arg(long = "attachment", value_name = "URI=SHA256")]
        attachments: Vec<String>,
    },
    /// Approve a submitted deliverable.
    Approve {
        transition_id: String,
        deliverable_id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Send a submitted deliverable back, saying what must change.
    RequestChanges {
        transition_id: String,
        deliverable_id: String,
        #[arg(long)]
        comment: String,
    },
    /// Waive a deliverable (SMO): it counts as done for what needs it until --until.
    Waive {
        transition_id: String,
        deliverable_id: String,
        /// Why; shown wherever the waiver lets the gate open.
        #[arg(long)]
        reason: String,
        /// Last day the waiver counts (through the end of that day, UTC), or an RFC 3339 moment.
        #[arg(long, value_name = "DATE")]
        until: String,
    },
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let mut client = ctx.transitions().await?;
    let transition = match command {
        Command::Submit {
            transition_id,
            deliverable_id,
            links,
            text,
            attachments,
        } => {
            if links.is_empty() && text.trim().is_empty() && attachments.is_empty() {
                bail!(
                    "give evidence: at least one --link URL, --attachment URI=SHA256 or --text TEXT"
                );
            }
            let attachments = attachments
                .iter()
                .map(|a| match a.rsplit_once('=') {
                    Some((uri, sha256)) => Ok(pb::Attachment {
                        uri: uri.to_owned(),
                        sha256: sha256.to_owned(),
                    }),
                    None => bail!("--attachment '{a}' must look like URI=SHA256"),
                })
                .collect::<anyhow::Result<_>>()?;
            let request = ctx.acting(pb::SubmitDeliverableRequest {
                transition_id,
                deliverable_id,
                evidence: Some(pb::Evidence {
                    links,
                    text,
                    attachments,
                }),
            })?;
            client
                .submit_deliverable(request)
                .await?
                .into_inner()
                .transition
        }
        Command::Approve {
            transition_id,
            deliverable_id,
            comment,
        } => {
            review(
                &mut client,
                ctx,
                transition_id,
                deliverable_id,
                pb::ReviewDecision::Approve,
                comment,
            )
            .await?
        }
        Command::RequestChanges {
            transition_id,
            deliverable_id,
            comment,
        } => {
            review(
                &mut client,
                ctx,
                transition_id,
                deliverable_id,
                pb::ReviewDecision::RequestChanges,
                comment,
            )
            .await?
        }
        Command::Waive {
            transition_id,
            deliverable_id,
            reason,
            until,
        } => {
            let request = ctx.acting(pb::WaiveDeliverableRequest {
                transition_id,
                deliverable_id,
                reason,
                until: Some(output::moment("--until", &until, true)?),
            })?;
            client
                .waive_deliverable(request)
                .await?
                .into_inner()
                .transition
        }
    };
    output::transition(&transition.context("server returned no transition")?);
    Ok(ExitCode::SUCCESS)
}

async fn review(
    client: &mut pb::transition_service_client::TransitionServiceClient<tonic::transport::Channel>,
    ctx: &Context,
    transition_id: String,
    deliverable_id: String,
    decision: pb::ReviewDecision,
    comment: String,
) -> anyhow::Result<Option<pb::Transition>> {
    let request = ctx.acting(pb::ReviewDeliverableRequest {
        transition_id,
        deliverable_id,
        decision: decision.into(),
        comment,
    })?;
    Ok(client
        .review_deliverable(request)
        .await?
        .into_inner()
        .transition)
}
