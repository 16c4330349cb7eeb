//! `opsgate person set|list`: where to reach the people transitions name (email, Slack, Teams),
//! kept by the SMO for the notifiers.

use std::process::ExitCode;

use opsgate_proto::v1 as pb;

use crate::client::Context;
use crate::commands::audit::Format;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Set a person's contact details (SMO). Flags not given keep their value; an empty value
    /// ("") clears one.
    #[command(
        after_help = "Example: opsgate person set \"Dana Vos\" --email dana.vos@example.org --slack U0123ABCD"
    )]
    Set {
        /// The name transitions use for the person.
        name: String,
        /// Email address (name@example.org).
        #[arg(long, value_name = "ADDRESS")]
        email: Option<String>,
        /// Slack member or channel id (U0123ABCD), or a channel name (#payroll-handover).
        #[arg(long, value_name = "ID")]
        slack: Option<String>,
        /// Teams Workflows webhook URL (https://...).
        #[arg(long, value_name = "URL")]
        teams_webhook: Option<String>,
    },
    /// People's contact details (SMO, auditors): the named ones, or everyone.
    List {
        /// Only these people.
        names: Vec<String>,
        /// table for people, json (one object a line) for scripts.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let mut client = ctx.identity().await?;
    match command {
        Command::Set {
            name,
            email,
            slack,
            teams_webhook,
        } => {
            // The RPC replaces every field: start from what is stored.
            let known = client
                .list_people(ctx.acting(pb::ListPeopleRequest {
                    names: vec![name.clone()],
                })?)
                .await?
                .into_inner()
                .people
                .into_iter()
                .next()
                .unwrap_or_default();
            let set = client
                .set_person(ctx.acting(pb::SetPersonRequest {
                    name,
                    email: email.unwrap_or(known.email),
                    slack: slack.unwrap_or(known.slack),
                    teams_webhook: teams_webhook.unwrap_or(known.teams_webhook),
                })?)
                .await?
                .into_inner()
                .person
                .unwrap_or_default();
            print_table(&[set]);
        }
        Command::List { names, format } => {
            let people = client
                .list_people(ctx.acting(pb::ListPeopleRequest { names })?)
                .await?
                .into_inner()
                .people;
            match format {
                Format::Table => {
                    print_table(&people);
                    eprintln!("{} people", people.len());
                }
                Format::Json => {
                    for p in &people {
                        println!(
                            "{}",
                            serde_json::json!({
                                "name": p.name,
                                "email": p.email,
                                "slack": p.slack,
                                "teams_webhook": p.teams_webhook,
                                "updated_by": p.updated_by,
                            })
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(people: &[pb::Person]) {
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    for p in people {
        println!(
            "{}\n  email: {}\n  slack: {}\n  teams: {}",
            p.name,
            or_dash(&p.email),
            or_dash(&p.slack),
            // The webhook URL is a secret of the Teams channel: shown only as set or not.
            if p.teams_webhook.is_empty() {
                "-"
            } else {
                "(webhook set)"
            }
        );
    }
}
