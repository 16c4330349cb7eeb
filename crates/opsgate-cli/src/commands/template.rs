//! `opsgate template show TRANSITION DELIVERABLE`: the template a deliverable starts from, as
//! stored with the workflow version the transition runs, printed as it is (redirect it to a file
//! to start writing), or its link.

use std::io::Write as _;
use std::process::ExitCode;

use opsgate_proto::v1 as pb;

use crate::client::Context;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print a deliverable's template (from the workflow version the transition runs).
    #[command(
        after_help = "Example: opsgate template show $ID knowledge-articles > knowledge-article.md"
    )]
    Show {
        /// The transition id.
        transition: String,
        /// The deliverable id (knowledge-articles).
        deliverable: String,
    },
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let Command::Show {
        transition,
        deliverable,
    } = command;
    let answer = ctx
        .transitions()
        .await?
        .get_template(ctx.reading(pb::GetTemplateRequest {
            transition_id: transition,
            deliverable_id: deliverable,
        })?)
        .await?
        .into_inner();
    let mut out = std::io::stdout().lock();
    if answer.link.is_empty() {
        out.write_all(answer.content.as_bytes())?;
        if !answer.content.ends_with('\n') {
            out.write_all(b"\n")?;
        }
    } else {
        writeln!(out, "{}", answer.link)?;
    }
    Ok(ExitCode::SUCCESS)
}
