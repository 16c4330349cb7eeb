//! `opsgate delegation add|list|revoke`: an approver's deputy for a date range.

use std::process::ExitCode;

use anyhow::Context as _;
use opsgate_proto::v1 as pb;

use crate::client::Context;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Name a deputy who may approve for you (the SMO: for --for) from one day until another.
    Add {
        /// The deputy.
        #[arg(long, value_name = "NAME")]
        to: String,
        /// First day (from its start, UTC) or an RFC 3339 moment [default: now].
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// Last day (through its end, UTC) or an RFC 3339 moment.
        #[arg(long, value_name = "DATE")]
        until: String,
        /// SMO only: whose approvals are delegated [default: yours].
        #[arg(long = "for", value_name = "NAME")]
        for_person: Option<String>,
        /// Why (holiday, leave), shown in listings.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Delegations from or to you (the SMO and auditors: everyone's, or --person's).
    List {
        #[arg(long, value_name = "NAME")]
        person: Option<String>,
        /// Revoked and past ones too.
        #[arg(long)]
        all: bool,
    },
    /// End a delegation at once.
    Revoke {
        /// Its number (from `opsgate delegation list`).
        id: i64,
    },
}

fn line(d: &pb::Delegation) -> String {
    let at = |t: Option<&prost_types::Timestamp>| output::timestamp(t, "%Y-%m-%d %H:%M", "-");
    let mut text = format!(
        "#{}  {} -> {}  from {} until {} UTC",
        d.id,
        d.from,
        d.to,
        at(d.starts_at.as_ref()),
        at(d.ends_at.as_ref())
    );
    if d.revoked_at.is_some() {
        text.push_str(&format!(
            "  revoked {} by {}",
            at(d.revoked_at.as_ref()),
            d.revoked_by
        ));
    }
    if !d.reason.is_empty() {
        text.push_str(&format!("  ({})", d.reason));
    }
    text
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let mut client = ctx.identity().await?;
    match command {
        Command::Add {
            to,
            from,
            until,
            for_person,
            reason,
        } => {
            let starts_at = match from {
                Some(from) => output::moment("--from", &from, false)?,
                None => {
                    let now = chrono::Utc::now();
                    prost_types::Timestamp {
                        seconds: now.timestamp(),
                        nanos: 0,
                    }
                }
            };
            let request = ctx.acting(pb::AddDelegationRequest {
                to,
                from: for_person.unwrap_or_default(),
                starts_at: Some(starts_at),
                ends_at: Some(output::moment("--until", &until, true)?),
                reason,
            })?;
            let d = client
                .add_delegation(request)
                .await?
                .into_inner()
                .delegation
                .context("server returned no delegation")?;
            println!("{}", line(&d));
        }
        Command::List { person, all } => {
            let page = client
                .list_delegations(ctx.reading(pb::ListDelegationsRequest {
                    person: person.unwrap_or_default(),
                    include_inactive: all,
                })?)
                .await?
                .into_inner();
            if page.delegations.is_empty() {
                eprintln!("no delegations");
            }
            for d in &page.delegations {
                println!("{}", line(d));
            }
        }
        Command::Revoke { id } => {
            let d = client
                .revoke_delegation(ctx.acting(pb::RevokeDelegationRequest { id })?)
                .await?
                .into_inner()
                .delegation
                .context("server returned no delegation")?;
            println!("{}", line(&d));
        }
    }
    Ok(ExitCode::SUCCESS)
}
